"""The Public API v0 routes, as Clay serves them under ``/public/v0``.

Every route goes through one gate: the ``clay-api-key`` header (a Bearer header is
refused, as Clay does), then the rate limit, then fault injection. Bodies are checked
against the OpenAPI schemas by :mod:`_validate`; the state decides the rest.

Two behaviours Clay does not publish are settings (:mod:`_settings`): what a 5xx on a
run-starting POST means (``start_failure``: nothing started, or the run started behind the
error) and whether new work at zero credits is refused with 402 (``credits_out``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from claynb.emulator._bucket import Decision
from claynb.emulator._faults import DROP_CONNECTION, SERVER_ERROR, TIMEOUT, FaultDice
from claynb.emulator._http import JSON, DropConnection, error
from claynb.emulator._runs import BATCH, INLINE, Run, page
from claynb.emulator._search_routes import SearchRoutes
from claynb.emulator._settings import CreditsOut, StartFailure
from claynb.emulator._state import EmulatorState, Finished
from claynb.emulator._validate import (
    BadRequest,
    parse_json,
    parse_jsonl,
    parse_limit,
    parse_run_request,
    parse_start_batch,
)

Handler = Callable[[Request], Awaitable[Response]]
Notify = Callable[[Finished], None]

ME = {
    "user": {"id": "usr_emulator", "name": "claynb emulator", "cli_onboarded": False},
    "workspace": {"id": "ws_emulator"},
}


class PublicApi:
    """Routes of the Public API bound to one emulator's state."""

    def __init__(
        self,
        state: EmulatorState,
        dice: FaultDice,
        api_key: str,
        notify: Notify,
        query: Handler | None = None,
        stopping: asyncio.Event | None = None,
    ) -> None:
        self.state = state
        self.stopping = stopping or asyncio.Event()  # set when the server stops: end held answers
        self.dice = dice
        self._key = api_key.encode()
        self.notify = notify
        self._query = query

    def routes(self) -> list[Route]:
        g = self.gate
        routes = [
            Route("/me", g(self.me, starts_work=False), methods=["GET"]),
            Route(
                "/routines/{routine_id}/run",
                g(self.run, starts_work=True, starts_run=True),
                methods=["POST"],
            ),
            Route(
                "/routines/run/{run_id}/results",
                g(self.results, starts_work=False),
                methods=["GET"],
            ),
            Route(
                "/routines/{routine_id}/run-batch/upload-url",
                g(self.upload_url, starts_work=True),
                methods=["POST"],
            ),
            Route(
                "/routines/{routine_id}/run-batch/start",
                g(self.start_batch, starts_work=True, starts_run=True),
                methods=["POST"],
            ),
            Route(
                "/routines/run-batch/{run_id}/results",
                g(self.batch_results, starts_work=False),
                methods=["GET"],
            ),
            *SearchRoutes(self.state).routes(g),
        ]
        if self._query is not None:
            routes.append(
                Route("/tables/query", g(self._query, starts_work=False), methods=["POST"])
            )
        return routes

    # --- the gate -----------------------------------------------------------------------

    def gate(self, handler: Handler, *, starts_work: bool, starts_run: bool = False) -> Handler:
        """Auth, rate limit and faults around a handler (``starts_run``: a run-starting POST,
        where a server error follows the ``start_failure`` setting)."""

        async def endpoint(request: Request) -> Response:
            denied = self._authenticate(request)
            if denied is not None:
                return denied
            decision = self.state.rate_check()
            if decision is not None and not decision.allowed:
                headers = self._rate_headers(decision)
                headers["Retry-After"] = str(decision.retry_after)
                return error(
                    429,
                    "rate limit exceeded: slow down and retry after the Retry-After interval",
                    headers,
                )
            response = await self._with_fault(handler, request, starts_work, starts_run)
            if decision is not None:
                response.headers.update(self._rate_headers(decision))
            return response

        return endpoint

    def faulty(self, handler: Handler, *, starts_work: bool) -> Handler:
        """Fault injection alone (no key, no rate limit): for the webhook sources."""

        async def endpoint(request: Request) -> Response:
            return await self._with_fault(handler, request, starts_work)

        return endpoint

    async def _with_fault(
        self, handler: Handler, request: Request, starts_work: bool, starts_run: bool = False
    ) -> Response:
        fault = self.dice.request_fault()
        if fault == SERVER_ERROR:
            status = self.dice.server_error_status()
            if starts_run and self.state.settings.start_failure == StartFailure.STARTED:
                await handler(request)  # the run starts behind the error, and will charge
            return error(status, "internal error (injected fault)")
        if fault == DROP_CONNECTION and not starts_work:
            return DropConnection()
        response = await handler(request)
        if fault == DROP_CONNECTION:
            return DropConnection()
        if fault == TIMEOUT:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), self.state.settings.slow_s)
        return response

    def _authenticate(self, request: Request) -> Response | None:
        key = request.headers.get("clay-api-key")
        if key is None:
            if request.headers.get("authorization"):
                return error(
                    401,
                    "Authentication failed: send the key in the clay-api-key header "
                    "(Bearer tokens are not accepted)",
                )
            return error(401, "Authentication failed: missing clay-api-key header")
        if not hmac.compare_digest(key.encode(), self._key):
            return error(401, "Authentication failed")
        return None

    def _rate_headers(self, decision: Decision) -> dict[str, str]:
        """The X-RateLimit-* trio, as the ``rate_limit_header`` variant says it is sent."""
        variant = self.state.settings.rate_limit_header
        if variant == "absent":
            return {}
        rps = self.state.settings.rate_limit_rps or 0
        per = rps * 60 if variant == "per_minute" else rps
        limit = str(int(per)) if float(per).is_integer() else str(per)
        return {
            "X-RateLimit-Limit": limit,
            "X-RateLimit-Remaining": str(decision.remaining),
            "X-RateLimit-Reset": f"{self.state.wall() + decision.reset_in:.3f}",
        }

    # --- routes -------------------------------------------------------------------------

    async def me(self, request: Request) -> Response:
        return JSON(ME)

    async def run(self, request: Request) -> Response:
        routine_id = request.path_params["routine_id"]
        if routine_id not in self.state.settings.routines:
            return error(404, f"routine {routine_id!r} not found")
        try:
            items, webhook_id = parse_run_request(parse_json(await request.body()))
        except BadRequest as exc:
            return error(400, str(exc))
        refused = self._refuse_new_work(webhook_id)
        if refused is not None:
            return refused
        run, finished = self.state.start_run(routine_id, items, kind=INLINE, webhook_id=webhook_id)
        self._notify(finished)
        return JSON({"routine_run_id": run.id, "status": "in_progress"}, status_code=202)

    def _refuse_new_work(self, webhook_id: str | None) -> Response | None:
        if webhook_id is not None and webhook_id not in self.state.webhooks:
            return error(404, f"webhook {webhook_id!r} not found")
        refuses = self.state.settings.credits_out != CreditsOut.ITEM_FAILURES
        if refuses and self.state.meters.exhausted():
            return error(
                402, "credits exhausted: the workspace has no Actions or Data Credits left"
            )
        return None

    async def results(self, request: Request) -> Response:
        return self._results(request, INLINE)

    async def batch_results(self, request: Request) -> Response:
        return self._results(request, BATCH)

    def _results(self, request: Request, kind: str) -> Response:
        run_id = request.path_params["run_id"]
        run, finished = self.state.get_run(run_id)
        self._notify(finished)
        if run is None or run.kind not in (INLINE, BATCH):
            return error(404, f"routine run {run_id!r} not found")
        if run.kind != kind:
            other = (
                "/routines/run-batch/{id}/results"
                if run.kind == BATCH
                else "/routines/run/{id}/results"
            )
            return error(
                404, f"routine run {run_id!r} not found here: it is a {run.kind} run, read {other}"
            )
        progress = {"routine_run_id": run.id, "total": run.total}
        if not run.done:
            return JSON(
                {
                    **progress,
                    "finished": run.finished_count(self.state.clock()),
                    "status": "in_progress",
                },
                status_code=202,
            )
        if kind == BATCH:
            return self._batch_terminal(request, run, progress)
        try:
            limit = parse_limit(request.query_params.get("limit"), default=20)
            data, cursor = page(run, request.query_params.get("cursor"), limit)
        except (BadRequest, ValueError) as exc:
            return error(400, str(exc))
        body = {**progress, "finished": run.total, "status": "complete", "data": data}
        if cursor is not None:
            body["cursor"] = cursor
        return JSON(body)

    def _batch_terminal(self, request: Request, run: Run, progress: dict[str, object]) -> Response:
        if run.terminal is not None:
            return JSON({"routine_run_id": run.id, **run.terminal})
        url = f"{str(request.base_url).rstrip('/')}/_emulator/batch-results/{run.id}.jsonl"
        return JSON({**progress, "finished": run.total, "status": "complete", "result_url": url})

    async def upload_url(self, request: Request) -> Response:
        routine_id = request.path_params["routine_id"]
        if routine_id not in self.state.settings.routines:
            return error(404, f"routine {routine_id!r} not found")
        upload = self.state.new_upload(routine_id)
        url = f"{str(request.base_url).rstrip('/')}/_emulator/uploads/{upload.file_id}"
        return JSON({"upload_url": url, "file_id": upload.file_id})

    async def start_batch(self, request: Request) -> Response:
        routine_id = request.path_params["routine_id"]
        if routine_id not in self.state.settings.routines:
            return error(404, f"routine {routine_id!r} not found")
        try:
            file_id, webhook_id = parse_start_batch(parse_json(await request.body()))
        except BadRequest as exc:
            return error(400, str(exc))
        upload = self.state.uploads.get(file_id)
        if upload is None or upload.routine_id != routine_id:
            return error(404, f"file {file_id!r} not found for routine {routine_id!r}")
        if upload.data is None:
            return error(
                400,
                f"file {file_id!r} has not been uploaded: PUT the JSONL to its upload_url first",
            )
        if upload.used:
            return error(400, f"file {file_id!r} was already used by a batch run")
        refused = self._refuse_new_work(webhook_id)
        if refused is not None:
            return refused
        upload.used = True
        items, terminal = _batch_items(upload.data, self.state.settings.batch_max_rows)
        run, finished = self.state.start_run(
            routine_id, items, kind=BATCH, webhook_id=webhook_id, terminal=terminal
        )
        self._notify(finished)
        return JSON({"routine_run_id": run.id, "status": "in_progress"}, status_code=202)

    def _notify(self, finished: Finished) -> None:
        if finished:
            self.notify(finished)


def _batch_items(
    data: bytes, max_rows: int
) -> tuple[list[tuple[str, dict[str, object]]], dict[str, object] | None]:
    """The items of a batch file, or the terminal answer when it cannot run at all."""
    try:
        items, details, invalid = parse_jsonl(data, max_rows)
    except UnicodeDecodeError:
        return [], {
            "status": "processing_failed",
            "error": {"message": "the uploaded file could not be read as UTF-8 JSONL"},
        }
    if invalid:
        return [], {
            "status": "validation_failed",
            "error": {
                "message": f"{invalid} invalid row(s) in the uploaded file",
                "total_invalid_rows": invalid,
                "details": details,
            },
        }
    return items, None
