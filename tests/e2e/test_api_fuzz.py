"""Fuzzing the admin API from its own OpenAPI schema (schemathesis): whatever a caller sends,
valid or not (huge numbers, odd unicode in paths, wrong JSON types), the answer is never a 5xx.

It runs against a stack of its own (its own namespace, its own S3 server; only the API
process, so no run starts): fuzzed deletes and creates cannot touch another test's shares, and
the fuzzer's wrong tokens lock nobody out. An SMB and a SharePoint connector are made first and
their ids are among the fuzzed path parameters, so PATCH and the rest reach real connectors,
not only 404s. SharePoint bodies are checked against the Graph emulator, never a real tenant.
"""
from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")  # the `test` extra pins it

from hypothesis import HealthCheck, Phase, settings  # noqa: E402  (comes with schemathesis)
from hypothesis import strategies as st  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from tests.e2e.sharepoint_helpers import new_site, sp_body  # noqa: E402
from tests.fixtures.s3 import S3Server  # noqa: E402
from tests.fixtures.stack import Stack  # noqa: E402

pytestmark = pytest.mark.e2e
EXAMPLES = 30  # per operation: ~26 operations fuzzed in under a minute
SHARE = "fuzz-seed"


@pytest.fixture(scope="module")
def fuzz_stack(graph, tmp_path_factory):
    s3 = S3Server(tmp_path_factory.mktemp("fuzz-s3") / "moto.log")
    stack = Stack(s3, tmp_path_factory.mktemp("fuzz-logs"), graph,
                  SCAIDRIVE_API_AUTH_MAX_FAILURES="10000")
    try:
        yield stack.start_api()
    finally:
        stack.stop()
        s3.stop()


def _seed(stack: Stack, graph, samba) -> list[str]:
    """An SMB and a SharePoint connector (their servers checked on save; no scanner runs)."""
    api = stack.api()
    assert api.post("/shares", json={"name": SHARE}).status_code == 201
    smb = api.post("/connectors", json={
        "name": "fuzz smb", "server": f"smb://127.0.0.1:{samba.port}/{samba.share}",
        "username": samba.username, "password": samba.password, "target_share": SHARE,
        "target_prefix": "smb", "schedule": "1h"})
    site = new_site(graph)
    graph.add_library(site, "Documents")
    sp = api.post("/connectors", json=sp_body(graph, site, "Documents", SHARE,
                                              target_prefix="sp"))
    assert smb.status_code == sp.status_code == 201, (smb.text, sp.text)
    return [smb.json()["id"], sp.json()["id"]]


@pytest.fixture(scope="module")
def api_schema(fuzz_stack, graph, samba):
    ids = _seed(fuzz_stack, graph, samba)
    schema = schemathesis.openapi.from_url(
        f"http://127.0.0.1:{fuzz_stack.port}/api/v1/openapi.json")

    @schema.hook
    def flatmap_path_parameters(context, path_parameters):
        # Half the time a real connector (or the seeded share), but never deleted: the
        # fuzzer would get 404s ever after.
        if not path_parameters or context.operation.method.upper() == "DELETE":
            return st.just(path_parameters)
        known = dict(path_parameters)
        known |= {"cid": ids} if "cid" in known else {}
        known |= {"name": [SHARE]} if "name" in known else {}
        return st.sampled_from([path_parameters] + [
            path_parameters | {k: v} for k, values in known.items()
            if isinstance(values, list) for v in values])

    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
          phases=[Phase.explicit, Phase.generate, Phase.shrink],
          suppress_health_check=list(HealthCheck))
def test_no_input_makes_the_api_fail(case, fuzz_stack):
    case.call_and_validate(base_url=f"http://127.0.0.1:{fuzz_stack.port}",
                           headers={"Authorization": f"Bearer {fuzz_stack.token}"},
                           checks=[not_a_server_error], timeout=30)
