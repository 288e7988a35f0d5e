"""``claynb search ... -o FILE``: Clay's Search into a file, stopping where it should.

The command is pointed at an emulator this test started (``CLAY_BASE_URL``,
``CLAY_API_KEY``); what it used is checked on the emulator's search meters.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from claynb.cli import main
from claynb.pipeline._cli_search import combine, parse_filter
from claynb.pipeline._files import read_frame


def point_at(emu: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAY_BASE_URL", emu.url)
    monkeypatch.setenv("CLAY_API_KEY", emu.api_key)


def test_filters_from_flags_find_matching_companies_and_stop_at_the_limit(
    emulator: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any
) -> None:
    point_at(emulator, monkeypatch)
    target = tmp_path / "firms.csv"

    rc = main(
        ["search", "companies", "--filter", "industries=Software", "--filter", "sizes=51-200",
         "--filter", "sizes=201-500", "--filter", "location_countries_include=Germany",
         "--limit", "40", "--page-size", "15", "-q", "-o", str(target)]
    )  # fmt: skip
    printed, _ = capsys.readouterr()

    firms = read_frame(target)
    assert rc == 0
    assert len(firms) == 40 and firms["clay_company_id"].is_unique
    assert set(firms["industry"]) == {"Software"} and set(firms["country"]) == {"Germany"}
    assert set(firms["size"]) <= {"51-200", "201-500"}
    search = emulator.meters(charges=False)["search"]
    assert search["records"] == 40 and search["pages"] == 3
    assert printed.strip() == f"{target}: 40 records in 3 page(s), stopped at limit; " + (
        f"quota left {search['period_quota']['remaining']:,}"
    )


def test_a_json_filters_file_a_number_and_people_with_their_experiences(
    emulator: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    point_at(emulator, monkeypatch)
    firms_file = tmp_path / "filters.json"
    firms_file.write_text(json.dumps({"industries": ["Fintech"]}))
    firms_out = tmp_path / "firms.parquet"
    assert main(["search", "companies", "--filters", str(firms_file), "--filter",
                 "min_funding_usd=1000000", "-q", "--limit", "20", "-o", str(firms_out)]) == 0  # fmt: skip
    firms = pd.read_parquet(firms_out)
    assert set(firms["industry"]) == {"Fintech"}
    assert (firms["total_funding_amount_range_usd"] >= 1_000_000).all()

    people_out = tmp_path / "people.xlsx"
    domains = json.dumps(firms["domain"].head(5).tolist())
    assert main(["search", "people", "--filter", f"company_domains={domains}",
                 "--limit", "all", "-q", "-o", str(people_out)]) == 0  # fmt: skip
    people = read_frame(people_out)
    assert len(people) > 0
    companies = {json.loads(cell)[0]["company"] for cell in people["matched_experiences"]}
    assert companies <= set(firms["name"].head(5))


def test_a_query_search_reads_its_kind_from_the_query(
    emulator: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    point_at(emulator, monkeypatch)
    target = tmp_path / "people.parquet"
    query = 'people where title contains "revenue" and seniority = "director"'
    assert main(["search", "--query", query, "--limit", "25", "-q", "-o", str(target)]) == 0
    people = pd.read_parquet(target)
    assert len(people) == 25
    titles = [exp[0]["title"].lower() for exp in people["matched_experiences"]]  # nested kept
    assert all("revenue" in title for title in titles)


def test_the_period_quota_ends_the_search_early_with_what_it_fetched(
    make_emulator: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any
) -> None:
    emu = make_emulator(search_period_quota=30)
    point_at(emu, monkeypatch)
    target = tmp_path / "people.csv"

    rc = main(["search", "people", "--filter", "job_title_keywords=sales", "--limit", "all",
               "-q", "-o", str(target)])  # fmt: skip
    _, errors = capsys.readouterr()

    assert rc == 1
    assert len(read_frame(target)) == 30 == emu.meters(charges=False)["search"]["records"]
    assert "stopped early (period_quota)" in errors


def test_a_declared_cost_and_a_budget_stop_the_search_at_the_budget(
    emulator: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any
) -> None:
    point_at(emulator, monkeypatch)
    target = tmp_path / "firms.csv"
    rc = main(["search", "companies", "--filter", "industries=Retail", "--limit", "all",
               "--cost-data-credits", "2", "--budget-data-credits", "51", "-q",
               "-o", str(target)])  # fmt: skip
    assert rc == 1
    assert len(read_frame(target)) == 25  # 25 records x 2 credits: the 26th would pass 51
    assert "stopped early (budget)" in capsys.readouterr().err


def test_a_budget_without_a_cost_is_said_to_cap_nothing(
    emulator: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any
) -> None:
    point_at(emulator, monkeypatch)
    rc = main(["search", "companies", "--filter", "industries=Retail", "--limit", "5",
               "--budget-usd", "1", "-q", "-o", str(tmp_path / "f.csv")])  # fmt: skip
    assert rc == 0 and "the budget caps nothing" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["people", "--filter", "job_titles=sales"], "did you mean 'job_title_keywords'"),
        (["people", "--filter", "seniority_levels=boss"], "'boss' not allowed"),
        (["people", "--filter", "job_title_keywords"], "write FIELD=VALUE"),
        (["--filter", "industries=Software"], "say what to search"),
        (["people", "--query", "people", "--filter", "a=b"], "not both"),
        (["people", "--filters", "missing.json"], "cannot read --filters"),
    ],
)
def test_a_wrong_input_is_one_line_exit_2(
    emulator: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: Any,
    args: list[str],
    says: str,
) -> None:
    point_at(emulator, monkeypatch)
    rc = main(["search", *args, "-q", "-o", str(tmp_path / "out.csv")])
    printed, errors = capsys.readouterr()
    assert rc == 2 and printed == ""
    assert len(errors.strip().splitlines()) == 1 and says in errors, errors
    assert not (tmp_path / "out.csv").exists()
    assert emulator.meters(charges=False)["search"]["records"] == 0


@pytest.mark.parametrize(
    ("output", "says"),
    [("out.json", "'.json'"), ("a-file/out.csv", "is a file, not a folder")],
)
def test_an_output_that_cannot_be_written_is_refused_before_anything_is_asked(
    emulator: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: Any,
    output: str,
    says: str,
) -> None:
    point_at(emulator, monkeypatch)
    (tmp_path / "a-file").write_text("not a folder")
    rc = main(["search", "people", "--filter", "job_title_keywords=sales",
               "-o", str(tmp_path / output)])  # fmt: skip
    assert rc == 2 and says in capsys.readouterr().err
    assert emulator.meters(charges=False)["requests"]["total"] == 0


def test_filter_values_are_gathered_by_field_and_typed_by_the_listed_type() -> None:
    items = [
        parse_filter("sizes=51-200"),
        parse_filter("sizes=1,001-5,000"),  # a comma is part of a value, never a separator
        parse_filter('industries=["Software", "Fintech"]'),
        parse_filter("min_funding_usd=5000000"),
        parse_filter("note=plain text"),
    ]
    types = {"sizes": "string[]", "industries": "string[]", "min_funding_usd": "number"}
    assert combine({"company_types": ["Nonprofit"]}, items, types) == {
        "company_types": ["Nonprofit"],
        "sizes": ["51-200", "1,001-5,000"],
        "industries": ["Software", "Fintech"],
        "min_funding_usd": 5000000,
        "note": ["plain text"],  # type unknown: a list, as Clay's published filters are
    }


def test_a_wrong_key_is_one_line_exit_2_and_never_printed(
    emulator: Any, tmp_path: Path, capsys: Any
) -> None:
    secret = "clay-key-" + "5e1b7d3f9a2c" * 3
    rc = main(["search", "companies", "--filter", "industries=Retail", "-q",
               "--base-url", emulator.url, "--api-key", secret,
               "-o", str(tmp_path / "f.csv")])  # fmt: skip
    printed, errors = capsys.readouterr()
    assert rc == 2 and printed == ""
    assert len(errors.strip().splitlines()) == 1 and "401" in errors, errors
    assert secret not in errors
    assert emulator.meters(charges=False)["search"]["records"] == 0
