"""`claynb simulate` end to end: through main() and as a real subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from claynb.cli import main


def test_table_for_every_tier(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--volume", "3000", "--slo", "120"]) == 0
    out = capsys.readouterr().out
    assert "3,000 leads/day" in out and "SLO 2.0 min" in out
    header = next(line for line in out.splitlines() if "direct" in line and "queue" in line)
    assert "events" in header
    for row in ("slow wait (p95)", "leads missing the target", "Clay bill", "infrastructure"):
        assert row in out
    assert "/month" in out and "e+" not in out


def test_one_tier_with_overrides_and_a_recommendation(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "simulate",
            "--tier",
            "queue",
            "--volume",
            "20000",
            "--workers",
            "8",
            "--rate-limit",
            "none",
            "--budget",
            "10000",
            "--recommend",
            "--team-size",
            "4",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "queue" in out and "direct" not in out.split("recommended:")[0]
    assert "recommended: queue" in out
    assert "needs about 10 people" in out


def test_png_is_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "sim.png"
    assert main(["simulate", "--volume", "2000", "--png", str(target)]) == 0
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(target) in capsys.readouterr().out


def test_bad_values_exit_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--batch-size", "500"]) == 2
    assert "batch_size" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["simulate", "--tier", "kafka"])


def test_subprocess_matrix(tmp_path: Path) -> None:
    target = tmp_path / "matrix.png"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "claynb",
            "simulate",
            "--matrix",
            "--volume",
            "5000",
            "--png",
            str(target),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert target.read_bytes()[:4] == b"\x89PNG"
