"""Progress: a bar where one can be drawn, plain text elsewhere, nothing when turned off."""

from __future__ import annotations

import io
from typing import Any

import pandas as pd

import claynb
from claynb._routines import Cost
from claynb.pipeline._progress import Progress, make_progress


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_text_progress_reports_rows_credits_and_time() -> None:
    out = io.StringIO()
    with Progress(4, desc="enrich-person", stream=out) as bar:
        assert bar.mode == "text"  # not a terminal, not Jupyter
        bar.advance(1, Cost(1, 1))
        bar.advance(3, Cost(2, 5))
    text = out.getvalue()
    assert "enrich-person: 1/4 rows (25%)" in text
    assert (
        text.strip()
        .splitlines()[-1]
        .startswith("enrich-person: 4/4 rows (100%), 3 Actions, 6 Data Credits")
    )


def test_a_terminal_gets_a_tqdm_bar() -> None:
    out = Tty()
    with Progress(10, desc="rows", stream=out) as bar:
        assert bar.mode == "bar"
        bar.advance(10, Cost(10, 10))
    assert "10/10" in out.getvalue() and "Data Credits" in out.getvalue()


def test_off_prints_nothing() -> None:
    out = io.StringIO()
    with make_progress(False, 5, "x") as bar:
        bar._stream = out
        bar.advance(5)
    assert out.getvalue() == "" and bar.done == 5


def test_enrich_reports_the_rows_it_sends(emulator: Any, capsys: Any) -> None:
    client = claynb.ClayClient(api_key=emulator.api_key, base_url=emulator.url)
    df = pd.DataFrame({"Email": [f"p{i}.r@progress.com" for i in range(12)] + ["bad"]})
    claynb.enrich(df, "enrich-person", {"email": "Email"}, client=client, progress="text")
    err = capsys.readouterr().err
    assert "enrich-person (direct): 12/12 rows (100%)" in err
    used = emulator.meters(charges=False)
    assert f"{used['data_credits_used']:g} Data Credits" in err
