"""Workers: RQ workers that also notice dead colleagues, and a pool of worker processes.

RQ notices a worker that died mid-job only when the job's registry entry expires (the job
timeout plus a minute). claynb jobs hold a lease of a few seconds instead (see
:func:`claynb.queue._jobs.lease`), and :func:`reap_abandoned` hands a job whose lease
lapsed back to RQ's own clean-up, which retries it (or moves it to the failed-job
registry when it has no retries left). The retried job resumes its batch from the
journal, so the lead is neither lost nor paid twice. Every claynb worker runs the reaper
in a thread; ``LeadQueue.wait`` and the monitor run it too.

By default a worker runs jobs in its own process (RQ's ``SimpleWorker``): a job is a run
of up to 100 items mostly spent waiting on Clay, so a fork per job buys nothing, and a
killed worker takes its job with it, which is what the lease expects. ``fork=True``
gives RQ's forking worker.

Redis going away is weather, not an end: RQ's loop quits on the first error it does not
expect (a job's last write failing, a heartbeat), so :func:`run_worker` waits for Redis
with backoff and starts a fresh worker on it, for as long as it takes; only a stop asked
for (SIGTERM, SIGINT) or a drained burst ends it. The job that was cut off keeps its
place in RQ's started registry (the embedded Redis persists it) and, its lease lapsed,
is reaped and retried, resuming its batch from the batch's journal. RQ's scheduler (a
child process, which runs retries with backoff and budget waits) dies on a Redis error
too and RQ restarts it only every ten minutes; claynb's reaper thread restarts it within
seconds. :class:`WorkerPool` starts each worker in a process group of its own, replaces
workers that die, and on stop ends each group, so the scheduler children go with them.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from claynb.queue._store import SENT, lease_key
from claynb.services._process import process_alive
from claynb.wire._config import ENV_ADMIN_URL

log = logging.getLogger("claynb.queue.worker")

#: A job with no lease this long after it started belongs to a dead worker.
DEFAULT_GRACE_S = 6.0
#: Waiting for Redis after an outage: the first pause, and the longest.
RECONNECT_FIRST_S = 0.5
RECONNECT_MAX_S = 10.0
#: How often a pool looks for dead workers to replace.
SUPERVISE_EVERY_S = 1.0


def default_grace_s() -> float:
    """Twice the lease the workers hold (``CLAYNB_LEASE_S``), else :data:`DEFAULT_GRACE_S`."""
    lease = os.environ.get("CLAYNB_LEASE_S")
    return 2 * float(lease) if lease else DEFAULT_GRACE_S


def reap_abandoned(conn: Any, queues: Sequence[str], *, grace_s: float | None = None) -> list[str]:
    """Hand back to RQ every claynb job whose worker died; the ids of those jobs."""
    grace_s = default_grace_s() if grace_s is None else grace_s
    from rq import Queue
    from rq.job import Job, JobStatus
    from rq.registry import StartedJobRegistry

    reaped: list[str] = []
    now = time.time()
    for name in queues:
        registry = StartedJobRegistry(queue=Queue(name, connection=conn))
        entries = conn.zrange(registry.key, 0, -1)
        for raw in entries:
            entry = raw.decode() if isinstance(raw, bytes) else str(raw)
            job_id = entry.split(":", 1)[0]
            if conn.exists(lease_key(job_id)):
                continue
            try:
                job = Job.fetch(job_id, connection=conn)
            except Exception:  # the job hash expired: RQ's own clean-up deals with it
                continue
            started = job.started_at.timestamp() if job.started_at else now
            if not job.meta.get("claynb") or now - started < grace_s:
                continue
            if job.get_status() != JobStatus.STARTED or _still_running_here(conn, job):
                continue
            # Expire the entry now and let RQ's clean-up do the rest (retry or fail).
            conn.zadd(registry.key, {entry: 1})
            registry.cleanup(timestamp=1)
            reaped.append(job_id)
    return reaped


def _still_running_here(conn: Any, job: Any) -> bool:
    """A lapsed lease on a busy machine, not a dead worker: the job's worker runs on this
    host, its process is alive and it is still on this job.

    The lease is refreshed by a thread every third of its life; on a loaded machine a
    process can go without CPU for longer than that, so a lapsed lease alone would hand a
    live job to a second worker. A worker on another host is taken at its lease's word.
    """
    import socket

    from rq import Worker

    if not job.worker_name:
        return False
    worker = Worker.find_by_key(
        Worker.redis_worker_namespace_prefix + job.worker_name, connection=conn
    )
    if worker is None or worker.hostname != socket.gethostname() or not worker.pid:
        return False
    return process_alive(int(worker.pid)) and worker.get_current_job_id() == job.id


def live_workers(conn: Any, queue: str) -> int:
    """Workers registered on ``queue`` that are alive, as far as this machine can tell.

    RQ keeps a dead worker's registration for minutes; one on this host whose process is
    gone is not counted (one on another host is taken at its word).
    """
    import socket

    from rq import Queue, Worker

    here, alive = socket.gethostname(), 0
    for worker in Worker.all(queue=Queue(queue, connection=conn)):
        if worker.hostname == here and worker.pid and not process_alive(int(worker.pid)):
            continue
        alive += 1
    return alive


class _Reaping:
    """Mixin: a daemon thread that reaps abandoned jobs of this worker's queues and
    restarts RQ's scheduler when it died (RQ itself looks only every ten minutes)."""

    reap_every_s: float = 2.0

    @property
    def stop_asked(self) -> bool:
        """SIGTERM or SIGINT arrived: the worker is to end, not to be started again."""
        return getattr(self, "_shutdown_requested_date", None) is not None

    def _revive_scheduler(self) -> None:
        scheduler = getattr(self, "scheduler", None)
        if scheduler is None or self.stop_asked:
            return
        release_dead_scheduler_locks(scheduler.connection, scheduler._queue_names)
        process = scheduler._process
        if process is None or not process.is_alive():
            scheduler.acquire_locks(auto_start=True)

    def work(self, *args: Any, **kwargs: Any) -> bool:
        stop = threading.Event()
        names = [q.name for q in self.queues]  # type: ignore[attr-defined]
        conn = self.connection  # type: ignore[attr-defined]

        def loop() -> None:
            while not stop.wait(self.reap_every_s):
                try:
                    reap_abandoned(conn, names)
                    self._revive_scheduler()
                except Exception:  # a transient Redis error must not stop the worker
                    continue

        thread = threading.Thread(target=loop, name="claynb-reaper", daemon=True)
        thread.start()
        try:
            return bool(super().work(*args, **kwargs))  # type: ignore[misc]
        finally:
            stop.set()


