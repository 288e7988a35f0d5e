"""Workspace routines: declared per call or in ``claynb.toml``, priced and checked as declared.

Against the minimal Clay server (written from the OpenAPI alone): nothing here leans on
the emulator's demo catalogue.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from minimal_clay import MinimalClay

import claynb
from claynb._catalogue import load_catalogue

ROUTINE = "function:t_abc123"

CATALOGUE = f"""
[routines."{ROUTINE}"]
inputs = {{ site = "domain", who = "text" }}
fields = ["echo_site"]
cost = {{ actions = 1, data_credits = 3 }}
"""


@pytest.fixture
def clay() -> Iterator[MinimalClay]:
    with MinimalClay() as server:
        yield server


def client_for(clay: MinimalClay) -> claynb.ClayClient:
    return claynb.ClayClient(clay.api_key, base_url=clay.url)


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {"Site": ["Acme.com", "not a domain", "https://www.globex.com/"], "Who": ["a", "b", "c"]}
    )


def test_a_catalogue_file_names_inputs_kinds_fields_and_cost(
    clay: MinimalClay, claynb_home: Path
) -> None:
    claynb_home.mkdir(parents=True, exist_ok=True)
    (claynb_home / "claynb.toml").write_text(CATALOGUE)
    inputs = {"site": "Site", "who": "Who"}
    budget = claynb.Budget(data_credits=6)
    estimate = claynb.estimate(frame(), ROUTINE, inputs, budget=budget)
    assert (estimate.to_send, estimate.invalid, estimate.worst_data_credits) == (2, 1, 6)
    assert estimate.cost_source == "estimated"
    out = claynb.enrich(
        frame(), ROUTINE, inputs, client=client_for(clay), budget=budget, progress=False
    )
    # "site" is a domain: normalised and checked as one; "who" is free text.
    assert out["clay_status"].tolist() == ["enriched", "invalid_input", "enriched"]
    assert out["clay_echo_site"].tolist()[::2] == ["acme.com", "globex.com"]
    assert out["clay_echo_who"].tolist()[::2] == ["a", "c"]  # a field the file did not list
    assert budget.spent == claynb.Cost(2, 6) and budget.cost_source == "estimated"
    assert "estimated" in repr(budget)
    # A cost given with the call wins over the file's.
    cheaper = claynb.estimate(frame(), ROUTINE, inputs, cost=claynb.Cost(1, 1), refresh=True)
    assert cheaper.worst_data_credits == 2


def test_the_projects_file_wins_over_claynb_home(
    claynb_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    claynb_home.mkdir(parents=True, exist_ok=True)
    (claynb_home / "claynb.toml").write_text(CATALOGUE)
    project = tmp_path / "project"
    project.mkdir()
    (project / "claynb.toml").write_text(
        f'[routines."{ROUTINE}"]\ninputs = ["email"]\ncost = {{ data_credits = 9 }}\n'
    )
    monkeypatch.chdir(project)
    routine = load_catalogue()[ROUTINE]
    assert routine.inputs == ("email",) and routine.worst_case_cost() == claynb.Cost(0, 9)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[routines", "cannot read the routine catalogue"),
        (f'[routines."{ROUTINE}"]\ninputs = {{ a = "phone" }}\n', "unknown input kind"),
        (f'[routines."{ROUTINE}"]\ninputs = []\n', "must name at least one input"),
        (f'[routines."{ROUTINE}"]\ninputs = ["a"]\nprice = 3\n', "unknown key"),
        (f'[routines."{ROUTINE}"]\ninputs = ["a"]\ncost = {{ actions = -1 }}\n', "negative"),
    ],
)
def test_a_bad_catalogue_names_the_file_and_the_problem(
    claynb_home: Path, text: str, says: str
) -> None:
    claynb_home.mkdir(parents=True, exist_ok=True)
    (claynb_home / "claynb.toml").write_text(text)
    with pytest.raises(claynb.ConfigError, match=says) as info:
        load_catalogue()
    assert "claynb.toml" in str(info.value)


def test_an_unpriced_routine_cannot_be_estimated_in_money(claynb_home: Path) -> None:
    estimate = claynb.estimate(frame(), ROUTINE, {"site": "Site"})
    assert estimate.cost_source == "unpriced" and estimate.to_send == 3
    assert pd.isna(estimate.worst_data_credits)
