"""What ``claynb enrich`` and ``claynb search`` share: which Clay, the budget, exit codes.

**Which Clay.** The rule of :func:`claynb.connect`: real Clay only with a key *and* an
explicit permission to spend (``--allow-spend`` or ``CLAYNB_ALLOW_SPEND=1``); a loopback
URL (an emulator on this machine, ``claynb emulator``) needs no permission; with no key,
an embedded emulator that lives as long as the command. ``--base-url``/``--api-key``
override ``CLAY_BASE_URL``/``CLAY_API_KEY``; the environment is the better place for a
key, since a command line is visible to every user of the machine (``ps``).

**Exit codes** (:class:`ExitCode`): 0 everything asked for is done; 1 the command finished
but left work undone (the output is written and says which rows); 2 nothing was done: a
wrong input, or Clay refused at once (one line on stderr says why, no traceback); 130
interrupted (Ctrl-C): what Clay had answered is kept.

Every line printed goes through :func:`claynb._secrets.redact`: a key never reaches the
terminal, even inside Clay's own error text.
"""

from __future__ import annotations

import argparse
import enum
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from claynb._connect import (
    ENV_ALLOW_SPEND,
    ENV_BASE_URL,
    ENV_KEY,
    SpendGuardWarning,
    connect,
    is_loopback,
    spend_allowed,
)
from claynb._plans import PLANS
from claynb._secrets import redact, register_secret
from claynb.pipeline._budget import Budget
from claynb.wire._client import ClayClient
from claynb.wire._config import DEFAULT_BASE_URL


class ExitCode(enum.IntEnum):
    """What a finished ``claynb enrich`` or ``claynb search`` tells the shell."""

    DONE = 0
    NOT_DONE = 1
    BAD_INPUT = 2
    INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C


def amount(text: str) -> float:
    """An argparse type: a number of 0 or more (a budget, a cost)."""
    try:
        value = float(text.replace(",", "").replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0 or value != value:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("which Clay (default: CLAY_API_KEY, else an emulator)")
    group.add_argument(
        "--base-url",
        metavar="URL",
        help="Clay's Public API (default: CLAY_BASE_URL, else real Clay); "
        "a loopback URL is a local emulator",
    )
    group.add_argument(
        "--api-key",
        metavar="KEY",
        help="the API key (default: CLAY_API_KEY; prefer the variable: a command line "
        "is visible to other users)",
    )
    group.add_argument(
        "--allow-spend",
        action="store_true",
        default=None,
        help="allow spending real Clay credits (or CLAYNB_ALLOW_SPEND=1); "
        "without it a real key is not used",
    )


def add_budget_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("budget (a hard cap, never crossed)")
    for meter, what in (("actions", "Actions"), ("data-credits", "Data Credits"), ("usd", "$")):
        group.add_argument(f"--budget-{meter}", type=amount, metavar="N", help=f"cap on {what}")
    group.add_argument(
        "--budget-name",
        metavar="NAME",
        help="one budget for every process naming it on this CLAYNB_HOME (other terminals, "
        "kernels): the first to name it with caps declares it, the name alone joins it",
    )
    group.add_argument(
        "--plan",
        default="growth",
        choices=sorted(PLANS),
        help="the Clay plan that prices dollars (default growth)",
    )


def budget_from(args: argparse.Namespace) -> Budget:
    """The Budget the flags describe (no flag: no cap, dollars priced under ``--plan``;
    ``--budget-name``: shared with every process naming it, see :class:`claynb.Budget`)."""
    return Budget(
        actions=args.budget_actions,
        data_credits=args.budget_data_credits,
        usd=args.budget_usd,
        plan=args.plan,
        name=args.budget_name,
    )


def client_from(args: argparse.Namespace, command: str) -> ClayClient:
    """A client by :func:`claynb.connect`'s rule; says on stderr when it is an emulator,
    and why, in the command line's words (``--allow-spend``, not ``allow_spend=True``)."""
    register_secret(args.api_key)
    key = args.api_key or os.environ.get(ENV_KEY)
    base = args.base_url or os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL
    refused = bool(key) and not (is_loopback(base) or spend_allowed(args.allow_spend))
    with _quiet_connect():
        client = connect(api_key=args.api_key, base_url=args.base_url, allow_spend=args.allow_spend)
    if refused:
        say(
            command,
            f"{ENV_KEY} is set, but {base} is real Clay, which spends credits: add "
            f"--allow-spend (or set {ENV_ALLOW_SPEND}=1) to use it. The embedded emulator "
            "answers instead: made-up data, nothing spent",
        )
    elif on_emulator(client):
        unused = f" ({base} is not used without one)" if base != DEFAULT_BASE_URL else ""
        say(
            command,
            f"no {ENV_KEY}{unused}: the embedded emulator answers (made-up data, nothing spent)",
        )
    assert isinstance(client, ClayClient)
    return client


@contextmanager
def _quiet_connect() -> Iterator[None]:
    """connect()'s own warning, worded for Python callers, is replaced by the line above."""
    log = logging.getLogger("claynb")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SpendGuardWarning)
            yield
    finally:
        log.setLevel(level)


def on_emulator(client: Any) -> bool:
    return getattr(client, "emulator", None) is not None


def say(command: str, message: str) -> None:
    """One line on stderr, prefixed with the command, secrets redacted."""
    print(redact(f"claynb {command}: {message}"), file=sys.stderr, flush=True)


def bad_input(command: str, message: str) -> ExitCode:
    say(command, message)
    return ExitCode.BAD_INPUT


def interrupted(command: str, what: str) -> ExitCode:
    say(command, f"interrupted; {what}")
    return ExitCode.INTERRUPTED