# KEYS[1] a scheduler lock; ARGV[1] the holder it must still have. Deleted only if so.
_RELEASE_IF_HELD_BY = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def release_dead_scheduler_locks(conn: Any, queues: Sequence[str]) -> list[str]:
    """Free the scheduler locks of ``queues`` held by a scheduler that died on this host.

    RQ lets a lock run out (a minute) before another scheduler may take it; until then no
    retry with backoff and no budget wait is enqueued. A holder on this host whose process
    is gone (killed with its worker, or ended by a Redis error) is known dead now.
    A holder on another host is taken at its lock's word. Returns the queues freed.
    """
    import socket

    from rq.scheduler import SCHEDULER_KEY_TEMPLATE, RQScheduler

    here, freed = socket.gethostname(), []
    for queue in queues:
        lock = RQScheduler.get_locking_key(queue)
        holder = conn.get(lock)
        if holder is None:
            continue
        name = holder.decode() if isinstance(holder, bytes) else str(holder)
        host, pid = conn.hmget(SCHEDULER_KEY_TEMPLATE % name, "hostname", "pid")
        if host is None or pid is None or host.decode() != here:
            continue
        if not process_alive(int(pid)) and conn.eval(_RELEASE_IF_HELD_BY, 1, lock, name):
            freed.append(queue)
    return freed


