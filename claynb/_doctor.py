"""``claynb doctor``: what claynb would use against Clay, checked without spending anything.

Moving from the emulator to real Clay means an API key, permission to spend, a workspace,
routines with declared prices, a webhook made with Clay's CLI, and somewhere to keep state.
The doctor reads each from the environment and the files claynb reads, and makes free
requests only: ``GET /me`` on the Public API (Clay meters runs and searches, never ``/me``)
and, on an emulator claynb was told of, its meters. It prints one finding a line, each
with the fix when something is missing or wrong, and exits 1 when anything would stop
claynb from working (2 for bad arguments). Against the emulator it says so: nothing it
reports there is real Clay. No secret is printed: a key or signing secret is only "set".
"""

from __future__ import annotations

import argparse
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

from claynb._catalogue import catalogue_paths, load_catalogue
from claynb._connect import ENV_ALLOW_SPEND, ENV_BASE_URL, ENV_KEY, is_loopback
from claynb._home import state_home
from claynb._routines import DEFAULT_ROUTINES, Routine
from claynb.pipeline._journal import FILENAME as JOURNAL_FILE
from claynb.wire._client import ClayClient
from claynb.wire._config import (
    DEFAULT_BASE_URL,
    ENV_ADMIN_URL,
    ENV_WEBHOOK_ID,
    ENV_WEBHOOK_SECRET,
    RetryPolicy,
    Timeout,
)
from claynb.wire._exceptions import AuthenticationError, ClayError, ConfigError
from claynb.wire._sources import SOURCES_DB

#: Seconds to wait for Clay, Redis or NATS to answer: long enough for a slow network.
PROBE_TIMEOUT_S = 10.0


class Verdict(StrEnum):
    """How a finding reads: fine, for information, worth fixing, or in the way."""

    OK = "ok"
    NOTE = "note"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Finding:
    """One thing the doctor looked at, what it found and, when it matters, the fix."""

    topic: str
    verdict: Verdict
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class Setup:
    """What the environment says claynb would talk to."""

    api_key: str | None
    base_url: str
    admin_url: str | None
    allow_spend: bool

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Setup:
        return cls(
            api_key=env.get(ENV_KEY) or None,
            base_url=env.get(ENV_BASE_URL) or DEFAULT_BASE_URL,
            admin_url=env.get(ENV_ADMIN_URL) or None,
            allow_spend=env.get(ENV_ALLOW_SPEND, "").strip().lower() in {"1", "true", "yes"},
        )

    @property
    def emulated(self) -> bool:
        return self.admin_url is not None


def diagnose(env: Mapping[str, str], *, home: str | Path | None = None) -> list[Finding]:
    """Every finding, in the order a user would fix them."""
    setup = Setup.from_env(env)
    findings = [_connection(setup)]
    if setup.api_key:
        findings.extend(_workspace(setup))
    findings.extend(_routines(setup, home))
    findings.append(_webhook(setup, env))
    findings.append(_state(home))
    findings.append(_redis(env))
    findings.append(_nats(env))
    return findings


def _connection(setup: Setup) -> Finding:
    if not setup.api_key:
        return Finding(
            "Clay",
            Verdict.FAIL,
            f"{ENV_KEY} is not set: claynb.connect() would start the embedded emulator",
            f"create a key in Clay (Settings -> Account -> API keys), then export {ENV_KEY}=...",
        )
    if setup.emulated:
        return Finding(
            "Clay",
            Verdict.NOTE,
            f"a claynb emulator at {setup.base_url}, not real Clay: costs are metered by the "
            "emulator, nothing is charged",
        )
    if is_loopback(setup.base_url):
        return Finding(
            "Clay",
            Verdict.NOTE,
            f"a server on this machine at {setup.base_url} (not known to be an emulator: "
            f"costs are estimated; an emulator's {ENV_ADMIN_URL} makes them metered)",
        )
    if not setup.allow_spend:
        return Finding(
            "Clay",
            Verdict.WARN,
            f"real Clay at {setup.base_url}, but spending is not allowed: claynb.connect() "
            "would use the embedded emulator instead",
            f"export {ENV_ALLOW_SPEND}=1 (or connect(allow_spend=True)) when you mean to spend",
        )
    return Finding("Clay", Verdict.OK, f"real Clay at {setup.base_url}; spending allowed")


