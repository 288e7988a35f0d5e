"""``claynb enrich FILE``: a file in, an enriched file out, every charge checked on the meters.

Each test points the command at an emulator it started, through ``CLAY_BASE_URL`` and
``CLAY_API_KEY`` (a loopback URL needs no permission to spend), as a user pointing it at
``claynb emulator`` would. Money is checked on the emulator's own meters, per lead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import claynb
from claynb.cli import main
from claynb.pipeline._cli_enrich import parse_inputs
from claynb.pipeline._files import nested_as_json, read_frame
from claynb.pipeline._work import item_key

ROUTINE = "enrich-person"


def leads(n: int = 60) -> pd.DataFrame:
    """``n`` distinct leads, a repeat of every tenth (in other case), and two bad e-mails."""
    emails = [f"p{i}.q{i}@cli{i % 7}.com" for i in range(n)]
    rows = emails + [e.upper() for e in emails[::10]] + ["not an email", ""]
    return pd.DataFrame({"Lead": [f"L{i:04d}" for i in range(len(rows))], "Email": rows})


def point_at(emu: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAY_BASE_URL", emu.url)
    monkeypatch.setenv("CLAY_API_KEY", emu.api_key)


def charged_keys(emu: Any) -> list[str]:
    return [c["inputs_key"] for c in emu.meters(charges=True)["charges"]]


def key_of(email: str) -> str:
    return item_key(ROUTINE, {"email": email.strip().lower()})


def test_a_csv_is_enriched_beside_itself_and_each_lead_is_charged_once(
    emulator: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any
) -> None:
    point_at(emulator, monkeypatch)
    source = tmp_path / "leads.csv"
    df = leads()
    df.assign(Lead=df["Lead"].str.replace("L", "00")).to_csv(source, index=False)

    rc = main(["enrich", str(source), "-r", ROUTINE, "-i", "email=Email", "-q"])
    printed, errors = capsys.readouterr()

    out = read_frame(tmp_path / "leads.enriched.csv")
    assert rc == 0, errors
    assert out["Lead"].tolist() == df["Lead"].str.replace("L", "00").tolist()  # text kept as text
    assert out["Email"].tolist() == df["Email"].tolist()
    counts = out["clay_status"].value_counts()
    assert counts["invalid_input"] == 2
    assert set(counts.index) == {"enriched", "no_match", "invalid_input"}
    keys = charged_keys(emulator)
    assert len(keys) == len(set(keys))  # the repeats rode on their first row
    enriched = out[out["clay_status"] == "enriched"]
    assert set(keys) == {key_of(e) for e in enriched["Email"]}
    meters = emulator.meters(charges=False)
    assert out["clay_data_credits"].astype(float).sum() == meters["data_credits_used"]
    assert out["clay_actions"].astype(float).sum() == meters["actions_used"]
    summary = printed.strip().splitlines()
    assert len(summary) == 1 and "leads.enriched.csv" in summary[0]
    assert f"{counts['enriched']} enriched" in summary[0]
    assert f"{int(meters['data_credits_used'])} Data Credits" in summary[0]


@pytest.mark.parametrize("suffix", [".parquet", ".xlsx", ".tsv"])
def test_parquet_excel_and_tsv_in_and_out(
    emulator: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, suffix: str
) -> None:
    point_at(emulator, monkeypatch)
    source = tmp_path / f"leads{suffix}"
    df = leads(30)
    if suffix == ".parquet":
        df.to_parquet(source, index=False)
    elif suffix == ".xlsx":
        df.to_excel(source, index=False)
    else:
        df.to_csv(source, sep="\t", index=False)
    target = tmp_path / "out" / "enriched.csv"

    assert main(["enrich", str(source), "-r", ROUTINE, "-q", "-o", str(target)]) == 0

    out = pd.read_csv(target, keep_default_na=False)
    assert out["Email"].tolist() == df["Email"].tolist()  # -i omitted: the column named Email
    assert out["clay_data_credits"].sum() == emulator.meters(charges=False)["data_credits_used"]
    again = tmp_path / f"again{suffix}"
    assert main(["enrich", str(source), "-r", ROUTINE, "-q", "-o", str(again)]) == 0
    written = read_frame(again)
    assert set(written["clay_status"]) == {"cached", "invalid_input"}  # nothing paid again
    assert (
        written["clay_full_name"].fillna("").tolist() == out["clay_full_name"].fillna("").tolist()
    )


def test_estimate_prices_the_file_and_spends_nothing(
    emulator: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any
) -> None:
    point_at(emulator, monkeypatch)
    source = tmp_path / "leads.csv"
    df = leads(40)
    df.to_csv(source, index=False)

    rc = main(["enrich", str(source), "-r", ROUTINE, "--estimate", "--budget-data-credits", "5"])
    printed, _ = capsys.readouterr()

    assert rc == 0
    meters = emulator.meters(charges=False)
    assert meters["data_credits_used"] == meters["actions_used"] == 0
    assert meters["runs"]["total"] == 0  # not even a run was started
    assert not (tmp_path / "leads.enriched.csv").exists()
    assert f"{len(df)} rows, 40 unique" in printed and "40 to send" in printed
    assert "worst case: 40 Actions, 40 Data Credits" in printed
    assert "over_budget" in printed  # the budget cannot cover the worst case


def test_a_budget_is_met_never_crossed_and_the_same_command_finishes_the_rest(
    make_emulator: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any
) -> None:
    emu = make_emulator()
    point_at(emu, monkeypatch)
    source = tmp_path / "leads.csv"
    leads(80).to_csv(source, index=False)
    command = ["enrich", str(source), "-r", ROUTINE, "-q", "--batch-size", "10"]

    rc = main([*command, "--budget-data-credits", "20"])
    _, errors = capsys.readouterr()

    first = read_frame(tmp_path / "leads.enriched.csv")
    assert rc == 1
    assert emu.meters(charges=False)["data_credits_used"] == 20
    assert (first["clay_status"] == "over_budget").sum() > 0
    assert "over_budget: raise the budget" in errors and "Traceback" not in errors

    rc = main([*command, "--budget-data-credits", "1000"])

    second = read_frame(tmp_path / "leads.enriched.csv")
    assert rc == 0
    keys = charged_keys(emu)
    assert len(keys) == len(set(keys))  # no lead paid twice across the two commands
    assert set(second["clay_status"]) == {"cached", "enriched", "no_match", "invalid_input"}
    assert (second.loc[first["clay_status"] != "over_budget", "clay_data_credits"] == "0.0").all()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["-r", "no-such-routine"], "unknown routine 'no-such-routine'"),
        (["-r", ROUTINE, "-i", "mail=Email"], "has no input 'mail'"),
        (["-r", ROUTINE, "-i", "email"], "write INPUT=COLUMN"),
        (["-r", ROUTINE, "-i", "email=Mail"], "column 'Mail'"),
        (["-r", "find-work-email"], "-i INPUT=COLUMN"),
        (["-r", ROUTINE, "-o", "out.json"], "cannot tell the format from '.json'"),
        (["-r", ROUTINE, "-o", "{source}"], "is the input file"),
        (["-r", ROUTINE, "-o", "{source}/out.csv"], "is a file, not a folder"),
        (["-r", ROUTINE, "-o", "{folder}"], "it is a folder"),
    ],
)
def test_a_wrong_input_is_one_line_exit_2_and_nothing_is_sent(
    emulator: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: Any,
    args: list[str],
    says: str,
) -> None:
    point_at(emulator, monkeypatch)
    source = tmp_path / "leads.csv"
    leads(10).to_csv(source, index=False)
    folder = tmp_path / "made.csv"
    folder.mkdir()
    args = [a.replace("{source}", str(source)).replace("{folder}", str(folder)) for a in args]

    rc = main(["enrich", str(source), *args])
    printed, errors = capsys.readouterr()

    assert rc == 2
    assert printed == ""
    assert len(errors.strip().splitlines()) == 1 and says in errors, errors
    assert emulator.meters(charges=False)["requests"]["by_status"].get("200", 0) == 0


def test_an_enriched_file_is_not_enriched_over_itself(
    emulator: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any
) -> None:
    point_at(emulator, monkeypatch)
    source = tmp_path / "leads.csv"
    leads(10).to_csv(source, index=False)
    assert main(["enrich", str(source), "-r", ROUTINE, "-q"]) == 0
    capsys.readouterr()

    rc = main(["enrich", str(tmp_path / "leads.enriched.csv"), "-r", ROUTINE, "-q"])
    _, errors = capsys.readouterr()

    assert rc == 2 and "--prefix" in errors and "--overwrite" in errors
    assert main(["enrich", str(tmp_path / "leads.enriched.csv"), "-r", ROUTINE, "-q",
                 "--prefix", "again_"]) == 0  # fmt: skip


def test_a_missing_file_and_a_missing_flag_say_so_without_a_traceback(
    tmp_path: Path, capsys: Any
) -> None:
    assert main(["enrich", str(tmp_path / "nope.csv"), "-r", ROUTINE]) == 2
    assert "no such file" in capsys.readouterr().err
    for wrong in ([], ["-r", ROUTINE, "--plan", "platinum"], ["-r", ROUTINE, "--budget-usd", "-1"]):
        with pytest.raises(SystemExit) as stop:  # argparse's own usage line and error
            main(["enrich", str(tmp_path / "nope.csv"), *wrong])
        assert stop.value.code == 2
        assert "Traceback" not in capsys.readouterr().err


def test_parse_inputs() -> None:
    assert parse_inputs(["email=Email", " full_name = Full Name "]) == {
        "email": "Email",
        "full_name": "Full Name",
    }
    with pytest.raises(ValueError, match="INPUT=COLUMN"):
        parse_inputs(["=Email"])


def test_nested_cells_are_written_as_json_text() -> None:
    df = pd.DataFrame({"a": [[{"x": 1}], None], "b": ["t", "u"]})
    flat = nested_as_json(df)
    assert json.loads(flat["a"][0]) == [{"x": 1}] and pd.isna(flat["a"][1])
    assert flat["b"].tolist() == ["t", "u"]
    plain = df[["b"]]
    assert nested_as_json(plain) is plain  # nothing nested: nothing copied


def test_python_m_claynb_enrich_runs_as_a_program(
    emulator: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The command as installed (``python -m claynb``), not only ``main()``: a real process."""
    point_at(emulator, monkeypatch)
    source = tmp_path / "leads.csv"
    leads(12).to_csv(source, index=False)
    done = subprocess.run(
        [sys.executable, "-m", "claynb", "enrich", str(source), "-r", ROUTINE],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1 and "leads.enriched.csv" in done.stdout
    assert "enrich-person (direct)" in done.stderr  # the progress, on stderr
    assert claynb.ledger().summary()["rows"].sum() > 0


def run_program(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "claynb", *args],
        env={**{k: v for k, v in os.environ.items() if k != "CLAYNB_ALLOW_SPEND"}, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_wrong_key_is_one_line_exit_2_and_never_printed(emulator: Any, tmp_path: Path) -> None:
    source = tmp_path / "leads.csv"
    leads(5).to_csv(source, index=False)
    secret = "clay-key-" + "7f3a9c1e5b2d" * 3

    done = run_program(
        ["enrich", str(source), "-r", ROUTINE, "--base-url", emulator.url, "--api-key", secret],
        {},
    )

    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "401" in done.stderr, done.stderr
    assert secret not in done.stdout + done.stderr
    assert emulator.meters(charges=False)["actions_used"] == 0


def test_a_real_key_without_allow_spend_is_not_used_and_never_printed(tmp_path: Path) -> None:
    """A key for a non-loopback Clay, no ``--allow-spend``: the embedded emulator answers
    instead, and stderr says how to allow spending. No request leaves the machine: the
    refusal comes before any client for that URL is made (the host does not resolve)."""
    source = tmp_path / "leads.csv"
    leads(5).to_csv(source, index=False)
    secret = "clay-key-" + "0c4e8a2f6b1d" * 3
    env = {"CLAY_API_KEY": secret, "CLAY_BASE_URL": "https://clay.invalid/public/v0"}

    done = run_program(["enrich", str(source), "-r", ROUTINE, "-q"], env)

    assert done.returncode == 0, done.stderr
    assert "--allow-spend" in done.stderr and "embedded emulator answers" in done.stderr
    assert secret not in done.stdout + done.stderr
    assert "(emulator)" in done.stdout
    assert (tmp_path / "leads.enriched.csv").exists()
