"""A second, minimal Clay server, written from Clay's published OpenAPI alone.

Not the emulator, and no claynb code inside it (the standard library only): a test that
passes against it shows claynb relies on what Clay documents, not on what its own
emulator adds. It serves ``GET /me``, ``POST /routines/{routine_id}/run`` for any routine
id and ``GET /routines/run/{routine_run_id}/results`` with cursor paging, under
``/public/v0``, behind the ``clay-api-key`` header. A finished run is announced to a
webhook registered beforehand (what ``clay webhooks create URL`` does on Clay) with the
documented ``{"webhookId", "createdAt", "data": {"routine_run_id"}}`` body and
``X-Clay-Signature: sha256=<hex HMAC-SHA256 of the body>``.

What a workspace routine returns is this server's own (a field per input, echoed), and
the tests say what they rely on. ``fail_run_posts`` answers the next run-starting POSTs
with a server error, either before anything starts or with the run started behind the
error, the two meanings Clay leaves open. Every request is recorded (``requests``), and
every item a run executed (``executed``), which is what the tests count charges by.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import secrets
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

API = "/public/v0"
MAX_ITEMS = 100


@dataclass
class Run:
    id: str
    routine_id: str
    items: list[dict[str, Any]]
    webhook_id: str | None
    done_at: float


@dataclass
class ServerError:
    """How the next run-starting POST fails: its status, and whether the run started."""

    status: int = 502
    started: bool = False


@dataclass
class MinimalClay:
    """The server's state; :meth:`start` serves it on a free loopback port."""

    api_key: str = field(default_factory=lambda: "key-" + secrets.token_hex(12))
    run_latency_s: float = 0.05
    runs: dict[str, Run] = field(default_factory=dict)
    webhooks: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (url, secret)
    fail_run_posts: list[ServerError] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    executed: Counter[str] = field(default_factory=Counter)  # item id -> times run
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> MinimalClay:
        state = self

        class Handler(_Handler):
            server_state = state

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    def __enter__(self) -> MinimalClay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}"

    def create_webhook(self, url: str) -> dict[str, str]:
        """What ``clay webhooks create URL`` prints: the id and the signing secret."""
        webhook_id = "wh_" + secrets.token_hex(6)
        secret = "whsec_" + secrets.token_hex(16)
        self.webhooks[webhook_id] = (url, secret)
        return {"id": webhook_id, "url": url, "signingSecret": secret}

    def run_posts(self) -> int:
        return sum(1 for m, p in self.requests if m == "POST" and p.endswith("/run"))

    # --- behaviour ---------------------------------------------------------------------

    def start_run(self, routine_id: str, body: dict[str, Any]) -> Run:
        run = Run(
            "run_" + secrets.token_hex(8),
            routine_id,
            list(body["items"]),
            body.get("webhook_id"),
            time.monotonic() + self.run_latency_s,
        )
        with self.lock:
            self.runs[run.id] = run
            for item in run.items:
                self.executed[str(item["id"])] += 1
        threading.Thread(target=self._finish, args=(run,), daemon=True).start()
        return run

    def _finish(self, run: Run) -> None:
        time.sleep(max(0.0, run.done_at - time.monotonic()))
        if run.webhook_id and run.webhook_id in self.webhooks:
            url, secret = self.webhooks[run.webhook_id]
            created = datetime.now(UTC).isoformat()
            payload = {
                "webhookId": run.webhook_id,
                "createdAt": created,
                "data": {"routine_run_id": run.id},
            }
            raw = json.dumps(payload).encode()
            digest = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
            request = urllib.request.Request(
                url,
                data=raw,
                headers={
                    "content-type": "application/json",
                    "X-Clay-Signature": f"sha256={digest}",
                },
                method="POST",
            )
            with contextlib.suppress(OSError):  # delivery is not guaranteed
                urllib.request.urlopen(request, timeout=10).close()

    @staticmethod
    def answer(item: dict[str, Any]) -> dict[str, Any]:
        """This server's workspace routine: a field per input, echoed; ``bad`` fails."""
        inputs = item.get("inputs") or {}
        if any(str(v).startswith("bad") for v in inputs.values()):
            return {"id": item["id"], "status": "failed", "error": {"message": "invalid input"}}
        result = {f"echo_{k}": v for k, v in inputs.items()}
        result["length"] = sum(len(str(v)) for v in inputs.values())
        return {"id": item["id"], "status": "complete", "result": result}


class _Handler(BaseHTTPRequestHandler):
    server_state: MinimalClay

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _send(self, status: int, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _route(self, method: str) -> None:
        state = self.server_state
        parts = urlsplit(self.path)
        with state.lock:
            state.requests.append((method, parts.path))
        if not parts.path.startswith(API + "/"):
            return self._send(404, {"message": "not found"})
        if self.headers.get("clay-api-key") != state.api_key:
            return self._send(401, {"message": "invalid or missing clay-api-key"})
        path = [unquote(seg) for seg in parts.path[len(API) :].strip("/").split("/")]
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}") if length else {}
        if method == "GET" and path == ["me"]:
            return self._send(
                200, {"user": {"id": "usr_min", "name": None}, "workspace": {"id": "ws_min"}}
            )
        if method == "POST" and len(path) == 3 and path[0] == "routines" and path[2] == "run":
            return self._run(path[1], body)
        if method == "GET" and len(path) == 4 and path[:2] == ["routines", "run"]:
            return self._results(path[2], parse_qs(parts.query))
        return self._send(404, {"message": "not found"})

    def _run(self, routine_id: str, body: dict[str, Any]) -> None:
        state = self.server_state
        items = body.get("items")
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS:
            return self._send(400, {"message": "items: 1 to 100 {id, inputs}"})
        if any(not isinstance(i, dict) or "id" not in i or "inputs" not in i for i in items):
            return self._send(400, {"message": "each item needs id and inputs"})
        webhook_id = body.get("webhook_id")
        if webhook_id is not None and webhook_id not in state.webhooks:
            return self._send(404, {"message": "webhook not found"})
        with state.lock:
            failure = state.fail_run_posts.pop(0) if state.fail_run_posts else None
        if failure is not None:
            if failure.started:
                state.start_run(routine_id, body)
            return self._send(failure.status, {"message": "internal error"})
        run = state.start_run(routine_id, body)
        return self._send(202, {"routine_run_id": run.id, "status": "in_progress"})

    def _results(self, run_id: str, query: dict[str, list[str]]) -> None:
        run = self.server_state.runs.get(run_id)
        if run is None:
            return self._send(404, {"message": "run not found"})
        total = len(run.items)
        if time.monotonic() < run.done_at:
            return self._send(
                202,
                {"routine_run_id": run.id, "total": total, "finished": 0, "status": "in_progress"},
            )
        limit = min(MAX_ITEMS, max(1, int(query.get("limit", ["20"])[0])))
        start = int(query.get("cursor", ["0"])[0])
        page = [MinimalClay.answer(item) for item in run.items[start : start + limit]]
        answer: dict[str, Any] = {
            "routine_run_id": run.id,
            "total": total,
            "finished": total,
            "status": "complete",
            "data": page,
        }
        if start + limit < total:
            answer["cursor"] = str(start + limit)
        return self._send(200, answer)

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("PUT")
