"""Table webhook sources: rows in, enrichment columns, an HTTP API column out.

A table gets a webhook source URL (``/v3/sources/webhook/pull-in-data-from-a-webhook-
<uuid>``). A POSTed JSON object is one row; what an array becomes is not published (the
``array_posts`` setting: a row per record, one row, or refused). Each row then runs
through the table's enrichment columns in order (each an ordinary routine run, with the
emulator's latency, charging and meters), and when they are all done the HTTP API
column POSTs the row's values to the configured URL with the configured headers.

Limits as observed of Clay: payloads up to 100 KB (413 above); about 10 records/s per
workspace with a burst of 20, counted in records (429 with Retry-After beyond); and
50,000 submissions per source for its lifetime, counted in records and not given back
when rows are deleted. What Clay answers past the cap is not published (the
``source_cap_answer`` setting): 403 ``{"message"}`` keeping none of the request's records,
or an answer like any other with the records dropped. A table holds the plan's rows per
table (Free 200, paid 50,000, ``table_row_limit``); a full table silently stops accepting
rows, as Clay documents. An accepted post is answered 200 with an empty object: what a
source answers is not published, and nothing in it is for a client to rely on.
"""

from __future__ import annotations

import asyncio
import hmac
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from claynb._routines import Cost
from claynb._secrets import redact, register_secret
from claynb.emulator._bucket import TokenBucket
from claynb.emulator._http import JSON, error
from claynb.emulator._query import QueryError, run_query
from claynb.emulator._runs import TABLE, ItemCharge, Run
from claynb.emulator._settings import ArrayPosts, SourceCapAnswer
from claynb.emulator._state import EmulatorState, Finished
from claynb.emulator._table_model import (
    FAILED,
    MATCHED,
    NO_MATCH,
    NOT_RUN,
    RUNNING,
    Enrichment,
    HttpApi,
    Row,
    Step,
    Table,
    http_body,
)
from claynb.emulator._validate import BadRequest, parse_json
from claynb.pipeline._normalise import normalise_inputs

SOURCE_PREFIX = "pull-in-data-from-a-webhook-"
#: The column an array posted as one row (``array_posts="one_row"``) lands in.
ONE_ROW_COLUMN = "body"
NOT_RUN_MESSAGE = "not run: the workspace's credits ran out"
AUTH_HEADER = "x-clay-webhook-auth"
HTTP_API_ROUTINE = "http-api"
Spawn = Callable[[Coroutine[Any, Any, Any]], None]


