"""One state home serves one Clay: a cached answer from the emulator is never a real one.

The cache answers by routine id and inputs, so without this a row the emulator made up
would come back ``cached`` (cost 0) from a real-Clay call with the same routine and inputs.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import claynb
from claynb._connect import LOCAL_CLAY, clay_identity, clay_of
from claynb.pipeline._journal import Journal
from claynb.wire._exceptions import ConfigError

REAL = "https://api.clay.com/public/v0"
LEADS = pd.DataFrame({"Email": ["ada@acme.com", "grace@navy.mil"]})


def enrich(client: object) -> pd.DataFrame:
    return claynb.enrich(LEADS, "enrich-person", {"email": "Email"}, client=client, progress=False)


def test_clays_on_this_machine_are_one_and_others_are_their_origin() -> None:
    assert clay_identity("http://127.0.0.1:5001/public/v0") == LOCAL_CLAY
    assert clay_identity("http://localhost:9/public/v0") == LOCAL_CLAY
    assert clay_identity(REAL) == "https://api.clay.com"
    assert clay_identity("https://user:pw@API.clay.com:8443/x") == "https://api.clay.com:8443"


def test_none_is_what_connect_would_pick(monkeypatch: pytest.MonkeyPatch) -> None:
    assert clay_of(None) == LOCAL_CLAY  # no key: the emulator
    monkeypatch.setenv("CLAY_API_KEY", "a-key-not-used-for-anything")
    assert clay_of(None) == LOCAL_CLAY  # a key, but spending not allowed: still the emulator
    monkeypatch.setenv("CLAYNB_ALLOW_SPEND", "1")
    assert clay_of(None) == "https://api.clay.com"


def test_a_home_the_emulator_answered_refuses_real_clay_before_sending(make_emulator) -> None:
    emu = make_emulator()
    first = enrich(emu.client())
    assert set(first["clay_status"]) <= {"enriched", "no_match"}
    real = claynb.ClayClient("clay_live_not_a_real_key_0123", base_url=REAL)
    with pytest.raises(ConfigError, match="CLAYNB_HOME") as refused:
        enrich(real)
    assert "clay_live_not_a_real_key_0123" not in str(refused.value)
    # another emulator (a new port, as every kernel gets) is the same Clay
    again = enrich(make_emulator().client())
    assert set(again["clay_status"]) == {"cached"}


def test_a_home_real_clay_answered_refuses_the_emulator(make_emulator, claynb_home: Path) -> None:
    with Journal.open(claynb_home) as journal:
        journal.bind_clay(clay_identity(REAL))  # what a first real-Clay call records
    emu = make_emulator()
    with pytest.raises(ConfigError, match="holds answers from https://api.clay.com"):
        enrich(emu.client())
    assert emu.meters(charges=False)["per_routine"].get("enrich-person", {}).get("runs", 0) == 0
