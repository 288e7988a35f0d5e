"""A pool's workers end with the pool's process: a kernel killed without stopping its pool
(a crash, nbmake or JupyterLab ending the kernel) must not leave workers waiting for a Redis
that may have died with it. Real processes, real Redis, a real SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil

POOL = textwrap.dedent(
    """
    import sys, time
    from claynb.queue import WorkerPool
    pool = WorkerPool(sys.argv[1], queues=["orphans"], n=2, api_key="k",
                      base_url="http://127.0.0.1:9")
    pool.start()
    print(" ".join(str(p.pid) for p in pool.procs), flush=True)
    time.sleep(600)
    """
)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_workers_stop_when_their_pool_is_killed(redis_url: str) -> None:
    pool = subprocess.Popen(
        [sys.executable, "-c", POOL, redis_url], stdout=subprocess.PIPE, text=True
    )
    assert pool.stdout is not None
    workers = [int(pid) for pid in pool.stdout.readline().split()]
    assert len(workers) == 2 and all(psutil.pid_exists(pid) for pid in workers)
    os.kill(pool.pid, signal.SIGKILL)  # the pool never gets to stop them
    pool.wait()
    deadline = time.monotonic() + 180  # the watch checks every second; the grace is 60 s
    while time.monotonic() < deadline and not all(_gone(pid) for pid in workers):
        time.sleep(0.2)
    left = [pid for pid in workers if not _gone(pid)]
    for pid in left:  # do not leak them from the test either
        os.killpg(pid, signal.SIGKILL)
    assert not left, f"workers outlived their pool: {left}"
