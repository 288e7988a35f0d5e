"""The queue tier's state in Redis: batches, their journal, outcomes, cache and leads.

A *batch* is up to 100 leads sent to Clay as one run. Its Redis hash is also its journal:
it moves ``new -> reserved -> sending -> sent -> done`` (:class:`BatchState`, with every
move allowed in :data:`BATCH_MOVES`), and each step that matters is a Lua script, so two
executions of the same batch (a job retried after its worker died while the first one
was in fact alive) can never both send it, nor both report it:

- ``reserve`` holds budget for as many items as fit and records which items those are;
- ``begin_send`` lets exactly one execution POST the run;
- the run id is written before anyone polls it, so a resumed job polls the same run;
- ``give_up`` gives the money back when the batch was certainly not sent and will not be
  (its items' sends are spent, or RQ's retries are): ``failed``, with the reason, until a
  person requeues it (back to ``new``, its sends counted from zero);
- ``emit`` writes every lead's outcome, settles the budget and marks the batch done in one
  step: each lead's outcome exists exactly once, whatever crashed where.

The scripts hold the states as the enum's values, written in from :class:`BatchState`, and
their guards are the table's: a move the table does not allow raises
:class:`claynb._states.IllegalTransition`.

Only ids travel in RQ job payloads; inputs live here and API keys live nowhere in Redis.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from enum import StrEnum
from string import Template
from typing import Any

from claynb._routines import Cost, Routine
from claynb._secrets import redact
from claynb._states import IllegalTransition, Machine
from claynb.pipeline._work import ANSWERED, Status
from claynb.queue._budget import CAPS_KNOWN, METERS, SCALE

PREFIX = "claynb:q"
#: A finished batch is kept this long so a resumed ``enrich`` can still read its outcomes.
DONE_TTL_S = 7 * 24 * 3600
#: Latency samples kept per queue for the live monitor.
SAMPLES_KEPT = 5000
#: Outcomes kept in a queue's stream (about; Redis trims whole nodes). Sinks read far
#: faster than leads arrive, so a million is days of backlog at the tier's volumes.
STREAM_MAXLEN = 1_000_000


class BatchState(StrEnum):
    """Where a queued batch is in its journal (the hash's ``state`` field holds these)."""

    NEW = "new"
    RESERVED = "reserved"
    SENDING = "sending"
    SENT = "sent"
    DONE = "done"
    FAILED = "failed"


NEW, RESERVED, SENDING, SENT, DONE, FAILED = BatchState

#: Every move a batch may make: the one place they are written down.
BATCH_MOVES = Machine(
    "queue batch",
    BatchState,
    {
        None: {NEW},
        NEW: {RESERVED},  # reserve: money held for the items that fit
        RESERVED: {SENDING, DONE, FAILED},  # begin_send; emit (nothing to send); give_up
        SENDING: {SENT, RESERVED, DONE, FAILED},  # run id; refused (kept); unknown; give_up
        SENT: {DONE},  # emit: every lead's outcome, the budget settled
        DONE: set(),
        FAILED: {NEW},  # requeued by a person: sent again, its money reserved afresh
    },
)


#: What a Lua script answers when asked for a move its guard refuses.
_ILLEGAL = "illegal transition"


def _lua(script: str, **sets: frozenset[BatchState]) -> str:
    """``script`` with ``$NEW`` ... written as the states' values and each ``$NAME`` of
    ``sets`` as a Lua set literal (``{['a']=true}``) of states."""
    values: dict[str, str] = {state.name: state.value for state in BatchState}
    values["ILLEGAL"] = _ILLEGAL
    values["CAPS_KNOWN"] = CAPS_KNOWN
    for name, states in sets.items():
        values[name] = "{" + ", ".join(f"['{s.value}']=true" for s in sorted(states)) + "}"
    return Template(script).substitute(values)


def batch_key(batch_id: str) -> str:
    return f"{PREFIX}:batch:{batch_id}"


def pending_key(queue: str, routine_id: str) -> str:
    return f"{PREFIX}:{queue}:pending:{routine_id}"


def outcomes_key(queue: str) -> str:
    """The stream every lead's outcome is appended to (what sinks read)."""
    return f"{PREFIX}:{queue}:outcomes"


def samples_key(queue: str) -> str:
    return f"{PREFIX}:{queue}:samples"


def stats_key(queue: str) -> str:
    return f"{PREFIX}:{queue}:stats"


def cache_key(routine_id: str) -> str:
    return f"{PREFIX}:cache:{routine_id}"


def leads_key(queue: str) -> str:
    return f"{PREFIX}:{queue}:leads"


def fresh_key(queue: str) -> str:
    """Sorted set lead id -> when its enrichment was last refreshed (for the refresher)."""
    return f"{PREFIX}:{queue}:fresh"


def unsettled_key(queue: str) -> str:
    """Batches of ``queue`` whose run id Clay has not told us: being sent, or parked
    ``unknown`` until a run-finished webhook (or a later poll) names their run."""
    return f"{PREFIX}:unsettled:{queue}"


def lease_key(job_id: str) -> str:
    return f"{PREFIX}:lease:{job_id}"


def routine_to_json(routine: Routine) -> str:
    return json.dumps(routine.to_dict())


def routine_from_json(text: str) -> Routine:
    return Routine.from_dict(json.loads(text))


@dataclass(frozen=True)
class Lead:
    """One lead to enrich: the application's id for it, its item key and its inputs."""

    lead_id: str
    key: str
    inputs: dict[str, Any]

    def to_json(self) -> str:
        return json.dumps(
            {"lead": self.lead_id, "key": self.key, "inputs": self.inputs}, separators=(",", ":")
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Lead:
        return cls(str(data["lead"]), data["key"], data["inputs"])


@dataclass
class Batch:
    """A batch as stored: leads, routine, settings and where it is in its journal."""

    id: str
    queue: str
    routine: Routine
    leads: list[Lead]
    policy: str = "report"  # over budget: "report" | "wait" | "dead_letter"
    budget: str = ""  # shared budget name; "" when the caller reserved already (prepaid)
    base_url: str = ""
    use_cache: bool = True
    stream: bool = True  # append outcomes to the queue's stream (sinks)
    waits: int = 0
    opts: dict[str, Any] = field(default_factory=dict)  # job options for follow-up jobs
    created_at: float = field(default_factory=time.time)
    state: BatchState = NEW
    send: list[str] = field(default_factory=list)  # item keys reserved and sent, in order
    reserved: int = 0
    posts: int = 0  # of its items' cap: sends Clay failed, every execution of its job together
    error: str | None = None  # why it failed, once it has
    run_id: str = ""
    outcomes: list[dict[str, Any]] = field(default_factory=list)

    def fields(self) -> dict[str, str]:
        """The hash fields written when a batch is created."""
        return {
            "queue": self.queue,
            "routine": routine_to_json(self.routine),
            "leads": "[" + ",".join(lead.to_json() for lead in self.leads) + "]",
            "policy": self.policy,
            "budget": self.budget,
            "base_url": self.base_url,
            "use_cache": "1" if self.use_cache else "0",
            "stream": "1" if self.stream else "0",
            "waits": str(self.waits),
            "opts": json.dumps(self.opts),
            "created_at": repr(self.created_at),
            "state": NEW,
        }

    @classmethod
    def from_hash(cls, batch_id: str, raw: dict[str, str]) -> Batch:
        return cls(
            id=batch_id,
            queue=raw["queue"],
            routine=routine_from_json(raw["routine"]),
            leads=[Lead.from_dict(d) for d in json.loads(raw["leads"])],
            policy=raw.get("policy", "report"),
            budget=raw.get("budget", ""),
            base_url=raw.get("base_url", ""),
            use_cache=raw.get("use_cache", "1") == "1",
            stream=raw.get("stream", "1") == "1",
            waits=int(raw.get("waits", "0")),
            opts=json.loads(raw.get("opts", "{}")),
            created_at=float(raw.get("created_at", "0")),
            state=BatchState(raw.get("state", NEW)),
            send=json.loads(raw.get("send", "[]")),
            reserved=int(raw.get("k", "0")),
            posts=int(raw.get("posts", "0")),
            error=raw.get("error") or None,
            run_id=raw.get("run_id", ""),
            outcomes=json.loads(raw.get("outcomes", "[]")),
        )


def scaled(cost: Cost, plan_usd: float) -> list[int]:
    values = {"a": cost.actions, "c": cost.data_credits, "u": plan_usd}
    return [round(values[m] * SCALE[m]) for m in METERS]


# KEYS: pending list, batch hash. ARGV: max leads, then field/value pairs for the batch.
# Idempotent per batch id: a retried claim finds the batch it already took.
_CLAIM = """
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
local items = redis.call('LPOP', KEYS[1], tonumber(ARGV[1]))
if not items then return 0 end
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('HSET', KEYS[2], 'leads', '[' .. table.concat(items, ',') .. ']')
return #items
"""

# KEYS: batch hash, budget hash. ARGV: n, per-item a, c, u, send-keys JSON, use budget (1/0).
# Reserves for the largest k <= n items that fit every cap; returns k. A budget whose caps
# are unknown (never set, or lost with Redis's data) pays for nothing: k = 0.
_RESERVE = _lua("""
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= '$NEW' then return tonumber(redis.call('HGET', KEYS[1], 'k') or '0') end
local n = tonumber(ARGV[1])
local k = n
local per = {tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])}
local meters = {'a', 'c', 'u'}
if ARGV[6] == '1' then
  if redis.call('HGET', KEYS[2], '$CAPS_KNOWN') ~= '1' then k = 0 end
  for i, m in ipairs(meters) do
    local cap = redis.call('HGET', KEYS[2], 'cap_' .. m)
    if cap and per[i] > 0 then
      local room = tonumber(cap) - tonumber(redis.call('HGET', KEYS[2], 'held_' .. m) or '0')
                   - tonumber(redis.call('HGET', KEYS[2], 'spent_' .. m) or '0')
      local fit = math.floor(room / per[i])
      if fit < 0 then fit = 0 end
      if fit < k then k = fit end
    end
  end
  for i, m in ipairs(meters) do redis.call('HINCRBY', KEYS[2], 'held_' .. m, k * per[i]) end
end
redis.call('HSET', KEYS[1], 'state', '$RESERVED', 'k', k, 'send', ARGV[5],
           'per_a', per[1], 'per_c', per[2], 'per_u', per[3])
return k
""")

# KEYS: batch hash. Exactly one execution moves reserved -> sending and may POST.
_BEGIN_SEND = _lua("""
if redis.call('HGET', KEYS[1], 'state') ~= '$RESERVED' then return 0 end
redis.call('HSET', KEYS[1], 'state', '$SENDING')
return 1
""")

# KEYS: batch hash, budget hash. ARGV: use budget (1/0), why.
# Give up: the run was definitely not sent (or not accepted) and will not be; the money
# held for it goes back. Already failed: nothing to give back twice.
_GIVE_UP = _lua(
    """
local state = redis.call('HGET', KEYS[1], 'state')
if state == '$FAILED' then return 0 end
if not ($FROM)[state] then
  return redis.error_reply('$ILLEGAL: ' .. tostring(state) .. ' -> $FAILED')
end
if ARGV[1] == '1' then
  local k = tonumber(redis.call('HGET', KEYS[1], 'k') or '0')
  for _, m in ipairs({'a', 'c', 'u'}) do
    local per = tonumber(redis.call('HGET', KEYS[1], 'per_' .. m) or '0')
    redis.call('HINCRBY', KEYS[2], 'held_' .. m, 0 - k * per)
  end
end
redis.call('HSET', KEYS[1], 'state', '$FAILED', 'error', ARGV[2])
return 1
""",
    FROM=BATCH_MOVES.sources(FAILED),
)

# KEYS: batch hash. ARGV: the state it must be in, the state it moves to, then field/value
# pairs written with it. The Python side checks the table; this checks the batch is where
# the caller thinks it is, atomically.
_MOVE = _lua("""
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= ARGV[1] then
  return redis.error_reply('$ILLEGAL: ' .. tostring(state) .. ' is not ' .. ARGV[1])
end
redis.call('HSET', KEYS[1], 'state', ARGV[2])
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
""")

# KEYS: batch hash, budget hash, outcome stream, stats hash.
# ARGV: outcomes JSON, use budget (1/0), actual a, c, u, stream (1/0), ttl, stream max length,
# then one JSON per lead for the stream. Settles the reservation to the actual charge, writes every
# outcome and marks the batch done, all at once; 0 if another execution already did.
_EMIT = _lua(
    """
local state = redis.call('HGET', KEYS[1], 'state')
if state == '$DONE' then return 0 end
if not ($FROM)[state] then
  return redis.error_reply('$ILLEGAL: ' .. tostring(state) .. ' -> $DONE')
end
local actual = {tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])}
local meters = {'a', 'c', 'u'}
if ARGV[2] == '1' then
  local k = tonumber(redis.call('HGET', KEYS[1], 'k') or '0')
  for i, m in ipairs(meters) do
    local per = tonumber(redis.call('HGET', KEYS[1], 'per_' .. m) or '0')
    redis.call('HINCRBY', KEYS[2], 'held_' .. m, 0 - k * per)
    redis.call('HINCRBY', KEYS[2], 'spent_' .. m, actual[i])
  end
end
redis.call('HSET', KEYS[1], 'state', '$DONE', 'outcomes', ARGV[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[7]))
if ARGV[6] == '1' then
  for i = 9, #ARGV do redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[8], '*', 'o', ARGV[i]) end
end
redis.call('HINCRBY', KEYS[4], 'leads', #ARGV - 8)
redis.call('HINCRBY', KEYS[4], 'batches', 1)
redis.call('HINCRBY', KEYS[4], 'actions_milli', actual[1])
redis.call('HINCRBY', KEYS[4], 'data_credits_milli', actual[2])
return 1
""",
    FROM=BATCH_MOVES.sources(DONE),
)


# KEYS: batch hash, budget hash, outcome stream, unsettled set.
# ARGV: run id, outcomes JSON (the whole batch's), use budget (1/0), spend correction a, c, u
# (what Clay charged minus the worst case the unknown outcome settled), stream (1/0), stream max
# length, batch id, then one JSON per adopted lead. A parked batch takes the run a delivery named: its
# leads' answers are published once, the budget corrected, the batch settled; 0 if it was not
# parked (another collector adopted it first).
_ADOPT = """
if redis.call('HGET', KEYS[1], 'parked') ~= '1' then return 0 end
redis.call('HSET', KEYS[1], 'parked', '0', 'run_id', ARGV[1], 'outcomes', ARGV[2])
redis.call('SREM', KEYS[4], ARGV[9])
if ARGV[3] == '1' then
  local meters = {'a', 'c', 'u'}
  for i, m in ipairs(meters) do redis.call('HINCRBY', KEYS[2], 'spent_' .. m, tonumber(ARGV[3 + i])) end
end
if ARGV[7] == '1' then
  for i = 10, #ARGV do redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[8], '*', 'o', ARGV[i]) end
end
return 1
"""


class BatchStore:
    """Reads and moves batches through their journal; every step atomic in Redis."""

    def __init__(self, connection: Any) -> None:
        self.conn = connection
        self._claim = connection.register_script(_CLAIM)
        self._reserve = connection.register_script(_RESERVE)
        self._begin = connection.register_script(_BEGIN_SEND)
        self._give_up = connection.register_script(_GIVE_UP)
        self._move = connection.register_script(_MOVE)
        self._emit = connection.register_script(_EMIT)
        self._adopt = connection.register_script(_ADOPT)

    def create(self, batch: Batch) -> bool:
        """Store a new batch; False (and nothing changed) when one with this id exists."""
        key = batch_key(batch.id)
        if not self.conn.hsetnx(key, "state", NEW):
            return False
        self.conn.hset(key, mapping=batch.fields())
        return True

    def exists(self, batch_id: str) -> bool:
        return bool(self.conn.exists(batch_key(batch_id)))

    def load(self, batch_id: str) -> Batch | None:
        raw = self.conn.hgetall(batch_key(batch_id))
        if not raw:
            return None
        return Batch.from_hash(batch_id, {_s(k): _s(v) for k, v in raw.items()})

    def states(self, batch_ids: list[str]) -> list[str | None]:
        with self.conn.pipeline(transaction=False) as pipe:
            for bid in batch_ids:
                pipe.hget(batch_key(bid), "state")
            return [_s(v) if v is not None else None for v in pipe.execute()]

    def claim(
        self, queue: str, routine_id: str, batch_id: str, template: Batch, max_leads: int
    ) -> int:
        """Take up to ``max_leads`` pending leads into batch ``batch_id`` (idempotent)."""
        fields = template.fields()
        fields.pop("leads")
        args: list[Any] = [max_leads]
        for k, v in fields.items():
            args += [k, v]
        return int(
            self._claim(keys=[pending_key(queue, routine_id), batch_key(batch_id)], args=args)
        )

    def reserve(self, batch: Batch, budget_key: str, send: list[str], per_item: list[int]) -> int:
        use = "1" if batch.budget else "0"
        args = [len(send), *per_item, json.dumps(send), use]
        return int(self._reserve(keys=[batch_key(batch.id), budget_key], args=args))

    def begin_send(self, batch_id: str) -> bool:
        return bool(self._begin(keys=[batch_key(batch_id)]))

    def move(self, batch_id: str, current: BatchState, new: BatchState, **values: str) -> None:
        """``current -> new`` (the table must allow it, and the batch must be ``current``),
        writing ``values`` with it."""
        BATCH_MOVES.check(current, new)
        args: list[str] = [current.value, new.value]
        for name, value in values.items():
            args += [name, value]
        _atomically(self._move, [batch_key(batch_id)], args)

    def count_posts(self, batch_id: str, posts: int) -> int:
        """Add ``posts`` to the POSTs the batch's items rode in; the total so far."""
        return int(self.conn.hincrby(batch_key(batch_id), "posts", posts))

    def requeue(self, batch_id: str) -> None:
        """A person requeued a failed batch (the outage is over): new again, and its items
        may ride in as many POSTs as a fresh batch's."""
        self.move(batch_id, FAILED, NEW, posts="0", error="")

    def give_up(self, batch: Batch, budget_key: str, error: str) -> bool:
        """The batch was certainly not sent and will not be: its reservation back, ``failed``
        with ``error``. False when it had failed already."""
        use = "1" if batch.budget else "0"
        keys = [batch_key(batch.id), budget_key]
        return bool(_atomically(self._give_up, keys, [use, redact(error)]))

    def emit(
        self, batch: Batch, budget_key: str, outcomes: list[dict[str, Any]], actual: list[int]
    ) -> bool:
        """Record every lead's outcome once, settle the budget, mark the batch done."""
        stream = "1" if batch.stream else "0"
        use = "1" if batch.budget else "0"
        lines = [json.dumps(o, separators=(",", ":"), default=str) for o in outcomes]
        args = [
            "[" + ",".join(lines) + "]",
            use,
            *actual,
            stream,
            DONE_TTL_S,
            STREAM_MAXLEN,
            *lines,
        ]
        keys = [batch_key(batch.id), budget_key, outcomes_key(batch.queue), stats_key(batch.queue)]
        return bool(_atomically(self._emit, keys, args))

    def unsettle(self, batch: Batch) -> None:
        """The batch is about to be sent: until its run id is journaled it may need a
        delivery to explain it (see :mod:`claynb.queue._adopt`)."""
        self.conn.sadd(unsettled_key(batch.queue), batch.id)

    def settle(self, batch: Batch) -> None:
        """The batch's run id is journaled (or nothing was sent): no delivery is needed."""
        self.conn.srem(unsettled_key(batch.queue), batch.id)

    def park(self, batch_id: str) -> None:
        """The send's outcome is unknown: a delivery naming the run may still collect it."""
        self.conn.hset(batch_key(batch_id), "parked", "1")

    def unsettled(self, queue: str) -> list[str]:
        return sorted(_s(b) for b in self.conn.smembers(unsettled_key(queue)))

    def adopt(
        self,
        batch: Batch,
        budget_key: str,
        run_id: str,
        outcomes: list[dict[str, Any]],
        published: list[dict[str, Any]],
        correction: list[int],
    ) -> bool:
        """A parked batch's run was found: publish ``published`` once, correct the spend."""
        lines = [json.dumps(o, separators=(",", ":"), default=str) for o in published]
        args = [
            run_id,
            json.dumps(outcomes, separators=(",", ":"), default=str),
            "1" if batch.budget else "0",
            *correction,
            "1" if batch.stream else "0",
            STREAM_MAXLEN,
            batch.id,
            *lines,
        ]
        keys = [
            batch_key(batch.id),
            budget_key,
            outcomes_key(batch.queue),
            unsettled_key(batch.queue),
        ]
        return bool(_atomically(self._adopt, keys, args))

    def record_sample(self, queue: str, sample: dict[str, Any]) -> None:
        """One finished job's latency and size, for the monitor (best effort, capped)."""
        with self.conn.pipeline(transaction=False) as pipe:
            pipe.lpush(samples_key(queue), json.dumps(sample))
            pipe.ltrim(samples_key(queue), 0, SAMPLES_KEPT - 1)
            pipe.execute()

    def cached(
        self, routine_id: str, keys: list[str], max_age_s: float | None
    ) -> dict[str, dict[str, Any]]:
        """Results already paid for, by item key (only those younger than ``max_age_s``)."""
        if not keys:
            return {}
        values = self.conn.hmget(cache_key(routine_id), keys)
        now = time.time()
        found: dict[str, dict[str, Any]] = {}
        for key, value in zip(keys, values, strict=True):
            if value is None:
                continue
            entry = json.loads(value)
            if max_age_s is None or now - entry.get("at", 0) <= max_age_s:
                found[key] = entry
        return found

    def remember(self, batch: Batch, outcomes: list[dict[str, Any]]) -> None:
        """Cache paid-for answers and note when each lead was refreshed (best effort)."""
        now = time.time()
        with self.conn.pipeline(transaction=False) as pipe:
            for o in outcomes:
                if o["status"] in ANSWERED and o.get("charged_here"):
                    entry = {"status": o["status"], "result": o["result"], "at": now}
                    pipe.hset(cache_key(batch.routine.id), o["key"], json.dumps(entry))
            for lead in batch.leads:
                pipe.hset(
                    leads_key(batch.queue),
                    lead.lead_id,
                    json.dumps({"routine": batch.routine.id, "inputs": lead.inputs}),
                )
            done = {o["lead"]: now for o in outcomes if o["status"] in (*ANSWERED, Status.CACHED)}
            if done:
                pipe.zadd(fresh_key(batch.queue), done)
            pipe.execute()


def template_key(queue: str, routine_id: str) -> str:
    return f"{PREFIX}:{queue}:template:{routine_id}"


def load_template(conn: Any, queue: str, routine_id: str) -> Batch | None:
    """The settings (routine, budget, options) pending leads of this routine are sent with."""
    raw = conn.hgetall(template_key(queue, routine_id))
    if not raw:
        return None
    fields = {_s(k): _s(v) for k, v in raw.items()}
    fields.setdefault("leads", "[]")
    return Batch.from_hash("", fields)


def _atomically(script: Any, keys: list[str], args: list[Any]) -> Any:
    """Run a batch script; the move its guard refused raises IllegalTransition."""
    try:
        return script(keys=keys, args=args)
    except Exception as exc:
        if _ILLEGAL in str(exc):
            raise IllegalTransition(f"queue batch {keys[0]}: {exc}") from exc
        raise


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
