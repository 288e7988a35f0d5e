"""The emulator's own routes under ``/_emulator``: meters, runs, webhooks, faults, files.

Not part of Clay: everything Clay does not document lives here (what each item of a run
was charged, ``/_emulator/runs/{id}``; the meters). claynb reads it only through the URL
an emulator hands out (:attr:`claynb.Emulator.admin_url`), never by guessing a path on
whatever host it talks to. They need no API key (tests and notebooks read meters with a plain
GET) but answer loopback clients only. The batch upload and result files are served
here too, standing in for the presigned storage URLs Clay hands out.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from ipaddress import ip_address
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from claynb.emulator._faults import Faults
from claynb.emulator._http import JSON, error
from claynb.emulator._runs import BATCH
from claynb.emulator._state import EmulatorState
from claynb.emulator._validate import BadRequest, parse_json

AdminHandler = Callable[[Request], Any]


class AdminApi:
    """``/_emulator`` routes, delegating to the :class:`claynb.Emulator` that owns them."""

    def __init__(self, emulator: Any, state: EmulatorState) -> None:
        self.emu = emulator
        self.state = state

    def routes(self) -> list[Route]:
        p = "/_emulator"
        return [
            Route(f"{p}/meters", self._local(self.meters), methods=["GET"]),
            Route(p + "/runs/{run_id}", self._local(self.run), methods=["GET"]),
            Route(f"{p}/webhooks", self._local(self.create_webhook), methods=["POST"]),
            Route(
                p + "/webhooks/{webhook_id}/test", self._local(self.test_webhook), methods=["POST"]
            ),
            Route(f"{p}/faults", self._local(self.faults), methods=["GET", "POST"]),
            Route(f"{p}/credits", self._local(self.credits), methods=["POST"]),
            Route(f"{p}/top-up", self._local(self.top_up), methods=["POST"]),
            Route(f"{p}/reset", self._local(self.reset), methods=["POST"]),
            Route(f"{p}/tables", self._local(self.create_table), methods=["POST"]),
            Route(p + "/uploads/{file_id}", self._local(self.upload), methods=["PUT"]),
            Route(
                p + "/batch-results/{run_id}.jsonl",
                self._local(self.batch_results),
                methods=["GET"],
            ),
        ]

    def _local(self, handler: AdminHandler) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            host = request.client.host if request.client else ""
            try:
                local = ip_address(host).is_loopback
            except ValueError:
                local = host in ("localhost", "testclient")
            if not local:
                return error(403, "the /_emulator routes answer loopback clients only")
            try:
                response: Response = await handler(request)
            except (BadRequest, ValueError, TypeError, KeyError) as exc:
                return error(400, str(exc).strip("'\""))
            return response

        return endpoint

    async def _body(self, request: Request) -> dict[str, Any]:
        body = parse_json(await request.body())
        if not isinstance(body, dict):
            raise BadRequest("request body must be a JSON object")
        return body

    async def meters(self, request: Request) -> Response:
        charges = request.query_params.get("charges", "1").lower() not in ("0", "false", "no")
        return JSON(self.emu.meters(charges=charges))

    async def run(self, request: Request) -> Response:
        view = self.state.run_view(request.path_params["run_id"])
        if view is None:
            return error(404, "no run with that id")
        return JSON(view)

    async def create_webhook(self, request: Request) -> Response:
        body = await self._body(request)
        url = body.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise BadRequest("'url' must be an http(s) URL")
        return JSON(self.emu.create_webhook(url), status_code=201)

    async def test_webhook(self, request: Request) -> Response:
        webhook_id = request.path_params["webhook_id"]
        if not self.emu.has_webhook(webhook_id):
            return error(404, f"webhook {webhook_id!r} not found")
        await self.emu.send_test_webhook_async(webhook_id)
        return JSON({"sent": True})

    async def faults(self, request: Request) -> Response:
        if request.method == "POST":
            self.emu.set_faults(Faults.from_dict(await self._body(request)))
        return JSON(self.emu.faults.to_dict())

    async def credits(self, request: Request) -> Response:
        body = await self._body(request)
        self.emu.set_credits(
            actions_left=body.get("actions_left"), data_credits_left=body.get("data_credits_left")
        )
        return JSON(self.emu.meters(charges=False))

    async def top_up(self, request: Request) -> Response:
        body = await self._body(request)
        self.emu.top_up(actions=body.get("actions", 0), data_credits=body.get("data_credits", 0))
        return JSON(self.emu.meters(charges=False))

    async def reset(self, request: Request) -> Response:
        self.emu.reset_meters()
        return JSON(self.emu.meters(charges=False))

    async def create_table(self, request: Request) -> Response:
        body = await self._body(request)
        name = body.pop("name", None)
        if not isinstance(name, str) or not name:
            raise BadRequest("'name' must be a non-empty string")
        return JSON(self.emu.create_table(name, **body), status_code=201)

    async def upload(self, request: Request) -> Response:
        upload = self.state.uploads.get(request.path_params["file_id"])
        if upload is None:
            return error(404, "unknown upload URL")
        if upload.used:
            return error(409, "this file was already used by a batch run")
        upload.data = await request.body()
        return Response(status_code=200)

    async def batch_results(self, request: Request) -> Response:
        run, _ = self.state.get_run(request.path_params["run_id"])
        if run is None or run.kind != BATCH or run.results is None:
            return error(404, "no finished batch run with that id")
        lines = "".join(json.dumps(item, separators=(",", ":")) + "\n" for item in run.results)
        return Response(lines, media_type="application/x-ndjson")