def worker_class(fork: bool = False) -> type:
    """The RQ worker class claynb runs: in-process by default, forking on request."""
    from rq import SimpleWorker, Worker

    base = Worker if fork else SimpleWorker
    return type("ClaynbWorker" if not fork else "ClaynbForkingWorker", (_Reaping, base), {})


#: Set by :class:`WorkerPool` to its own pid: a worker whose pool process is gone stops.
ENV_POOL_PID = "CLAYNB_WORKER_POOL_PID"
#: How often a pool's worker checks that its pool is still there, and how long it then
#: gives a job in hand to finish before it exits anyway.
POOL_CHECK_S = 1.0
ORPHAN_GRACE_S = 60.0


def exit_with_pool() -> threading.Thread | None:
    """A worker started by a :class:`WorkerPool` ends when the pool's process does.

    Workers ride out a Redis outage instead of exiting, and each runs in a process group of
    its own so that stopping the pool reaches its scheduler child too; so a kernel killed
    without stopping its pool would leave them waiting forever for a Redis that died with
    it. This thread watches the parent: once it is not the pool any more, the worker gets
    SIGTERM (finish the job in hand, as on a redeploy) and, if it is still up after a
    grace, exits. A worker started by hand (``claynb worker``) has no pool and is left alone.
    """
    pool = os.environ.get(ENV_POOL_PID)
    if not pool or not pool.isdigit():
        return None

    def watch() -> None:
        while os.getppid() == int(pool):
            time.sleep(POOL_CHECK_S)
        log.warning("the worker pool (pid %s) is gone: this worker stops", pool)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(ORPHAN_GRACE_S)
        os._exit(0)

    thread = threading.Thread(target=watch, name="claynb-pool-watch", daemon=True)
    thread.start()
    return thread


def run_worker(
    conn: Any,
    queues: Sequence[str],
    *,
    burst: bool = False,
    with_scheduler: bool = True,
    name: str | None = None,
    fork: bool = False,
    logging_level: str = "WARNING",
) -> bool:
    """Run an RQ worker on ``queues`` until stopped (or, with ``burst``, until they drain).

    A Redis outage does not end it: it waits for Redis (with backoff) and starts afresh.
    A worker of a :class:`WorkerPool` ends with the pool's process (:func:`exit_with_pool`).
    """
    from rq import Queue

    exit_with_pool()

    cls = worker_class(fork)
    worked, restarts = False, 0
    while True:
        worker = None
        try:
            worker = cls(
                [Queue(q, connection=conn) for q in queues],
                connection=conn,
                name=name if not (name and restarts) else f"{name}.{restarts}",
            )
            worked |= bool(
                worker.work(burst=burst, with_scheduler=with_scheduler, logging_level=logging_level)
            )
        except _redis_errors() as exc:
            log.warning("worker lost Redis: %s", exc)
        if worker is not None and worker.stop_asked:
            return worked
        wait_for_redis(conn)
        if worker is not None:
            _retire(worker)
        if burst and _drained(conn, queues):
            return worked
        restarts += 1
        log.warning("worker starting again after a Redis outage (restart %d)", restarts)


