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
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from claynb.queue._store import lease_key
from claynb.services._process import process_alive

#: A job with no lease this long after it started belongs to a dead worker.
DEFAULT_GRACE_S = 6.0


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
    """Mixin: a daemon thread that reaps abandoned jobs of this worker's queues."""

    reap_every_s: float = 2.0

    def work(self, *args: Any, **kwargs: Any) -> bool:
        stop = threading.Event()
        names = [q.name for q in self.queues]  # type: ignore[attr-defined]
        conn = self.connection  # type: ignore[attr-defined]

        def loop() -> None:
            while not stop.wait(self.reap_every_s):
                try:
                    reap_abandoned(conn, names)
                except Exception:  # a transient Redis error must not stop the worker
                    continue

        thread = threading.Thread(target=loop, name="claynb-reaper", daemon=True)
        thread.start()
        try:
            return bool(super().work(*args, **kwargs))  # type: ignore[misc]
        finally:
            stop.set()


def worker_class(fork: bool = False) -> type:
    """The RQ worker class claynb runs: in-process by default, forking on request."""
    from rq import SimpleWorker, Worker

    base = Worker if fork else SimpleWorker
    return type("ClaynbWorker" if not fork else "ClaynbForkingWorker", (_Reaping, base), {})


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
    """Run an RQ worker on ``queues`` until stopped (or, with ``burst``, until they drain)."""
    from rq import Queue

    cls = worker_class(fork)
    worker = cls([Queue(q, connection=conn) for q in queues], connection=conn, name=name)
    return bool(
        worker.work(burst=burst, with_scheduler=with_scheduler, logging_level=logging_level)
    )


class WorkerPool:
    """Worker processes (``python -m claynb worker``) started and stopped from Python.

    The Clay API key reaches each worker through its environment only. ``max_attempts``
    and ``max_sends_per_item`` are the workers' :class:`claynb.RetryPolicy` (retries of
    one request; POSTs a batch's items may ride in across every execution of its job).
    ``kill(i)`` sends SIGKILL, as a crashed machine would; ``stop()`` asks each to finish
    its job (SIGTERM), then kills what is left. A context manager: everything it starts,
    it stops.
    """

    def __init__(
        self,
        redis_url: str,
        *,
        queues: Sequence[str] = ("claynb",),
        n: int = 2,
        api_key: str | None = None,
        base_url: str | None = None,
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
    ) -> None:
        self.redis_url = redis_url
        self.queues = list(queues)
        self.n = n
        self.burst = burst
        self.with_scheduler = with_scheduler
        self._env = dict(os.environ)
        if api_key:
            self._env["CLAY_API_KEY"] = api_key
        if base_url:
            self._env["CLAY_BASE_URL"] = base_url
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
        self.procs: list[subprocess.Popen[bytes]] = []

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
        for _ in range(self.n - len(self.alive())):
            self.add()
        return self

    def add(self) -> subprocess.Popen[bytes]:
        """Start one more worker process."""
        out: Any = subprocess.DEVNULL
        if self.log_dir:
            out = open(os.path.join(self.log_dir, f"worker-{len(self.procs)}.log"), "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            self.command(),
            env=self._env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        if out is not subprocess.DEVNULL:
            out.close()
        self.procs.append(proc)
        return proc

    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.procs if p.poll() is None]

    def pids(self) -> list[int]:
        return [p.pid for p in self.alive()]

    def kill(self, index: int = 0) -> int:
        """SIGKILL one live worker (a crash, not a shutdown); its pid."""
        proc = self.alive()[index]
        proc.send_signal(signal.SIGKILL)
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
        """Warm shutdown (SIGTERM), then SIGKILL for any worker still there."""
        for p in self.alive():
            p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)

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
