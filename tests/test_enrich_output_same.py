"""The output frame, value for value and dtype for dtype, as the per-row implementation
wrote it (before planning and merging became columnar): ``tests/data/enrich_mixed_expected.json``.

Mixed frames against the emulator over real HTTP: duplicates spelled differently, NA
values, blanks, invalid inputs, rows cached by an earlier call, rows dead-lettered by an
earlier call, fresh matches and misses; a routine with integer fields; a routine with
two inputs. ``python tests/test_enrich_output_same.py`` rewrites the file (only ever
from an implementation known to be right).
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import claynb
from claynb._routines import DEFAULT_ROUTINES, run_item
from claynb.pipeline._merge import _text_dtype

EXPECTED = Path(__file__).parent / "data" / "enrich_mixed_expected.json"


def _emails(n: int, start: int = 0) -> list[str]:
    return [f"first{i}.last{i}@company{i % 13}.com" for i in range(start, start + n)]


def _matched(n: int, start: int) -> list[str]:
    person = DEFAULT_ROUTINES["enrich-person"]
    hits = [e for e in _emails(20 * n, start) if run_item(person, {"email": e}).status == "matched"]
    return hits[:n]


def _outputs(make_emulator: Callable[..., Any]) -> dict[str, pd.DataFrame]:
    """The three frames enriched, after the calls that cache and dead-letter some rows."""
    emu = make_emulator(credits_out="item_failures")
    client = claynb.ClayClient(api_key=emu.api_key, base_url=emu.url)

    def enrich(df: pd.DataFrame, routine: str, inputs: dict[str, str]) -> pd.DataFrame:
        return claynb.enrich(
            df,
            routine,
            inputs,
            client=client,
            progress=False,
            max_attempts=2,
            poll_max_interval=0.05,
        )

    cached, failed, fresh = _emails(4), _matched(3, 500), _emails(12, 40)
    enrich(pd.DataFrame({"Email": cached}), "enrich-person", {"email": "Email"})
    left = emu.meters(charges=False)["data_credits_left"]
    emu.set_credits(data_credits_left=0)
    enrich(pd.DataFrame({"Email": failed}), "enrich-person", {"email": "Email"})
    emu.set_credits(data_credits_left=left)

    emails = [
        *cached,
        " " + cached[0].upper(),
        None,
        *failed,
        "nope",
        "",
        np.nan,
        *fresh,
        fresh[1],
        "MAILTO:" + fresh[2],
        failed[0],
        "  ",
        cached[2],
    ]
    person = pd.DataFrame(
        {"Email": emails, "Score": range(len(emails))},
        index=pd.Index([f"r{i % 7}" for i in range(len(emails))], name="row"),
    )
    domains = [
        "acme.com",
        "https://www.Acme.com/about",
        None,
        "globex.io",
        "bad domain",
        "initech.com",
        "globex.io",
        "",
        "hooli.xyz",
    ]
    company = pd.DataFrame({"Domain": domains})
    names = ["Ada Lovelace", "ada  lovelace", None, "Grace Hopper", "Alan Turing", "1234"]
    work = pd.DataFrame(
        {
            "Name": names,
            "Domain": ["acme.com", "acme.com", "acme.com", None, "turing.org", "x.com"],
        },
        index=[10, 3, 10, 7, 1, 0],
    )
    return {
        "person": enrich(person, "enrich-person", {"email": "Email"}),
        "company": enrich(company, "enrich-company", {"domain": "Domain"}),
        "work": enrich(work, "find-work-email", {"full_name": "Name", "company_domain": "Domain"}),
    }


def _plain(value: Any) -> Any:
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _described(df: pd.DataFrame) -> dict[str, Any]:
    """A frame as JSON can hold it: index, and per column its dtype and values."""
    text = str(pd.Series([], dtype=_text_dtype()).dtype)
    return {
        "index": [_plain(v) for v in df.index],
        "columns": {
            name: {
                "dtype": "text" if str(df[name].dtype) == text else str(df[name].dtype),
                "values": [_plain(v) for v in df[name]],
            }
            for name in df.columns
        },
    }


def test_output_is_what_the_per_row_implementation_wrote(make_emulator: Any) -> None:
    expected = json.loads(EXPECTED.read_text())
    got = json.loads(json.dumps(_described_all(make_emulator)))
    assert list(got) == list(expected)
    for case, frame in expected.items():
        assert got[case]["index"] == frame["index"], case
        assert list(got[case]["columns"]) == list(frame["columns"]), case
        for name, column in frame["columns"].items():
            assert got[case]["columns"][name] == column, (case, name)


def _described_all(make_emulator: Callable[..., Any]) -> dict[str, Any]:
    return {case: _described(df) for case, df in _outputs(make_emulator).items()}


if __name__ == "__main__":  # rewrite the expected outputs
    import os

    from claynb.emulator import Emulator

    os.environ["CLAYNB_HOME"] = tempfile.mkdtemp()
    started: list[Any] = []

    def make(**kwargs: Any) -> Any:  # as the make_emulator fixture makes them
        emu = Emulator(run_latency_s=0, plan="growth", rate_limit_rps=None, **kwargs)
        emu.start()
        started.append(emu)
        return emu

    try:
        EXPECTED.write_text(json.dumps(_described_all(make), indent=1) + "\n")
    finally:
        for emu in started:
            emu.stop()
    sys.exit(0)
