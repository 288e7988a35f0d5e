"""One state home for every reader: the journal, the client's source counts, the receiver."""

from __future__ import annotations

from pathlib import Path

import pytest

import claynb
from claynb._home import state_home
from claynb.events._dedupe import SqliteDedupeStore
from claynb.pipeline._journal import Journal


def test_every_reader_finds_the_same_home_with_tilde_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CLAYNB_HOME", "~/claynb-state")
    home = tmp_path / "claynb-state"
    assert state_home() == home
    with Journal.open() as journal:
        assert journal.path.parent == home
    with claynb.ClayClient("clay_test_home_key", base_url="http://127.0.0.1:9") as client:
        assert Path(client.home) == home
    store = SqliteDedupeStore()
    try:
        assert store.path.parent.parent == home
    finally:
        store.close()
    assert not (Path.cwd() / "~").exists()  # nothing was written under a literal "~"


def test_an_explicit_home_wins_and_the_default_is_local(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAYNB_HOME", str(tmp_path / "from-env"))
    assert state_home(tmp_path / "given") == tmp_path / "given"
    assert state_home() == tmp_path / "from-env"
    monkeypatch.delenv("CLAYNB_HOME")
    assert state_home() == Path(".claynb")
