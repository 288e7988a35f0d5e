"""Conformance: the emulator against Clay's published OpenAPI (tests/data, kept in the repo).

Schemathesis generates requests from the schema for every operation the emulator
implements and checks each answer: no 5xx, a documented status code, the documented
content type and headers, and a body that matches the response schema. Bounded by a
small number of examples per operation so the whole module stays well under a minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402

from claynb import Emulator  # noqa: E402

# Clay's Public API v0 as published (see tests/data/README.md for where it comes from).
SPEC = Path(__file__).resolve().parent / "data" / "clay-public-api-openapi.json"
IMPLEMENTED = [
    ("GET", "/me"),
    ("POST", "/routines/{routine_id}/run"),
    ("GET", "/routines/run/{routine_run_id}/results"),
    ("POST", "/routines/{routine_id}/run-batch/upload-url"),
    ("POST", "/routines/{routine_id}/run-batch/start"),
    ("GET", "/routines/run-batch/{routine_run_id}/results"),
    ("POST", "/tables/query"),
    ("POST", "/search/filters-mode"),
    ("GET", "/search/filters-mode/fields"),
    ("POST", "/search/filters-mode/{search_id}/run"),
    ("POST", "/search/query-mode"),
    ("GET", "/search/query-mode/reference"),
    ("POST", "/search/query-mode/{search_id}/run"),
]
#: Operations without parameters or a body: nothing to break for a negative case.
NO_INPUT = [("GET", "/me"), ("GET", "/search/query-mode/reference")]
WITH_INPUT = [op for op in IMPLEMENTED if op not in NO_INPUT]
MAX_EXAMPLES = 20
MAX_NEGATIVE_EXAMPLES = 12

from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
SCHEMA = schemathesis.openapi.from_path(str(SPEC))


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    """Enterprise (so /tables/query answers), credits to spare, a table to query, no faults,
    and no rate limit: the checks send requests back to back, and a 429 in place of a run's
    answer would test the limiter (its own tests do) instead of the run's shape."""
    with Emulator(plan="enterprise", run_latency_s=0, seed=1, rate_limit_rps=None) as emu:
        emu.top_up(actions=10_000_000, data_credits=10_000_000)
        emu.create_table(
            "Leads", enrichments=[{"routine": "enrich-person", "inputs": {"email": "Email"}}]
        )
        yield emu


@pytest.mark.parametrize(("method", "path"), IMPLEMENTED, ids=[f"{m} {p}" for m, p in IMPLEMENTED])
def test_operation_conforms(emu: Emulator, method: str, path: str) -> None:
    operation = SCHEMA[path][method]
    headers = {"clay-api-key": emu.api_key}

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def check(case: Any) -> None:
        case.call_and_validate(base_url=emu.url + "/public/v0", headers=headers, checks=CHECKS)

    check()


@pytest.mark.parametrize(("method", "path"), WITH_INPUT, ids=[f"{m} {p}" for m, p in WITH_INPUT])
def test_invalid_requests_get_4xx_not_5xx(emu: Emulator, method: str, path: str) -> None:
    """Requests that break the schema are refused with a documented 4xx, never a crash."""
    from schemathesis import GenerationMode

    operation = SCHEMA[path][method]
    headers = {"clay-api-key": emu.api_key}

    @settings(
        max_examples=MAX_NEGATIVE_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    def check(case: Any) -> None:
        response = case.call(base_url=emu.url + "/public/v0", headers=headers)
        assert response.status_code < 500, response.text
        case.validate_response(response, checks=[content_type_conformance])

    check()


def test_every_operation_is_covered() -> None:
    documented = {(m.upper(), p) for p, ops in SCHEMA.raw_schema["paths"].items() for m in ops}
    assert documented == set(IMPLEMENTED) and len(IMPLEMENTED) == 13


def test_real_resources_conform(emu: Emulator) -> None:
    """Generated ids mostly miss; check the answers about runs that exist, too."""
    import httpx

    c = httpx.Client(base_url=emu.url + "/public/v0", headers={"clay-api-key": emu.api_key})
    run = c.post(
        "/routines/enrich-person/run",
        json={"items": [{"id": str(i), "inputs": {"email": f"a{i}@acme.com"}} for i in range(30)]},
    )
    up = c.post("/routines/enrich-person/run-batch/upload-url").json()
    httpx.put(up["upload_url"], content=b'{"id":"1","inputs":{"email":"a@acme.com"}}\nbad\n')
    batch = c.post("/routines/enrich-person/run-batch/start", json={"file_id": up["file_id"]})
    people = c.post("/search/filters-mode", json={"source_type": "people", "filters": {}}).json()
    companies = c.post("/search/query-mode", json={"query": "companies where domain = 'a.io'"})
    for path, method, response in [
        ("/routines/{routine_id}/run", "POST", run),
        (
            "/routines/run/{routine_run_id}/results",
            "GET",
            c.get(f"/routines/run/{run.json()['routine_run_id']}/results"),
        ),
        ("/routines/{routine_id}/run-batch/start", "POST", batch),
        (
            "/routines/run-batch/{routine_run_id}/results",
            "GET",
            c.get(f"/routines/run-batch/{batch.json()['routine_run_id']}/results"),
        ),
        (
            "/tables/query",
            "POST",
            c.post("/tables/query", json={"query": {"tables": [{"id": "Leads"}]}}),
        ),
        (
            "/search/filters-mode/{search_id}/run",
            "POST",
            c.post(f"/search/filters-mode/{people['search_id']}/run", json={"limit": 5}),
        ),
        ("/search/query-mode", "POST", companies),
        (
            "/search/query-mode/{search_id}/run",
            "POST",
            c.post(f"/search/query-mode/{companies.json()['search_id']}/run", json={"limit": 5}),
        ),
    ]:
        assert response.status_code < 300, response.text
        SCHEMA[path][method].validate_response(response)
