"""estimate: exactly what enrich would send, priced, with nothing spent."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

import claynb
from claynb._routines import DEFAULT_ROUTINES


@pytest.fixture
def client(emulator: Any) -> claynb.ClayClient:
    return claynb.ClayClient(api_key=emulator.api_key, base_url=emulator.url)


def frame() -> pd.DataFrame:
    names = [f"Person {chr(65 + i % 26)}{i}" for i in range(40)]
    domains = [f"co{i % 8}.com" for i in range(40)]
    df = pd.DataFrame(
        {
            "Name": names + names[:5] + ["", "Someone"],
            "Domain": domains + domains[:5] + ["x.com", "not a domain"],
        }
    )
    return df


def test_estimate_spends_nothing_and_counts_rows(emulator: Any, client: Any) -> None:
    df = frame()
    before = emulator.meters(charges=False)
    est = df.clay.estimate(
        "find-work-email", {"full_name": "Name", "company_domain": "Domain"}, client=client
    )
    after = emulator.meters(charges=False)
    assert after["requests"]["total"] == before["requests"]["total"] == 0
    assert after["data_credits_used"] == 0
    routine = DEFAULT_ROUTINES["find-work-email"]
    assert (est.rows, est.unique, est.invalid, est.cached, est.to_send) == (47, 40, 2, 0, 40)
    assert est.expected_data_credits == pytest.approx(routine.expected_cost().data_credits * 40)
    assert est.worst_data_credits == 3 * 40 and est.worst_actions == 40
    plan = claynb.get_plan("growth")
    assert est.worst_usd == pytest.approx(plan.usd(40, 120))
    assert est.basis == "the routine's catalogue rates"
    assert est.match_rate == pytest.approx(routine.match_rate())
    assert "40 to send" in str(est) and "<table" in est._repr_html_()
    assert list(est.to_frame().columns) == ["expected", "worst case"]


def test_estimate_after_enriching_uses_cache_and_observed_rates(emulator: Any, client: Any) -> None:
    df = frame()
    inputs = {"full_name": "Name", "company_domain": "Domain"}
    claynb.enrich(df.iloc[:30], "find-work-email", inputs, client=client, progress=False)
    used = emulator.meters(charges=False)
    est = claynb.estimate(df, "find-work-email", inputs, client=client, plan="launch")
    assert emulator.meters(charges=False)["requests"] == used["requests"]
    assert est.cached == 30 and est.to_send == 10 and est.plan == "launch"
    book = claynb.ledger().by_routine.loc["find-work-email"]
    assert est.basis.startswith("observed in the ledger over 30 rows")
    assert est.match_rate == pytest.approx(book["matched"] / book["rows"])
    assert est.expected_data_credits == pytest.approx(book["data_credits"] / book["rows"] * 10)


def test_estimate_with_too_few_observations_keeps_catalogue_rates(
    emulator: Any, client: Any
) -> None:
    df = pd.DataFrame({"Email": [f"e{i}.f@est.com" for i in range(5)]})
    claynb.enrich(df, "enrich-person", {"email": "Email"}, client=client, progress=False)
    more = pd.DataFrame({"Email": [f"g{i}.h@est.com" for i in range(8)]})
    est = more.clay.estimate("enrich-person", {"email": "Email"})
    assert est.basis == "the routine's catalogue rates" and est.to_send == 8
    assert est.expected_actions == pytest.approx(0.8 * 8)
