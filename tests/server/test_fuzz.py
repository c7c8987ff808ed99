"""Fuzz every operation of a real server (tiny model) from its own /openapi.json with schemathesis.

For each operation schemathesis generates requests from the schema (valid and, in its negative mode,
invalid ones) and the test sends them with a valid key. Two properties must hold for every response:
no status >= 500 (bad input is a 4xx naming the problem), and a documented response's body matches
the schema the server publishes. The number of examples per operation is bounded
(``GROUNDGLASS_FUZZ_EXAMPLES``, default 6) so that the test stays within a couple of minutes.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_helpers import Api, Server, create_key, free_port, make_home

schemathesis = pytest.importorskip("schemathesis")

EXAMPLES = int(os.environ.get("GROUNDGLASS_FUZZ_EXAMPLES", "6"))
# Operations whose work is a model answer get fewer examples: each one costs a generation.
SLOW = (
    "/chat/completions",
    "/v1/chat/completions",
    "/async/chat/completions",
    "/v1/async/sonar",
    "/v1/responses",
    "/v1/agent",
    "/v1/threads/{thread_id}/turns",
)


@pytest.fixture(scope="module")
def fuzz_api(index_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """A server of its own (answers capped at 8 tokens), so the fuzzer's jobs and files touch no other
    test's server."""
    home = make_home(index_home, tmp_path_factory.mktemp("fuzz-home"), "", max_body_bytes=1_000_000)
    config = home / "config.toml"
    config.write_text(config.read_text().replace("max_tokens = 24", "max_tokens = 8"))
    key = create_key(home, "fuzz", rpm=1_000_000, tpm=1_000_000_000)
    server = Server(home, free_port()).start()
    try:
        yield Api(server, key)
    finally:
        server.stop()


def test_no_server_errors_and_responses_match_the_schema(fuzz_api: Api) -> None:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import response_schema_conformance

    schema = schemathesis.openapi.from_url(fuzz_api.base_url + "/openapi.json")
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        examples = max(2, EXAMPLES // 3) if operation.path in SLOW else EXAMPLES

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(
            case=st.one_of(
                operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)
            )
        )
        def fuzz(case: Any) -> None:
            response = case.call(base_url=fuzz_api.base_url, headers=fuzz_api.headers(), timeout=120)
            statuses[response.status_code] += 1
            try:
                case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
            except Exception as exc:  # schemathesis raises one failure (group) naming what is wrong
                failures.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code}: "
                    f"{str(exc)[:600]}\n  body sent: {str(case.body)[:300]}\n  "
                    f"response: {response.text[:300]}"
                )

        fuzz()
    # the figures a soak report quotes (seen with pytest -s)
    counts = dict(sorted(statuses.items()))
    print(f"fuzz: {operations} operations, {statuses.total()} requests, statuses {counts}")
    assert operations >= 10, f"only {operations} operations in /openapi.json"
    assert not failures, f"{len(failures)} failing responses ({dict(statuses)}):\n" + "\n".join(failures[:15])
    # The fuzzer reached the handlers (a valid key, valid bodies; made-up ids are 404s) and was refused
    # where its input was bad.
    assert sum(n for code, n in statuses.items() if code < 300) >= operations // 2, statuses
    assert sum(n for code, n in statuses.items() if 400 <= code < 500) > 0, statuses