class Tables:
    """Every emulated table of the workspace, its webhook source and its columns."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.tables: dict[str, Table] = {}
        self.by_source: dict[str, Table] = {}
        s = state.settings
        self.source_bucket = TokenBucket(s.source_rate_per_s, s.source_burst, state.clock())
        self._http_buckets: dict[str, TokenBucket] = {}
        state.tables = self
        state.on_table_run_done = self._run_done
        # Set by the server: fault injection around the source, and where finished work goes.
        self.gate: Callable[[Any], Any] | None = None
        self.notify: Callable[[Finished], None] | None = None

    # --- set-up -----------------------------------------------------------------------

    def create(
        self,
        name: str,
        enrichments: list[dict[str, Any]],
        http_api: dict[str, Any] | None,
        auth_token: str | None,
        base_url: str,
    ) -> dict[str, str]:
        columns = [self._enrichment(spec) for spec in enrichments]
        column = self._http_api(http_api) if http_api else None
        register_secret(auth_token)
        source_id = f"{SOURCE_PREFIX}{uuid.uuid4()}"
        table = Table(
            id=f"t_{uuid.uuid4().hex[:20]}",
            name=name,
            source_id=source_id,
            enrichments=columns,
            http_api=column,
            auth_token=auth_token,
        )
        with self.state.lock:
            self.tables[table.id] = table
            self.by_source[source_id] = table
            if column is not None and column.rate_limit_rps:
                self._http_buckets[table.id] = TokenBucket(
                    column.rate_limit_rps, 1, self.state.clock()
                )
        return {"table_id": table.id, "webhook_url": f"{base_url}/v3/sources/webhook/{source_id}"}

    def _enrichment(self, spec: dict[str, Any]) -> Enrichment:
        if not isinstance(spec, dict) or "routine" not in spec:
            raise ValueError(
                "each enrichment needs a 'routine' and 'inputs' (routine input -> column)"
            )
        routines = self.state.settings.routines
        if spec["routine"] not in routines:
            raise ValueError(
                f"unknown routine {spec['routine']!r}; known: {', '.join(sorted(routines))}"
            )
        routine = routines[spec["routine"]]
        inputs = dict(spec.get("inputs") or {name: name for name in routine.inputs})
        missing = [name for name in routine.inputs if name not in inputs]
        if missing:
            raise ValueError(
                f"enrichment {routine.id!r} needs input(s) {missing} mapped to columns"
            )
        return Enrichment(routine, inputs, str(spec.get("output_prefix", "")))

    def _http_api(self, spec: dict[str, Any]) -> HttpApi:
        if not isinstance(spec, dict) or not str(spec.get("url", "")).startswith(
            ("http://", "https://")
        ):
            raise ValueError("http_api needs an http(s) 'url'")
        known = set(HttpApi.__dataclass_fields__)
        unknown = set(spec) - known
        if unknown:
            raise ValueError(
                f"unknown http_api setting(s) {sorted(unknown)}; known: {sorted(known)}"
            )
        headers = {str(k): str(v) for k, v in (spec.get("headers") or {}).items()}
        for value in headers.values():
            register_secret(value)
        return HttpApi(**{**spec, "headers": headers})

    def routes(self) -> list[Route]:
        receive = self.gate(self.receive) if self.gate else self.receive
        return [Route("/v3/sources/webhook/{source_id}", receive, methods=["POST"])]

    # --- the webhook source -------------------------------------------------------------

    async def receive(self, request: Request) -> Response:
        table = self.by_source.get(request.path_params["source_id"])
        if table is None:
            return error(404, "webhook source not found")
        if table.auth_token is not None:
            sent = request.headers.get(AUTH_HEADER, "")
            if not hmac.compare_digest(sent.encode(), table.auth_token.encode()):
                return error(401, f"missing or wrong {AUTH_HEADER} header")
        body = await request.body()
        if len(body) > self.state.settings.source_max_bytes:
            return error(
                413,
                f"payload of {len(body)} bytes is over the "
                f"{self.state.settings.source_max_bytes // 1024} KB limit",
            )
        try:
            records = _records(parse_json(body), self.state.settings.array_posts)
        except BadRequest as exc:
            return error(400, str(exc))
        return self._accept(table, records)

    def _accept(self, table: Table, records: list[dict[str, Any]]) -> Response:
        settings = self.state.settings
        cap = settings.source_lifetime_cap
        with self.state.lock:
            if table.submissions + len(records) > cap:
                if settings.source_cap_answer == SourceCapAnswer.DROPPED:
                    table.dropped += len(records)
                    return JSON({})
                return error(
                    403,
                    f"this webhook source has reached its lifetime limit of {cap:,} submissions "
                    f"({table.submissions:,} used; {len(records)} more refused, none kept)",
                )
            decision = self.source_bucket.take(self.state.clock(), len(records))
            if not decision.allowed:
                return error(
                    429,
                    "too many records: about 10 records/s per workspace, burst 20",
                    {"Retry-After": str(decision.retry_after)},
                )
            table.submissions += len(records)
            room = max(0, settings.rows_per_table - len(table.rows))
            kept, table.dropped = records[:room], table.dropped + len(records[room:])
            rows = [self._new_row(table, record) for record in kept]
        finished = self._start_step(table, 0, rows)
        if finished and self.notify is not None:
            self.notify(finished)
        return JSON({})

    def _new_row(self, table: Table, record: dict[str, Any]) -> Row:
        row = Row(
            id=f"r_{uuid.uuid4().hex[:20]}",
            values=dict(record),
            steps=[Step() for _ in table.enrichments],
            updated=self.state.wall(),
        )
        for key in record:
            table.input_columns.setdefault(key, None)
        table.rows[row.id] = row
        return row

    # --- enrichment columns -------------------------------------------------------------

    def _start_step(self, table: Table, step: int, rows: list[Row]) -> Finished:
        if not rows:
            return Finished()
        if step >= len(table.enrichments):
            return Finished(rows_ready=[(table.id, r.id) for r in rows] if table.http_api else [])
        enrichment = table.enrichments[step]
        items = []
        for row in rows:
            row.steps[step].status = RUNNING
            values = row.all_values()
            raw = {name: values.get(col) for name, col in enrichment.inputs.items()}
            items.append((row.id, normalise_inputs(enrichment.routine, raw)[0]))
        _, finished = self.state.start_run(
            enrichment.routine.id, items, kind=TABLE, context=(table.id, step, [r.id for r in rows])
        )
        return finished

    def _run_done(self, run: Run, finished: Finished) -> None:
        """Called by the state (lock held) when a table's enrichment run finishes."""
        table_id, step, row_ids = run.context
        table = self.tables[table_id]
        enrichment = table.enrichments[step]
        rows = [table.rows[rid] for rid in row_ids if rid in table.rows]
        answers = {str(item.get("id")): item for item in run.results or []}
        for row in rows:
            _apply(row.steps[step], enrichment, answers.get(row.id), run.charges.get(row.id))
            row.updated = self.state.wall()
        more = self._start_step(table, step + 1, rows)
        finished.runs.extend(more.runs)
        finished.rows_ready.extend(more.rows_ready)

    # --- the HTTP API column ------------------------------------------------------------

    def row_ready(self, table_id: str, row_id: str, outbound: Any, spawn: Spawn) -> None:
        table = self.tables.get(table_id)
        if table is not None and table.http_api is not None and row_id in table.rows:
            spawn(self._deliver(table, table.rows[row_id], outbound))

    async def _deliver(self, table: Table, row: Row, outbound: Any) -> None:
        column = table.http_api
        assert column is not None
        if not self._charge_call(table, row, column):
            row.http_status = NOT_RUN
            self._record(table, row, 0, "not_run", None, NOT_RUN_MESSAGE)
            return
        body = JSON(http_body(table, row)).body
        headers = {"content-type": "application/json", **column.headers}
        attempts = column.max_attempts if column.retry else 1
        for attempt in range(1, attempts + 1):
            await self._pace(table.id)
            status, err = await outbound.post_json(column.url, body, headers, column.timeout_s)
            ok = status is not None and 200 <= status < 300
            self._record(
                table,
                row,
                attempt,
                "delivered" if ok else ("error" if status is None else "rejected"),
                status,
                err,
            )
            if ok or (status is not None and 400 <= status < 500 and status not in (408, 429)):
                break
            if attempt < attempts:
                await asyncio.sleep(column.retry_backoff_s * 2 ** (attempt - 1))
        row.http_status = "delivered" if ok else "failed"

    def _charge_call(self, table: Table, row: Row, column: HttpApi) -> bool:
        cost = Cost(column.actions_per_call, 0.0)
        with self.state.lock:
            meters = self.state.meters
            if not meters.can_pay(cost):
                return False
            table.http_calls += 1
            if not cost.is_zero:
                meters.charge(
                    cost,
                    (
                        self.state.wall(),
                        HTTP_API_ROUTINE,
                        table.id,
                        row.id,
                        row.id,
                        cost.actions,
                        0.0,
                        None,
                    ),
                )
                stats = meters.stats(HTTP_API_ROUTINE)
                stats.items += 1
                stats.actions += cost.actions
            return True

    async def _pace(self, table_id: str) -> None:
        bucket = self._http_buckets.get(table_id)
        while bucket is not None:
            with self.state.lock:
                decision = bucket.take(self.state.clock())
            if decision.allowed:
                return
            await asyncio.sleep(decision.reset_in)

    def _record(
        self,
        table: Table,
        row: Row,
        attempt: int,
        outcome: str,
        status: int | None,
        err: str | None,
    ) -> None:
        assert table.http_api is not None
        self.state.record_delivery(
            {
                "time": self.state.wall(),
                "kind": "http_api",
                "table_id": table.id,
                "row_id": row.id,
                "url": redact(table.http_api.url),
                "attempt": attempt,
                "outcome": outcome,
                "status_code": status,
                "error": err,
                "fault": None,
            }
        )

    # --- reading ------------------------------------------------------------------------

    async def query_endpoint(self, request: Request) -> Response:
        if not self.state.settings.plan.tables_api:
            return error(
                403,
                f"the Tables API needs an Enterprise plan (this workspace is on "
                f"{self.state.settings.plan.name!r})",
            )
        try:
            body = parse_json(await request.body())
            with self.state.lock:
                return JSON(run_query(self.tables, body))
        except BadRequest as exc:
            return error(400, str(exc))
        except QueryError as exc:
            return error(exc.status, exc.message)

    def summary(self) -> dict[str, Any]:
        return {
            t.id: {
                "name": t.name,
                "rows": len(t.rows),
                "submissions": t.submissions,
                "dropped": t.dropped,
                "http_api_calls": t.http_calls,
            }
            for t in self.tables.values()
        }


