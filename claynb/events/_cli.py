"""``claynb receiver``: serve the event tier's webhook receiver (and, optionally, the service).

Secrets are read from the environment or from files, never from the command line (where
``ps`` would show them): ``CLAYNB_WEBHOOK_SECRET`` (the ``signingSecret`` Clay returned when
the webhook was created; ``CLAYNB_WEBHOOK_ID`` names it) and ``CLAYNB_CALLBACK_SECRET`` (the
header value set on the table's HTTP API column). Real Clay creates webhooks with its CLI
only (``clay webhooks create URL``); with ``--with-service`` on an emulator the client knows
(``CLAYNB_EMULATOR_ADMIN_URL``, or the embedded one) the webhook is registered there.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any

from claynb.wire._config import ENV_WEBHOOK_ID, ENV_WEBHOOK_SECRET

DEFAULT_PORT = 8787
WEBHOOK_PATH = "/webhooks/clay"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to listen on (default loopback)"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--bus-url",
        default=None,
        help="nats://, redis:// or kafka:// (Kafka untested); default NATS_URL, "
        "else an embedded NATS for as long as the receiver runs",
    )
    parser.add_argument("--namespace", default="default", help="event namespace on the bus")
    parser.add_argument(
        "--dedupe",
        default=None,
        help="where replays are remembered: a SQLite path or redis:// URL "
        "(default CLAYNB_HOME/events/receiver.sqlite)",
    )
    parser.add_argument("--max-body-bytes", type=int, default=None, help="larger bodies get 413")
    parser.add_argument(
        "--head-timeout-s",
        type=float,
        default=None,
        help="seconds a sender has to send a request's headers before it is cut off (default 10)",
    )
    parser.add_argument(
        "--body-timeout-s",
        type=float,
        default=None,
        help="seconds a sender has to send the body once the headers are in; then 408 (default 15)",
    )
    parser.add_argument(
        "--signing-secret-file",
        type=Path,
        default=None,
        help="file holding the webhook signing secret (else CLAYNB_WEBHOOK_SECRET)",
    )
    parser.add_argument(
        "--callback-secret-file",
        type=Path,
        default=None,
        help="file holding the HTTP API column's shared secret (else CLAYNB_CALLBACK_SECRET)",
    )
    parser.add_argument(
        "--with-service",
        action="store_true",
        help="also run the enrichment service (Clay from CLAY_API_KEY, else the emulator)",
    )
    parser.add_argument(
        "--data-credits", type=float, default=None, help="service budget: Data Credits cap"
    )
    parser.add_argument("--actions", type=float, default=None, help="service budget: Actions cap")


def _secret(path: Path | None, env: str) -> str | None:
    if path is not None:
        return path.read_text(encoding="utf-8").strip() or None
    return os.environ.get(env) or None


def settings_from(args: argparse.Namespace) -> Any:
    from claynb.events._receiver import ReceiverSettings

    signing = _secret(args.signing_secret_file, ENV_WEBHOOK_SECRET)
    webhook_id = os.environ.get(ENV_WEBHOOK_ID) or "default"
    limits = {
        name: value
        for name in ("max_body_bytes", "head_timeout_s", "body_timeout_s")
        if (value := getattr(args, name)) is not None
    }
    return ReceiverSettings(
        signing_secrets={webhook_id: signing} if signing else None,
        callback_secret=_secret(args.callback_secret_file, "CLAYNB_CALLBACK_SECRET"),
        **limits,
    )


def run(args: argparse.Namespace) -> int:
    from claynb.services.nats import NatsServer

    try:
        settings = settings_from(args)
    except ValueError as exc:  # a limit that is not positive
        print(f"claynb receiver: {exc}", file=sys.stderr)
        return 2
    if not settings.secrets() and not settings.callback_secret and not args.with_service:
        print(
            "claynb receiver: set CLAYNB_WEBHOOK_SECRET and/or CLAYNB_CALLBACK_SECRET (or the "
            "--*-secret-file options): without them every delivery would be refused.\n"
            "Clay registers webhooks with its CLI: `clay webhooks create "
            f"https://<where Clay reaches this receiver>{WEBHOOK_PATH}` prints the webhook's id "
            "(CLAYNB_WEBHOOK_ID) and its signingSecret (CLAYNB_WEBHOOK_SECRET), once.",
            file=sys.stderr,
        )
        return 2
    with ExitStack() as stack:
        bus_url = args.bus_url or os.environ.get("NATS_URL")
        if not bus_url:
            bus_url = stack.enter_context(NatsServer()).url
            print(f"embedded NATS JetStream at {bus_url} (stops with the receiver)")
        with suppress(KeyboardInterrupt):
            asyncio.run(_serve(args, settings, bus_url))
    return 0


async def _serve(args: argparse.Namespace, settings: Any, bus_url: str) -> None:
    import uvicorn

    from claynb.events._bus import safe_url
    from claynb.events._dedupe import open_dedupe_store
    from claynb.events._server import build_app

    app = build_app(settings, bus_url, args.namespace, open_dedupe_store(args.dedupe))
    base = f"http://{args.host}:{args.port}"
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level="info",
        lifespan="on",
        **settings.limits().server_options(),
    )
    server = uvicorn.Server(config)
    service = (
        await _start_service(args, settings, bus_url, f"{base}{WEBHOOK_PATH}")
        if args.with_service
        else None
    )
    if service is not None:
        app.state.receiver.checks.append(service.health_problem)
    print(
        f"claynb receiver on {base}: POST /webhooks/clay (signed), POST /callbacks/table, GET /healthz"
    )
    print(
        f"publishing to {safe_url(bus_url)} namespace {args.namespace!r}; "
        f"{len(settings.secrets())} signing secret(s), callback secret {'set' if settings.callback_secret else 'not set'}"
    )
    try:
        await server.serve()
    finally:
        if service is not None:
            await service.stop()
            await service.bus.stop()
            await service.api.client.aclose()  # its aiohttp sessions, with their sockets


async def _start_service(
    args: argparse.Namespace, settings: Any, bus_url: str, webhook_url: str
) -> Any:
    from claynb._connect import connect
    from claynb.events._breaker import CreditBreaker
    from claynb.events._bus import Bus
    from claynb.events._clay import ClientRunsApi
    from claynb.events._service import EnrichmentService, ServiceSettings
    from claynb.events._tier import webhook_for
    from claynb.pipeline._budget import Budget
    from claynb.pipeline._journal import Journal
    from claynb.wire._fleet import shared_pace

    client = connect()
    webhook_id = os.environ.get(ENV_WEBHOOK_ID)
    if not settings.secrets():
        hook = webhook_for(client, webhook_url)
        if hook:
            settings.signing_secrets = {hook["id"]: hook["signingSecret"]}
            webhook_id = hook["id"]
    aclient = client.async_twin(shared_pace(client.credentials(), bus_url))
    bus = Bus(bus_url, args.namespace)
    budget = Budget(actions=args.actions, data_credits=args.data_credits)
    service = EnrichmentService(
        bus,
        ClientRunsApi(aclient),
        CreditBreaker(budget.guard()),
        ServiceSettings(webhook_id=webhook_id),
        journal=Journal.open(),
    )
    await service.start()
    await bus.start()
    print(
        f"enrichment service consuming {bus.subject('leads')}; budget {budget!r}; "
        f"webhook {'registered' if webhook_id else 'none (polling only)'}"
    )
    return service