def _workspace(setup: Setup) -> list[Finding]:
    """``GET /me`` (free), and the emulator's meters when it is one."""
    try:
        with _client(setup) as client:
            me = client.me()
            meters = client.emulator_meters() if setup.emulated else None
    except AuthenticationError:
        return [
            Finding(
                "workspace",
                Verdict.FAIL,
                f"{setup.base_url} refused the key (401)",
                f"check {ENV_KEY}: it goes in the clay-api-key header; create a new key in "
                "Clay (Settings -> Account -> API keys) if it was revoked",
            )
        ]
    except ClayError as exc:
        return [
            Finding(
                "workspace",
                Verdict.FAIL,
                f"GET /me failed: {exc}",
                f"check {ENV_BASE_URL} and the network (the Public API is {DEFAULT_BASE_URL})",
            )
        ]
    who = f"user {me.user_name or me.user_id}" if (me.user_name or me.user_id) else "no user"
    found = [Finding("workspace", Verdict.OK, f"workspace {me.workspace_id} ({who}), by GET /me")]
    if meters is not None:
        left = (
            f"{meters.get('actions_left')} Actions and {meters.get('data_credits_left')} "
            f"Data Credits left on the emulator's {meters.get('plan')} plan"
        )
        found.append(Finding("meters", Verdict.NOTE, left))
    return found


def _client(setup: Setup) -> ClayClient:
    assert setup.api_key is not None
    return ClayClient(
        setup.api_key,
        base_url=setup.base_url,
        timeout=Timeout(PROBE_TIMEOUT_S),
        retry=RetryPolicy(max_attempts=2),
        emulator_admin_url=setup.admin_url,
    )


def _routines(setup: Setup, home: str | Path | None) -> list[Finding]:
    try:
        declared = load_catalogue(home)
    except ConfigError as exc:
        return [Finding("routines", Verdict.FAIL, exc.message, "fix the catalogue file")]
    files = ", ".join(str(p) for p in catalogue_paths(home))
    found = [_routine(routine) for routine in declared.values()]
    if not declared:
        demo = ", ".join(DEFAULT_ROUTINES) if setup.emulated or not setup.api_key else ""
        found.append(
            Finding(
                "routines",
                Verdict.NOTE,
                "no claynb.toml (in this directory or CLAYNB_HOME): a workspace routine runs "
                "as enrich('function:t_...', inputs={...}, cost=claynb.Cost(...))"
                + (f"; the emulator's demo routines: {demo}" if demo else ""),
                'declare routines once in claynb.toml: [routines."function:t_..."] with '
                "inputs, fields and cost",
            )
        )
    else:
        found.insert(0, Finding("routines", Verdict.OK, f"{len(declared)} declared in {files}"))
    return found


def _routine(routine: Routine) -> Finding:
    inputs = ", ".join(f"{name} ({routine.kind_of(name)})" for name in routine.inputs)
    if routine.cost is None:
        return Finding(
            f"  {routine.id}",
            Verdict.WARN,
            f"inputs {inputs}; no declared cost: its cost columns stay empty and a capped "
            "Budget refuses it",
            "add cost = { actions = ..., data_credits = ... } (the most one row can cost)",
        )
    cost = routine.cost
    return Finding(
        f"  {routine.id}",
        Verdict.OK,
        f"inputs {inputs}; at most {cost.actions:g} Actions + {cost.data_credits:g} Data "
        "Credits a row (costs on real Clay are estimated from this)",
    )


