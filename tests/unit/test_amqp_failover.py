"""SCAIDRIVE_AMQP_URL as a list of cluster nodes (shared/config/settings.py) and the order in
which the broker tries them when its node is lost (shared/messaging/failover.py)."""
import pytest

from shared.config.settings import split_amqp_urls
from shared.messaging.failover import NodeOrder, node_label

A, B, C = (f"amqp://u:secret@10.0.0.{i}:5672/" for i in (1, 2, 3))


def test_one_url_stays_valid_and_a_list_is_split_in_order():
    assert split_amqp_urls("amqp://guest:guest@127.0.0.1:5672/") == [
        "amqp://guest:guest@127.0.0.1:5672/"]
    assert split_amqp_urls(f" {A}, {B},,{C} ") == [A, B, C]


@pytest.mark.parametrize("value", ["", " , ", f"{A},http://x:1/"])
def test_a_bad_list_is_refused_without_echoing_it(value):
    with pytest.raises(ValueError) as err:
        split_amqp_urls(value)
    assert "secret" not in str(err.value)


def test_nodes_are_logged_without_credentials():
    assert node_label(A) == "10.0.0.1:5672"
    assert node_label("amqps://u:p@h/") == "h:5671"
    assert node_label("amqp://u:p@h/") == "h:5672"


def test_the_lost_node_keeps_its_grace_then_the_others_are_tried_in_turn():
    order = NodeOrder([A, B, C], grace_s=3)
    assert order.current == A and order.due(100) is None  # connected: nothing to do
    order.lost(100)
    assert order.due(102.9) is None  # A may come back
    assert order.due(103) == B
    assert order.due(105) is None  # B gets its own grace
    assert order.due(106) == C
    assert order.due(109) == A  # round robin
    order.found()
    assert order.due(200) is None


def test_the_order_starts_at_the_node_that_answered_first():
    order = NodeOrder([A, B, C], grace_s=1, start=1)
    order.lost(0)
    assert order.current == B and order.due(1) == C and order.due(2) == A


def test_a_single_node_is_retried_forever():
    order = NodeOrder([A], grace_s=1)
    order.lost(0)
    assert order.due(1000) is None and order.current == A


def test_no_node_is_an_error():
    with pytest.raises(ValueError):
        NodeOrder([])