def _redis_errors() -> tuple[type[BaseException], ...]:
    import redis

    return (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def wait_for_redis(
    conn: Any, *, first_s: float = RECONNECT_FIRST_S, max_s: float = RECONNECT_MAX_S
) -> float:
    """Block until Redis answers PING, pausing longer each time (up to ``max_s``); the
    seconds waited. Never gives up: an outage ends, and a worker that quit would not
    come back by itself."""
    started, pause = time.monotonic(), first_s
    while True:
        try:
            conn.ping()
            return time.monotonic() - started
        except _redis_errors():
            time.sleep(pause)
            pause = min(pause * 2, max_s)


def _retire(worker: Any) -> None:
    """Forget a worker RQ's loop left behind after an error: its registration would say
    it still holds its job, and the reaper would never hand that job back."""
    try:
        worker.register_death()
        worker.connection.delete(worker.key)
    except Exception as exc:  # noqa: BLE001 - best effort; RQ's own TTL ends it later
        log.warning("could not retire worker %s: %s", worker.name, exc)


def _drained(conn: Any, queues: Sequence[str]) -> bool:
    """Nothing queued, started or scheduled on ``queues``: a burst worker's work is done."""
    from rq import Queue
    from rq.registry import ScheduledJobRegistry, StartedJobRegistry

    for name in queues:
        queue = Queue(name, connection=conn)
        if queue.count or StartedJobRegistry(queue=queue).count:
            return False
        if ScheduledJobRegistry(queue=queue).count:
            return False
    return True


class WorkerPool:
    """Worker processes (``python -m claynb worker``) started and stopped from Python.

    The Clay API key reaches each worker through its environment only. ``max_attempts``
    and ``max_sends_per_item`` are the workers' :class:`claynb.RetryPolicy` (retries of
    one request; POSTs a batch's items may ride in across every execution of its job).
    With ``supervise`` (the default, except in burst mode) a thread replaces any worker
    that dies, so ``n`` keep running. ``kill(i)`` sends SIGKILL to a worker and its
    children, as a crashed machine would (``polling_a_run(lq)`` finds one whose run Clay
    has started); ``stop()`` asks each to finish its job
    (SIGTERM), then kills what is left, children (RQ's scheduler) included. A context
    manager: everything it starts, it stops. ``emulator_admin_url`` (what
    :attr:`claynb.Emulator.admin_url` says) lets the workers read what each item cost from
    an emulator's meters; without it costs are estimated.
    """

    def __init__(
        self,
        redis_url: str,
        *,
        queues: Sequence[str] = ("claynb",),
        n: int = 2,
        api_key: str | None = None,
        base_url: str | None = None,
        emulator_admin_url: str | None = None,
        burst: bool = False,
        with_scheduler: bool = True,
        poll_interval_s: float | None = None,
        lease_s: float | None = None,
        max_attempts: int | None = None,
        max_sends_per_item: int | None = None,
        fleet_rps: float | None = None,
        fleet_pacing: bool = True,
        sinks: Sequence[str] = (),
        extra_env: dict[str, str] | None = None,
        log_dir: str | None = None,
        supervise: bool | None = None,
    ) -> None:
        self.redis_url = redis_url
        self.queues = list(queues)
        self.n = n
        self.burst = burst
        self.with_scheduler = with_scheduler
        self._env = dict(os.environ)
        self._env[ENV_POOL_PID] = str(os.getpid())
        if api_key:
            self._env["CLAY_API_KEY"] = api_key
        if base_url:
            self._env["CLAY_BASE_URL"] = base_url
        # Costs come from an emulator's meters only when the workers are told of one.
        self._env[ENV_ADMIN_URL] = emulator_admin_url or ""
        if poll_interval_s is not None:
            self._env["CLAYNB_POLL_INTERVAL_S"] = str(poll_interval_s)
        if lease_s is not None:
            self._env["CLAYNB_LEASE_S"] = str(lease_s)
        if max_attempts is not None:
            self._env["CLAYNB_MAX_ATTEMPTS"] = str(max_attempts)
        if max_sends_per_item is not None:
            self._env["CLAYNB_MAX_SENDS_PER_ITEM"] = str(max_sends_per_item)
        if fleet_rps is not None:
            self._env["CLAYNB_FLEET_RPS"] = str(fleet_rps)
        self._env["CLAYNB_FLEET_PACING"] = "1" if fleet_pacing else "0"
        self.sinks = list(sinks)
        self._env.update(extra_env or {})
        self.log_dir = log_dir
        self.supervise = (not burst) if supervise is None else supervise
        self.procs: list[subprocess.Popen[bytes]] = []
        #: Workers the supervisor started in place of dead ones.
        self.replaced = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "claynb", "worker", "--redis-url", self.redis_url]
        for q in self.queues:
            cmd += ["--queue", q]
        if self.burst:
            cmd.append("--burst")
        if not self.with_scheduler:
            cmd.append("--no-scheduler")
        for spec in self.sinks:
            cmd += ["--sink", spec]
        return cmd

    def start(self) -> WorkerPool:
        self._stopping.clear()
        with self._lock:
            for _ in range(self.n - len(self.alive())):
                self.add()
        if self.supervise and self._supervisor is None:
            self._supervisor = threading.Thread(
                target=self._supervise, name="claynb-pool-supervisor", daemon=True
            )
            self._supervisor.start()
        return self

    def _supervise(self) -> None:
        """Keep ``n`` workers alive: a worker that died (crash, OOM, SIGKILL) is replaced."""
        while not self._stopping.wait(SUPERVISE_EVERY_S):
            with self._lock:
                if self._stopping.is_set():
                    return
                for _ in range(self.n - len(self.alive())):
                    self.add()
                    self.replaced += 1

    def add(self) -> subprocess.Popen[bytes]:
        """Start one more worker process, in a process group of its own."""
        out: Any = subprocess.DEVNULL
        if self.log_dir:
            out = open(os.path.join(self.log_dir, f"worker-{len(self.procs)}.log"), "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            self.command(),
            env=self._env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        if out is not subprocess.DEVNULL:
            out.close()
        self.procs.append(proc)
        return proc

    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.procs if p.poll() is None]

    def pids(self) -> list[int]:
        return [p.pid for p in self.alive()]

    def polling_a_run(self, lq: Any, timeout: float = 30.0) -> tuple[int, str] | None:
        """One of this pool's workers whose batch's run Clay has started (its run id
        recorded), as (pid, job id) for ``kill(pids().index(pid))``; None if none is seen
        within ``timeout`` seconds.

        Killing that worker shows a successor collecting the run, not sending it again; a
        worker killed between its POST and Clay's answer leaves that batch's outcome unknown.
        """
        from rq import Queue, Worker
        from rq.job import Job
        from rq.registry import StartedJobRegistry

        registry = StartedJobRegistry(queue=Queue(lq.name, connection=lq.conn))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for job_id in registry.get_job_ids(cleanup=False):
                batch = lq.store.load(job_id)
                if batch is None or batch.state != SENT:
                    continue
                job = Job.fetch(job_id, connection=lq.conn)
                key = Worker.redis_worker_namespace_prefix + str(job.worker_name)
                worker = Worker.find_by_key(key, connection=lq.conn)
                if worker is not None and worker.pid and int(worker.pid) in self.pids():
                    return int(worker.pid), job_id
            time.sleep(0.02)
        return None

    def kill(self, index: int = 0) -> int:
        """SIGKILL one live worker and its children (a crash, not a shutdown); its pid.
        A supervised pool starts another in its place within a second or so."""
        proc = self.alive()[index]
        _signal_group(proc, signal.SIGKILL)
        proc.wait(timeout=10)
        return proc.pid

    def wait(self, timeout: float | None = None) -> list[int | None]:
        """Wait for burst workers to finish; their exit codes."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for p in self.procs:
            left = None if deadline is None else max(0.1, deadline - time.monotonic())
            try:
                p.wait(timeout=left)
            except subprocess.TimeoutExpired:
                break
        return [p.poll() for p in self.procs]

    def stop(self, timeout: float = 10.0) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL for any worker still there; then every
        process left in the workers' groups (RQ's scheduler children) is killed too."""
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=10)
            self._supervisor = None
        with self._lock:
            for p in self.alive():
                p.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout
            for p in self.procs:
                try:
                    p.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=5)
            for p in self.procs:
                _signal_group(p, signal.SIGKILL)

    def __enter__(self) -> WorkerPool:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"WorkerPool(queues={self.queues!r}, alive={len(self.alive())}/{len(self.procs)})"


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Send ``sig`` to the process group ``proc`` leads (it and every child it started)."""
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        return