def _webhook(setup: Setup, env: Mapping[str, str]) -> Finding:
    webhook_id = env.get(ENV_WEBHOOK_ID, "").strip()
    secret = bool(env.get(ENV_WEBHOOK_SECRET, "").strip())
    create = (
        "Clay registers webhooks with its CLI: run `clay webhooks create <a URL that reaches "
        f"your receiver>`, then export {ENV_WEBHOOK_ID}=<its id> and "
        f"{ENV_WEBHOOK_SECRET}=<its signingSecret, shown once>"
    )
    if webhook_id and secret:
        return Finding("webhook", Verdict.OK, f"{webhook_id}, signing secret set")
    if webhook_id or secret:
        have, missing = (
            (ENV_WEBHOOK_ID, ENV_WEBHOOK_SECRET)
            if webhook_id
            else (ENV_WEBHOOK_SECRET, ENV_WEBHOOK_ID)
        )
        return Finding("webhook", Verdict.FAIL, f"{have} is set but {missing} is not", create)
    if setup.emulated:
        return Finding(
            "webhook",
            Verdict.NOTE,
            "none set: the event tier registers one on the emulator when it starts",
        )
    return Finding(
        "webhook",
        Verdict.WARN,
        "none set: the event tier and claynb receiver find runs by polling only",
        create,
    )


def _state(home: str | Path | None) -> Finding:
    root = state_home(home)
    where = (
        f"{root.resolve()}: cache, journal and ledger in {JOURNAL_FILE}, webhook sources' "
        f"counts in {SOURCES_DB}"
    )
    probe = root if root.exists() else next(p for p in root.resolve().parents if p.exists())
    if not os.access(probe, os.W_OK):
        return Finding("state", Verdict.FAIL, f"{where} (not writable)", "set CLAYNB_HOME")
    return Finding("state", Verdict.OK, where + ("" if root.exists() else " (made on first use)"))


def _redis(env: Mapping[str, str]) -> Finding:
    url = env.get("REDIS_URL")
    if not url:
        return Finding(
            "redis", Verdict.NOTE, "REDIS_URL not set: the queue tier starts a private Redis"
        )
    from claynb.services.redis import safe_url

    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=PROBE_TIMEOUT_S).ping()
    except Exception as exc:  # any failure to reach it is the finding
        return Finding(
            "redis",
            Verdict.FAIL,
            f"{safe_url(url)} does not answer: {type(exc).__name__}",
            "start it, fix REDIS_URL, or unset it",
        )
    return Finding("redis", Verdict.OK, f"{safe_url(url)} answers PING")


def _nats(env: Mapping[str, str]) -> Finding:
    url = env.get("NATS_URL")
    if not url:
        return Finding(
            "nats", Verdict.NOTE, "NATS_URL not set: the event tier starts an embedded NATS"
        )
    parts = urlsplit(url)
    shown = f"{parts.scheme}://{parts.hostname}:{parts.port or 4222}"
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or 4222), PROBE_TIMEOUT_S
        ):
            pass
    except OSError as exc:
        return Finding(
            "nats",
            Verdict.FAIL,
            f"{shown} does not accept connections: {exc.strerror or exc}",
            "start it, fix NATS_URL, or unset it",
        )
    return Finding("nats", Verdict.OK, f"{shown} accepts connections")


def render(findings: list[Finding]) -> str:
    """The findings as the doctor prints them, one a line, fixes indented below."""
    width = max(len(f.topic) for f in findings)
    lines = []
    for f in findings:
        lines.append(f"[{f.verdict.value:>4}] {f.topic:<{width}}  {f.detail}")
        if f.fix:
            lines.append(f"{'':>{width + 9}}fix: {f.fix}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--home", default=None, help="the state directory to check (default CLAYNB_HOME)"
    )


def run(args: argparse.Namespace) -> int:
    findings = diagnose(os.environ, home=args.home)
    print(render(findings))
    failed = [f for f in findings if f.verdict == Verdict.FAIL]
    print(
        f"\n{len(failed)} problem(s) to fix before claynb can use this setup."
        if failed
        else "\nNothing in the way; nothing was spent."
    )
    return 1 if failed else 0
