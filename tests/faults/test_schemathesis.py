"""schemathesis over the OpenAPI document of a running stack: no 5xx for any generated input.

Valid and invalid requests (negative mode: wrong types, out-of-range numbers,
missing fields) are sent to every operation as alice (admin), on the real stack
(dev server, worker, API as processes), so a command reaches a real workflow.
``WARROOM_FUZZ_EXAMPLES`` bounds the examples per operation and mode (default 3)
to keep the suite fast.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable

import hypothesis.strategies as st
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

from tests.stack import Stack

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("WARROOM_FUZZ_EXAMPLES", "3"))
SKIP = {
    # Would end the test's own credentials (alice's user or token) if a generated id hit them.
    ("PATCH", "/api/admin/users/{user_id}"),
    ("DELETE", "/api/admin/tokens/{token_id}"),
}


def test_no_generated_request_gets_a_5xx(make_process_stack: Callable[..., Stack]) -> None:
    stack = make_process_stack().start()
    spec = stack.http.get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(spec)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {stack.tokens['alice']}"
    failures: list[str] = []
    answered: Counter[int] = Counter()
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIP:
            continue
        operations += 1
        strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

        @settings(max_examples=2 * EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def check(case: schemathesis.Case) -> None:
            response = case.call(base_url=stack.base_url, session=session, timeout=30)
            answered[response.status_code // 100 * 100] += 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}")

        check()
    assert operations >= 40, f"only {operations} operations in the OpenAPI document"
    assert stack.http.get("/api/me").status_code == 200  # still alice: the fuzzing revoked nothing of ours
    # The generated requests got past authentication and into the handlers, valid and not.
    assert answered[200] > 0 and answered[400] > 0, answered
    assert not failures, "\n".join(dict.fromkeys(failures))
