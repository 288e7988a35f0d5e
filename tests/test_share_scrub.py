"""The scrubber finds secrets wherever a notebook can carry them, and says where, not what."""

from __future__ import annotations

import html
import json
from urllib.parse import quote

import nbformat
import pytest

from claynb._secrets import REDACTED, register_secret
from claynb.share._execute import declared_parameters, inject_parameters, parse_parameter
from claynb.share._known import KnownSecrets, collect_secrets, env_secrets, parameter_secrets
from claynb.share._scan import Scanner
from claynb.share._scrub import scrub_notebook, scrub_text

KEY = "clay_fake_3f9a1c77d2e84b06"
SIGNING = "sign-secret-5b2e9d0c41"


def test_env_secrets_takes_secret_named_variables_and_url_passwords() -> None:
    env = {
        "CLAY_API_KEY": KEY,
        "GITHUB_TOKEN": "ghp_abcdefgh1234",
        "DB_PASSWORD": "hunter2hunter2",
        "WEBHOOK_SECRET": SIGNING,
        "GITHUB_PAT": "pat-value-1",
        "OPENAI_APIKEY": "openai-value",
        "SENTRY_DSN": "https://0123456789abcdef0123@o1.ingest.example.test/2",
        "DATABASE_URL": "postgresql://app:dbpw@db.example.test/app",
        "HTTP_PROXY": "http://proxyuser:proxypw@proxy.example.test:3128",
        "CACHE_URL": "redis://cache.example.test:6379/0",
        "SHORT_KEY": "abc",
        "TOKENIZERS_PARALLELISM": "false",
        "RETRY_TOKEN": "1",
        "HOME": "/root/not-a-secret",
        "KEYBOARD": "us-intl",
        "PWD": "/work/here",
        "OLDPWD": "/work/there",
        "PATH": "/usr/bin",
    }
    found = env_secrets(env)
    assert found == {
        KEY,
        "ghp_abcdefgh1234",
        "hunter2hunter2",
        SIGNING,
        "pat-value-1",
        "openai-value",
        "0123456789abcdef0123",
        "dbpw",
        "proxypw",
        "abc",
    }


def test_parameters_named_like_secrets_are_secrets() -> None:
    params = {
        "api_key": KEY,
        "token": "tok-123456789",
        "webhook_secret": SIGNING,
        "apikey": "apikey-value",
        "credentials": {"user": "ada", "password": "pw"},
        "keyword": "not-a-secret-value",
        "n_leads": 12,
        "monkey": "banana-bread",
        "dsn_list": ["postgresql://u:nested-pw@h/db"],
    }
    assert parameter_secrets(params) == {
        KEY,
        "tok-123456789",
        SIGNING,
        "apikey-value",
        "ada",
        "pw",
        "nested-pw",
    }


def test_collect_secrets_includes_registered_values_and_drops_switches() -> None:
    register_secret("registered-in-this-process-42")
    found = collect_secrets([KEY, "abc", "true", "1", ""])
    assert KEY in found and "registered-in-this-process-42" in found and "abc" in found
    assert not {"true", "1", ""} & found


@pytest.mark.parametrize(
    "form", [KEY, html.escape(KEY), quote(KEY, safe=""), json.dumps(KEY)[1:-1]]
)
def test_scrub_text_replaces_every_encoded_form(form: str) -> None:
    out = scrub_text(f"<td>{form}</td>", [KEY])
    assert form not in out and REDACTED in out


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: Bearer abcdef123456",
        "clay-api-key: zzz-unknown-key-999",
        "GET https://api.example.test/v1?token=tok_9f8e7d6c5b&page=2",
        "signing secret whsec_0123456789abcdef",
        "export CLAY_API_KEY=clay_some_unregistered_key",
        "x-clay-webhook-auth: 'hook-auth-value-77'",
        "emulator key clay_test_AbCdEfGhIjKlMnOpQrStUvWx-_12",
    ],
)
def test_scrub_text_removes_secret_shaped_values_nobody_registered(text: str) -> None:
    out = scrub_text(text, [])
    assert REDACTED in out
    for token in (
        "abcdef123456",
        "zzz-unknown-key-999",
        "tok_9f8e7d6c5b",
        "0123456789abcdef",
        "clay_some_unregistered_key",
        "hook-auth-value-77",
        "AbCdEfGhIjKlMnOp",
    ):
        assert token not in out


