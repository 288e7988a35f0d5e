"""``claynb enrich FILE`` stopped mid-run (Ctrl-C, or ``kill -9``), then the same command again.

The command runs as a real process (``python -m claynb enrich ...``) against an emulator
this test started, found through ``CLAY_BASE_URL``/``CLAY_API_KEY``. It is stopped once the
journal shows a run landed and most of the work is still to do (a state, not a moment
on the clock), then the same command runs to the end. The reference is an uninterrupted
run of the same file against a second emulator with the same seed.

A stop can land while a POST is on the wire: Clay may or may not have started that run,
and there is no way to ask, so those rows are ``unknown`` by design and never re-sent on
their own. The checks allow exactly that: every other row ends as the uninterrupted run
ended it, and no lead is charged twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from claynb.pipeline._files import read_frame
from claynb.pipeline._journal import Journal
from claynb.pipeline._work import item_key

ROUTINE = "enrich-person"
FIELDS = ["clay_full_name", "clay_title", "clay_company_domain", "clay_linkedin_url"]
LATENCY = (0.3, 0.6)  # 15 runs, two at a time: several seconds of work to stop in the middle
BATCH, CONCURRENCY = 20, 2
STOP_WITHIN_S = 120.0  # a few times the whole run on a quiet machine


def write_leads(path: Path) -> pd.DataFrame:
    emails = [f"r{i}.s{i}@stop{i % 11}.com" for i in range(300)]
    df = pd.DataFrame({"Email": emails + [e.title() for e in emails[::15]]})
    df.to_csv(path, index=False)
    return df


def command(source: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "claynb", "enrich", str(source), "-r", ROUTINE, "-i", "email=Email",
        "--batch-size", str(BATCH), "--concurrency", str(CONCURRENCY), *extra,
    ]  # fmt: skip


def environment(emu: Any, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CLAYNB_ALLOW_SPEND"}
    env.update(CLAY_BASE_URL=emu.url, CLAY_API_KEY=emu.api_key, CLAYNB_HOME=str(home))
    return env


def landed_and_more_to_do(home: Path, total_batches: int) -> bool:
    """At least one run landed and at most half of the work is done or under way."""
    if not (home / "claynb.sqlite").exists():
        return False
    with Journal.open(home) as journal:
        states = [run["state"] for run in journal.runs()]
    return "finished" in states and len(states) <= total_batches // 2


def stop_mid_run(emu: Any, source: Path, home: Path, how: signal.Signals) -> int:
    proc = subprocess.Popen(
        command(source, "-q"),
        env=environment(emu, home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + STOP_WITHIN_S
    while not landed_and_more_to_do(home, 300 // BATCH):
        assert proc.poll() is None, "the command ended before it could be stopped"
        assert time.monotonic() < deadline, "no run landed in time"
        time.sleep(0.02)
    proc.send_signal(how)
    _, errors = proc.communicate(timeout=STOP_WITHIN_S)
    assert "Traceback" not in errors, errors
    if how is signal.SIGINT:
        assert "interrupted" in errors and "run the same command to continue" in errors
    return proc.returncode


def charged(emu: Any) -> list[str]:
    return [c["inputs_key"] for c in emu.meters(charges=True)["charges"]]


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_the_same_command_continues_after_a_stop_and_pays_for_nothing_twice(
    make_emulator: Any, tmp_path: Path, how: signal.Signals
) -> None:
    source = tmp_path / "leads.csv"
    df = write_leads(source)
    reference_emu = make_emulator(seed=3)
    done = subprocess.run(
        command(source, "-q", "-o", str(tmp_path / "reference.csv")),
        env=environment(reference_emu, tmp_path / "reference-home"),
        capture_output=True,
        text=True,
        timeout=STOP_WITHIN_S,
    )
    assert done.returncode == 0, done.stderr
    reference = read_frame(tmp_path / "reference.csv")
    reference_charged = set(charged(reference_emu))

    emu = make_emulator(seed=3, run_latency_s=LATENCY)
    home = tmp_path / "home"
    rc = stop_mid_run(emu, source, home, how)
    assert rc == (130 if how is signal.SIGINT else -signal.SIGKILL)
    assert 0 < len(charged(emu)) < len(reference_charged)  # stopped in the middle
    all_keys = [item_key(ROUTINE, {"email": e.lower()}) for e in df["Email"]]
    with Journal.open(home) as journal:
        landed = set(journal.cached(ROUTINE, all_keys))
    assert landed

    again = subprocess.run(
        command(source),
        env=environment(emu, home),
        capture_output=True,
        text=True,
        timeout=STOP_WITHIN_S,
    )

    out = read_frame(tmp_path / "leads.enriched.csv")
    assert out["Email"].tolist() == df["Email"].tolist()
    keys = pd.Series(all_keys)
    unknown = (out["clay_status"] == "unknown").to_numpy()
    assert again.returncode == (1 if unknown.any() else 0), again.stderr
    unknown_keys = set(keys[unknown])
    assert len(unknown_keys) <= BATCH * CONCURRENCY  # at most the POSTs on the wire at the stop
    paid = charged(emu)
    assert len(paid) == len(set(paid)), "a lead was charged twice"
    assert set(paid) - unknown_keys == reference_charged - unknown_keys
    assert set(out.loc[~unknown, "clay_status"]) <= {"enriched", "no_match", "cached"}
    known = out.loc[~unknown, FIELDS].fillna("")
    pd.testing.assert_frame_equal(known, reference.loc[~unknown, FIELDS].fillna(""))
    # Rows the stopped command landed are served from the cache, at no cost.
    assert (out.loc[keys.isin(landed).to_numpy(), "clay_status"] == "cached").all()
    summary = again.stdout.strip().splitlines()
    assert len(summary) == 1 and "leads.enriched.csv" in summary[0]
