"""When a SharePoint connector lists its whole library again instead of the changes since its
saved position (`DeltaCursor.full_listing_due`, SCAIDRIVE_FULL_LISTING_DAYS): the one rule the
scanner asks."""
import pytest

from shared.config.settings import Settings
from shared.sync.model import FULL_LISTING_SPREAD, DeltaCursor

WEEK = 7 * 86_400.0
NOW = 1_764_000_000.0
LINK = "https://graph/delta?token=1"
EARLIEST = WEEK * (1 - FULL_LISTING_SPREAD)


@pytest.mark.parametrize(("cursor", "every", "due"), [
    (DeltaCursor(LINK, {}, NOW - WEEK), WEEK, True),  # a week old: listed in full
    (DeltaCursor(LINK, {}, NOW - EARLIEST + 60), WEEK, False),  # too young for any connector
    (DeltaCursor(LINK, {}, NOW - 100 * WEEK), 0, False),  # 0: never
    (DeltaCursor(LINK, {}, None), WEEK, False),  # age unknown: the store starts the clock
    (DeltaCursor(None, {}, NOW - WEEK), WEEK, False),  # no position: listed in full anyway
])
def test_a_full_listing_is_due_once_the_last_is_as_old_as_the_setting(cursor, every, due):
    for cid in ("c-1", "c-2", "another connector"):
        assert cursor.full_listing_due(every, NOW, cid) is due


def _due_after(cid: str) -> float:
    """The age (in weeks, to the hour) at which the connector's full listing comes due."""
    hours = next(h for h in range(0, 24 * 7 + 1)
                 if DeltaCursor(LINK, {}, NOW - h * 3600).full_listing_due(WEEK, NOW, cid))
    return hours * 3600 / WEEK


def test_connectors_whose_clocks_started_together_are_not_listed_all_at_once():
    moments = [_due_after(f"connector-{i}") for i in range(200)]  # created together
    assert all(1 - FULL_LISTING_SPREAD <= m <= 1 for m in moments)
    assert max(moments) - min(moments) > 0.9 * FULL_LISTING_SPREAD  # spread over ~1.4 days
    assert max(moments.count(m) for m in moments) < 25  # at most a few in any one hour
    assert _due_after("connector-7") == moments[7]  # the same moment for a connector each time


def test_the_default_is_a_week():
    assert Settings.model_fields["full_listing_days"].default == 7
