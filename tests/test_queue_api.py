"""The queue tier's public surface: lazy names, no rq at import, the worker command's errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from claynb.cli import main


def test_importing_claynb_does_not_import_rq() -> None:
    code = "import sys, claynb; claynb.queue; print('rq' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_public_name_resolves_and_is_sorted() -> None:
    import claynb.queue as q
    import claynb.services as s

    assert q.__all__ == sorted(q.__all__) and s.__all__ == sorted(s.__all__)
    for module in (q, s):
        for name in module.__all__:
            assert getattr(module, name) is not None
    with pytest.raises(AttributeError):
        q.nope  # noqa: B018


def test_worker_command_says_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert main(["worker"]) == 2
    assert "REDIS_URL" in capsys.readouterr().err
    assert main(["worker", "--redis-url", "redis://127.0.0.1:1/0"]) == 2
    assert "CLAY_API_KEY" in capsys.readouterr().err


def test_job_options_reject_an_unknown_budget_policy() -> None:
    from claynb import ConfigError
    from claynb.queue import JobOptions

    with pytest.raises(ConfigError, match="on_budget"):
        JobOptions(on_budget="spend-anyway")
    opts = JobOptions(backoff_s=(1, 2))
    assert JobOptions.from_dict(opts.to_dict()) == opts


def test_worker_settings_never_show_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from claynb.queue._jobs import WorkerSettings

    monkeypatch.setenv("CLAY_API_KEY", "clay_live_secret_123456")
    settings = WorkerSettings.from_env()
    assert "clay_live_secret_123456" not in repr(settings)


def test_a_worker_recognises_the_same_clay_with_or_without_the_api_path() -> None:
    from claynb.queue._jobs import same_clay

    assert same_clay("http://127.0.0.1:8765/public/v0", "http://127.0.0.1:8765/")
    assert not same_clay("http://127.0.0.1:8765", "http://127.0.0.1:8766")