def test_a_secret_split_by_ansi_colour_codes_is_still_found() -> None:
    coloured = f"\x1b[0;31mValueError\x1b[0m: bad key {KEY[:8]}\x1b[1m{KEY[8:]}\x1b[0m"
    out = scrub_text(coloured, [KEY])
    assert KEY not in out.replace("\x1b[1m", "").replace("\x1b[0m", "")
    assert REDACTED in out


def _notebook_full_of_secrets() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell(f"api_key = '{KEY}'")
    code.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text=f"key={KEY}\n"),
        nbformat.v4.new_output(
            "execute_result",
            execution_count=1,
            data={
                "text/plain": f"'{KEY}'",
                "text/html": f"<table><tr><td>{html.escape(KEY)}</td></tr></table>",
                "image/png": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk",
            },
        ),
        nbformat.v4.new_output(
            "error",
            ename="ClayError",
            evalue=f"signature {SIGNING} bad",
            traceback=[f"\x1b[31mClayError\x1b[0m: signature {SIGNING} bad"],
        ),
    ]
    nb.cells = [nbformat.v4.new_markdown_cell(f"Use `{SIGNING}` to verify."), code]
    nb.metadata["papermill"] = {"parameters": {"api_key": KEY}}
    nb.metadata["widgets"] = {
        "application/vnd.jupyter.widget-state+json": {
            "state": {
                "m1": {"model_name": "TextModel", "state": {"value": KEY, "description": "key"}}
            }
        }
    }
    return nb


def test_scrub_notebook_cleans_sources_outputs_metadata_and_widget_state() -> None:
    nb = _notebook_full_of_secrets()
    clean, count = scrub_notebook(nb, [KEY, SIGNING])
    text = json.dumps(clean)
    assert KEY not in text and SIGNING not in text and html.escape(KEY) not in text
    assert count >= 8
    png = clean.cells[1].outputs[1]["data"]["image/png"]
    assert png == nb.cells[1].outputs[1]["data"]["image/png"]  # binary payloads untouched
    assert (
        clean.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]["m1"][
            "state"
        ]["description"]
        == "key"
    )
    nbformat.validate(clean)
    assert KEY in json.dumps(nb)  # the input notebook is not modified


def test_the_scanner_says_where_without_saying_what() -> None:
    scanner = Scanner(KnownSecrets(frozenset({KEY, SIGNING})))
    leaks = scanner.known_in(f"prefix {KEY} suffix", "report.html")
    assert len(leaks) == 1
    assert "report.html" in str(leaks[0]) and KEY not in str(leaks[0])
    assert scanner.known_in("nothing here", "x") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("n=4", ("n", 4)),
        ("name=Ada", ("name", "Ada")),
        ("allow_spend=false", ("allow_spend", False)),
        ("latency=(0.1, 0.5)", ("latency", (0.1, 0.5))),
        ("x=None", ("x", None)),
        ("url=http://a/b?c=d", ("url", "http://a/b?c=d")),
    ],
)
def test_parse_parameter(text: str, expected: tuple[str, object]) -> None:
    assert parse_parameter(text) == expected


@pytest.mark.parametrize("text", ["novalue", "=3", "bad name=1"])
def test_parse_parameter_rejects_malformed(text: str) -> None:
    with pytest.raises(ValueError, match="name=value"):
        parse_parameter(text)


def test_parameters_are_injected_after_the_parameters_cell() -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("n = 3\nlabel = 'a'")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# t"), params, nbformat.v4.new_code_cell("n")]
    assert declared_parameters(nb) == {"n", "label"}
    out = inject_parameters(nb, {"n": 5, "label": "it's"})
    assert out.cells[2].metadata["tags"] == ["injected-parameters"]
    assert "n = 5" in out.cells[2].source and 'label = "it\'s"' in out.cells[2].source
    assert out.metadata["papermill"]["parameters"] == {"n": 5, "label": "it's"}
    assert len(nb.cells) == 3  # the input is left alone
