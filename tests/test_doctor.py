"""``claynb doctor``: what claynb would use, checked with free requests only, through main()."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from minimal_clay import MinimalClay

from claynb.cli import main


@pytest.fixture
def clay() -> Iterator[MinimalClay]:
    with MinimalClay() as server:
        yield server


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "CLAYNB_EMULATOR_ADMIN_URL",
        "CLAYNB_WEBHOOK_ID",
        "CLAYNB_WEBHOOK_SECRET",
        "CLAYNB_ALLOW_SPEND",
        "REDIS_URL",
        "NATS_URL",
    ):
        monkeypatch.delenv(name, raising=False)


def doctor(capsys: Any) -> tuple[int, str]:
    code = main(["doctor"])
    return code, capsys.readouterr().out


def test_without_a_key_it_says_how_to_get_one(capsys: Any) -> None:
    code, out = doctor(capsys)
    assert code == 1
    assert "CLAY_API_KEY is not set" in out and "fix: create a key in Clay" in out


def test_against_a_server_that_is_not_an_emulator_it_asks_only_get_me(
    clay: MinimalClay, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("CLAY_API_KEY", clay.api_key)
    monkeypatch.setenv("CLAY_BASE_URL", clay.url)
    code, out = doctor(capsys)
    assert code == 0, out
    assert "workspace ws_min" in out and "by GET /me" in out
    assert "costs are estimated" in out
    assert "clay webhooks create" in out  # no webhook yet: how to make one
    assert clay.requests == [("GET", "/public/v0/me")]  # free, and never an /_emulator path
    assert clay.api_key not in out


def test_against_the_emulator_it_says_so_and_spends_nothing(
    make_emulator: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    emu = make_emulator()
    monkeypatch.setenv("CLAY_API_KEY", emu.api_key)
    monkeypatch.setenv("CLAY_BASE_URL", emu.url)
    monkeypatch.setenv("CLAYNB_EMULATOR_ADMIN_URL", emu.admin_url)
    before = emu.meters(charges=False)
    code, out = doctor(capsys)
    assert code == 0, out
    assert "emulator" in out and "not real Clay" in out and "Data Credits left" in out
    after = emu.meters(charges=False)
    assert (
        (after["actions_used"], after["data_credits_used"])
        == (0, 0)
        == (
            before["actions_used"],
            before["data_credits_used"],
        )
    )
    assert after["runs"]["total"] == 0


def test_a_refused_key_a_half_set_webhook_and_an_unpriced_routine_are_reported(
    clay: MinimalClay, monkeypatch: pytest.MonkeyPatch, capsys: Any, claynb_home: Path
) -> None:
    monkeypatch.setenv("CLAY_API_KEY", "not-the-key-0000")
    monkeypatch.setenv("CLAY_BASE_URL", clay.url)
    monkeypatch.setenv("CLAYNB_WEBHOOK_ID", "wh_123")
    claynb_home.mkdir(parents=True, exist_ok=True)
    (claynb_home / "claynb.toml").write_text(
        '[routines."function:t_x"]\ninputs = { email = "email" }\n'
    )
    code, out = doctor(capsys)
    assert code == 1
    assert "refused the key (401)" in out
    assert "CLAYNB_WEBHOOK_ID is set but CLAYNB_WEBHOOK_SECRET is not" in out
    assert "function:t_x" in out and "no declared cost" in out
    assert "not-the-key-0000" not in out


def test_a_webhook_secret_is_never_printed(
    clay: MinimalClay, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("CLAY_API_KEY", clay.api_key)
    monkeypatch.setenv("CLAY_BASE_URL", clay.url)
    monkeypatch.setenv("CLAYNB_WEBHOOK_ID", "wh_123")
    monkeypatch.setenv("CLAYNB_WEBHOOK_SECRET", "whsec_do_not_print_me")
    code, out = doctor(capsys)
    assert code == 0 and "wh_123, signing secret set" in out
    assert "whsec_do_not_print_me" not in out