def _records(body: Any, arrays: ArrayPosts) -> list[dict[str, Any]]:
    """The rows a post makes: an object is one; an array as ``arrays`` says."""
    if isinstance(body, list) and arrays == ArrayPosts.REJECTED:
        raise BadRequest("post one JSON object per request: this source does not take arrays")
    if isinstance(body, list) and arrays == ArrayPosts.ONE_ROW:
        return [{ONE_ROW_COLUMN: body}]
    records = body if isinstance(body, list) else [body]
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise BadRequest(
                f"record {index} is not a JSON object: post an object or an array of objects"
            )
    return records


def _apply(
    step: Step, enrichment: Enrichment, item: dict[str, Any] | None, charge: ItemCharge | None
) -> None:
    """A row's cell for one enrichment, from the run's answer and the emulator's books."""
    if item is None or (charge is not None and not charge.ran):
        step.status, step.error = NOT_RUN, NOT_RUN_MESSAGE
        return
    if item.get("status") == "failed":
        step.status = FAILED
        step.error = item.get("error", {}).get("message", "failed")
        return
    cost = charge.cost if charge is not None else Cost()
    step.cost = {"actions": cost.actions, "data_credits": cost.data_credits}
    step.status = MATCHED if charge is not None and charge.provider is not None else NO_MATCH
    result = dict(item.get("result") or {})
    step.fields = {f"{enrichment.output_prefix}{k}": v for k, v in result.items()}
