"""Where a first enrich run's memory goes, phase by phase (issue 13: peak <= 2x the frame).

    python benchmarks/enrich_phases.py [--rows 200000] [--trace]

The same frame, emulator and call as ``benchmarks/enrich_overhead.py`` (``crm_frame``,
``instant_emulator``, ``enrich_once``: a first run, every row sent). It is a measuring
tool: it wraps private functions of ``claynb.pipeline._enrich`` (``prepare``,
``plan_work``, the backend ``get_backend`` hands out, ``_finish`` and ``merge``) so as
to mark where one phase ends and the next begins, and it changes nothing they do. When
those functions are renamed, this script is renamed with them.

The phases, each from its mark to the next: ``prepare`` (normalising, de-duplicating,
the item keys), ``planning`` (the state file opened, the cache looked up, the claims
taken), ``engine`` (the backend sending the runs and landing the answers), ``finish``
(unanswered items completed, the answers put by group), ``merge`` (the output frame
built), then ``returned`` (the call is over; its output is still alive).

How to read it: every figure is the process's resident memory (RSS) above what it was
when the call started. "at its end" is RSS when the phase ended; "peak" is the highest
RSS a thread sampling every 2 ms saw while the phase ran, also as a multiple of the
frame's ``memory_usage(deep=True)`` (the target is the whole call's peak <= 2x). Memory
a phase frees mostly stays resident (pymalloc's arenas; Arrow's mimalloc pool keeps
freed buffers for later), so the call's peak is close to the sum of the phases'
high-water marks, not the live set at any one moment: every phase has to stay small.
"arrow" is ``pyarrow.total_allocated_bytes()`` at the phase's end (what Arrow holds
live: the frame's own text columns are Arrow under pandas 3). ``--trace`` also runs
tracemalloc (Python objects only; its bookkeeping inflates RSS, so read RSS from a run
without it): per phase, the Python allocations alive at its end and the peak within it,
and the lines that hold most at its end.

What was tried and did not pay (200,000 rows unless said):

- ``pyarrow.default_memory_pool().release_unused()`` after ``prepare``: RSS after
  ``prepare`` 54 MB instead of 98, but the engine then took +66 MB instead of +15: the
  call's peak was the same (201 MB). The later phases reuse what the pool kept.
- Arrow's allocator: ``ARROW_DEFAULT_MEMORY_POOL=system`` halves ``prepare``'s RSS, and
  ``MIMALLOC_PURGE_DELAY=0`` or jemalloc do much the same (``prepare`` alone: +40 to +50
  MB against +89 to +96; Arrow's own peak is the same in all), but at 50,000 rows the
  call's peak moved by about 10%, since the later phases reuse that memory anyway. A
  library does not choose its users' allocator either.
- ``MALLOC_ARENA_MAX=1`` (glibc's per-thread arenas): no change (87.5 against 89.5 MB
  at 50,000 rows).
- The key JSON built a chunk of rows at a time: Arrow's peak in ``prepare`` stayed at
  80.4 MB (the dictionary encoding, not the JSON, sets it). Kept once the dictionary
  encoding was gone (below): it is part of ``prepare``'s 3.2 MB.
- ``prepare``'s own peak cut (issue 13 item 2, below): the call's peak stayed where it
  was, as with ``release_unused``.

What changed in the merge (issue 13 item 2): it was the call's peak, +47 MB above the end
of the engine (the output's new columns are 41.7 MB, 1x the frame, by themselves). Now
``_finish`` lets go of the plan before the output is built (the item keys, a ``str``
each, the key index, the normalised inputs, the landed results: all that the merge does
not read), and the answers' fields once they are columns; ``Landed`` keeps a status and a
cost source as a byte per result and an error only where there is one; the status,
error and cost-source columns go from per-group arrays to Arrow without a Python list per
row; the new columns go into the output as Series on the frame's index, which ``assign``
takes without copying (the input's columns are shared: copy-on-write). Side by side with
main (4887669: the key index, ``prepare`` without the dictionary encoding), this script
twice each at loads of 2.3 to 2.8 on 2 CPUs: the call's peak 141.2 and 140.9 MB (3.34x)
against 177.5 and 177.9 (4.20x and 4.21x); the finish ends at 102.0 and 101.7 MB, 10 below
the engine's end, against 125.1 and 127.1, 7 to 9 above it; the merge's peak is 39 MB
above the finish's end (the output's new columns: 38.5 MB of buffers) against 52 and 51.
``_finish`` alone (``time.process_time`` around it, the merge included, first run): 0.30
and 0.36 CPU-s against 0.54 and 0.56 (``result_fields`` 0.01 s against 0.11: it orders the
fields by first sight only when one is not the routine's; the block rows worked out once,
not per field; one key look-up at the finish, not two). The merge still takes from the
system almost all it builds: what the plan and the engine freed stays in glibc's heap and
pymalloc's arenas, which Arrow's pool does not draw from. ``malloc_trim(0)`` (glibc, by
``ctypes``) before the merge gave 6 to 10 MB back (peaks 129.9, 130.5 and 126.4 MB
against 136.1 to 140.9, same minutes; about 1 ms): not kept, a library does not manage
its users' allocator; ``pyarrow.system_memory_pool()`` for the output's buffers: 2 MB.
Letting go of each field as its column was built, not all of them after, freed 5 to 7 MB
more but cost 0.05 to 0.09 CPU-s (dropping a column from each of 2,000 run blocks): not
kept.

Where it stands (da2b605: items 5 and 6 merged with the direct tier landing runs in
groups, 200,000 rows, a load of 3 on 2 CPUs, while the test suite ran beside it): RSS
above the call's start at each phase's end, ``prepare`` 17.1 MB, planning 27.3 (no
higher peak), the engine 63.1 (peak 67.9: the answers as Arrow columns, 22 MB, and what
the runs leave in pymalloc's arenas), the finish 65.5 (peak 72.8: the answers' text
widened, item 6, and the results put by group), the merge 73.2: the call's peak 1.74x
the frame (73.3 MB), against 2.43x at the start of the session (f9cc60f) and 4.72x before
the items below. ``enrich_overhead.py --rows 200000`` twice, same minutes: the first run's
RSS peak 74.1 and 70.8 MB (1.75x, 1.68x). Items 5 and 6 alone, side by side with main
(c9310ef against dc62279, load 3): the call's peak 81.4 and 85.8 MB (1.93x, 2.03x)
against 98.8 and 100.2. What is left: the finish and the merge each add 5 to 10 MB (the
widened offsets; the status, error and cost columns); glibc's ``malloc_trim`` before the
merge (10 MB less in a trial; not kept: a library should not manage its users'
allocator).

What was done, item by item (for 2x, 84 MB at 200,000 rows; the output's new columns
alone are 41.7 MB):

1. The item keys. Done: held as 16 bytes each from ``prepare``
   on (``FrameKeys`` in ``claynb/pipeline/_keys.py``: 3.2 MB at 200,000 rows, where a
   32-character ``str`` each and their list were 16.8 MB from ``prepare`` to the finish),
   made as text a list at a time where they leave the process or the state file needs
   them (planning 100,000 at a time, the claims once: both a chunk at a time since item 5;
   the engine a run at a time);
   ``Landed`` keeps each result's group (the direct engine's own, or looked up once a
   list for the other tiers), not its key; the claims' copy of the key list is not held
   during the engine. Side by side with main (4990c12: the answers' blocks joined),
   this script at 200,000 rows, two pairs at loads of 1.3 to 1.7 on 2 CPUs: the call's
   peak 102.3 and 102.7 MB (2.42x, 2.43x) against 114.3 and 111.3 (2.71x, 2.64x);
   ``prepare`` ends at 26.2 MB against 43.1, the engine at 78.2 against 96.2, the finish
   at 64.7 against 75.8 (one pair). Against main before that (71d3775) the call's peak
   moved with the load more than with the change: 128.1 and 132.9 MB against 147.5 and
   143.5 at loads of 8.6 to 11.7, but 121.9 and 131.6 against 117.6 and 114.2 at 1.1 to
   1.3 (there the runs' keys, made and freed among the engine's other small objects,
   left pymalloc arenas part-used, where main's keys, made together in ``prepare``,
   went back to the system as whole arenas when the plan was let go before the merge).
2. (Done for ``prepare`` itself; it did not lower the call's peak.) ``prepare`` no
   longer makes a dictionary encoding's hash table and copy of the distinct values
   (Arrow's pool peaked 38 MB above the frame): Arrow's sort (a dense rank, no copy)
   finds them where they hold many bytes, its hashing where they hold few (estimated
   from a sample), the normalised column is joined a slice at a time into one
   numpy-backed column which is the groups' text when every value is distinct, and the
   keys' JSON is made a chunk of groups at a time. Side by side with main (b354ca6),
   two pairs of this script at loads of 6 to 10 on 2 CPUs: ``prepare`` at its end 43.1
   and 45.2 MB against 83.9 and 80.8 (102.5 in an earlier pair), Arrow's pool 42.2 MB
   (the frame) against 51.5; but the call's peak 194.0 and 196.6 MB against 198.7 and
   199.7 (195.9 against 196.0 in the earlier pair). The engine, which reused what
   ``prepare`` left free in Arrow's pool and pymalloc's arenas, now takes it from the
   system (+66 MB against +7 to +34); the peak is set at the merge by what is alive
   then. What ``prepare`` holds to the merge: the keys as ``str`` (17.6 MB: item 1),
   the groups' normalised text (10.8 MB), the rows' groups (1.6 MB). ``prepare`` alone:
   ``python benchmarks/prepare_cost.py`` (its docstring has the figures).
3. Done: the cache look-up (``cache_hits``) hashes and looks up the keys a chunk at a
   time, and does not ask an empty cache: 4.7 MB of short-lived objects at 200,000 keys
   (tracemalloc's peak) where it made 16 (the keys joined, an object array of them,
   their JSON).
4. The engine's landing without a dict per answer (a results page parsed straight into
   columns). ``Landed``'s status, error and cost source are no longer Python lists (a
   byte per result, errors only where there are some); its keys are (item 1). Done: its
   answers in fewer, larger Arrow blocks: ``Landed`` joins every 64 runs' blocks into
   one table (about 30, not 2,000 tables of 100 rows with their own arrays, buffers and
   schema: memray had 12 MB in 190,000 small allocations there), and the merge lets go of
   each field once it is a column (cheap over 30 blocks). Side by side with main
   (71d3775), this script three times each at loads of 4.5 to 10 on 2 CPUs: the call's
   peak 122.0, 122.7 and 123.2 MB (2.89x to 2.92x) against 141.7, 136.1 and 132.3 (3.13x
   to 3.36x); the engine 36 to 44 MB above planning's end against 50 to 55. Runs land
   out of order (at 20,000 rows, 9,700 rows' block rows were out of place): item 6.
5. Planning's and ``prepare``'s memory. Done: no key's text is made for the whole
   frame at once. The claims and the cache look-up take a ``KeyList`` (a frame's keys by
   group, ``claynb/pipeline/_keys.py``): the claims sort it and write each chunk's JSON
   from the 16-byte digests, the cache hashes their first 8 bytes, and only hits are
   made as text; unknown outcomes and failures are read whole from the state file and
   found among the groups. ``prepare`` keeps the frame's own Arrow text for an input
   that normalising left as it was (compared slice by slice; a copy from the first slice
   that differs): 200,000 e-mails' 9.2 MB copy is not made. Side by side with main
   (f9cc60f), this script at loads of 3 to 5 on 2 CPUs, four pairs: ``prepare`` ends at
   16.8 MB (24.5 once) against 26.7 to 26.9 (34.6), planning at 26.7 to 28.7 (peak the
   same) against 37.4 to 37.6 (peak 54.4 to 55.0), the engine at 64.6 to 70.0 against
   78.5 to 81.4, the finish's peak 70.1 to 75.5 against 83.7 to 85.6; the call's peak
   97.0, 102.0, 105.5 and 105.9 MB against 103.6 to 104.7 (the merge, now with a
   transient of up to 8 MB above its end: what the earlier phases no longer leave
   resident, it takes from the system). ``python benchmarks/enrich_overhead.py --rows
   200000``, three pairs: its RSS peak 92.7 to 94.8 MB against 99.6 to 106.4; CPU-s
   first run 8.5, 10.0, 9.7 against 7.9, 10.1, 10.2, cached re-run 0.82 to 0.85 against
   0.88 to 0.92, ``estimate`` 0.49 to 0.51 against 0.53 to 0.58. Planning alone, a
   first run (``plan_work`` and ``Claims.take`` after ``prepare``, timed by
   ``time.process_time`` in a throwaway script, twice each): 0.12 CPU-s against 0.25,
   ``prepare`` 0.14 against 0.17. memray's heap high-water over ``prepare``, planning
   and the engine (a ``memray.Tracker`` stopped as ``_finish`` starts): 42.9 MB, now in
   the engine (the cache's fold, the answers landing), against 56.9 at planning (the
   claims' key list 17.8 MB, the joined text 9.2).
6. Done: the output's field columns are the answers' own buffers. ``Landed`` joins its
   runs' blocks in group order (a block names its rows as spans; a run landed after a
   gap is held for the next join, at most half of them; as landed where a group is in
   two runs: the later row wins), and the merge makes a text field's column of slices of
   the answers' blocks where the frame's rows are at most 64 stretches of them, row
   after row (every row its own group: 32 chunks per column here), else takes it as
   before. The answers' text is widened to 64-bit offsets (pandas' Arrow text) at the
   finish, once the plan is let go of, not as runs land (4.8 MB through the engine);
   ``complete`` and ``put_landed`` read the landed columns as views; the status and
   cost-source text is built by the system's allocator (it reuses what the finish
   freed). Side by side with main (f9cc60f, before item 5), this script twice each at
   loads of 4.5 to 6.1 on 2 CPUs: the call's peak 88.8 and 86.7 MB (2.10x, 2.05x)
   against 103.7 and 113.3 (2.46x, 2.68x); the merge ends 1.3 and -0.1 MB above the
   finish's end against 35.5 and 35.0; ``python benchmarks/enrich_overhead.py --rows
   200000``, twice each at 3.2 to 5.3: the first run's RSS peak 83.2 and 81.0 MB (1.97x,
   1.92x) against 97.9 and 96.6, the first run 9.36 and 8.77 CPU-s against 9.63 and
   9.80, the cached re-run 0.94 and 0.96 against 0.95 and 0.91, the estimate 0.58 and
   0.56 against 0.56 and 0.56. Landing 2,000 runs of 100 into ``Landed`` alone: 0.39
   CPU-s against 0.42 (its join casts once per joined table, not per run); Arrow's
   struct inference for a run's dicts (``pa.array(dicts)``) was no faster than a column
   per field: not kept.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import psutil
import pyarrow as pa
from enrich_overhead import crm_frame, enrich_once, instant_emulator, scratch_home

#: The phases in the order a first run goes through them; ``returned`` is after the call.
PHASES = ("prepare", "planning", "engine", "finish", "merge", "returned")

#: tracemalloc's top lines printed per phase.
TOP_LINES = 8


@dataclass
class Mark:
    """The process at the start of a phase (``phase``), which is the end of the one before."""

    phase: str
    rss: int
    arrow: int
    traced: int = 0
    snapshot: tracemalloc.Snapshot | None = None


@dataclass
class PhaseMemory:
    """RSS at each phase's start and the peak while it ran, sampled on a thread.

    The thread reads the current phase and keeps the highest RSS per phase, so a peak
    that falls between two marks is still counted against the phase it happened in."""

    trace: bool
    proc: psutil.Process = field(default_factory=psutil.Process)
    marks: list[Mark] = field(default_factory=list)
    peaks: dict[str, int] = field(default_factory=dict)
    traced_peaks: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def mark(self, phase: str) -> None:
        """Phase ``phase`` starts now (a repeated phase, e.g. a second engine round,
        counts towards the same one)."""
        traced, snapshot = 0, None
        if self.trace:
            traced, peak = tracemalloc.get_traced_memory()
            if self.marks:
                ended = self.marks[-1].phase
                self.traced_peaks[ended] = max(self.traced_peaks.get(ended, 0), peak)
            snapshot = tracemalloc.take_snapshot()
            tracemalloc.reset_peak()
        rss = self.proc.memory_info().rss
        if self.marks:
            ended = self.marks[-1].phase
            self.peaks[ended] = max(self.peaks.get(ended, 0), rss)
        self.marks.append(Mark(phase, rss, pa.total_allocated_bytes(), traced, snapshot))

    def _sample(self) -> None:
        while not self._stop.is_set():
            rss = self.proc.memory_info().rss
            phase = self.marks[-1].phase
            self.peaks[phase] = max(self.peaks.get(phase, 0), rss)
            time.sleep(0.002)

    @contextlib.contextmanager
    def sampling(self) -> Iterator[PhaseMemory]:
        """Mark ``start``, sample while the block runs, mark ``returned`` after it."""
        self.mark("start")
        thread = threading.Thread(target=self._sample, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.mark("returned")
            self._stop.set()
            thread.join()
            self.mark("stopped")


def _marking(fn: Callable[..., Any], memory: PhaseMemory, phase: str, after: str) -> Any:
    """``fn``, marking ``phase`` as it is called and ``after`` as it returns."""

    def marked(*args: Any, **kwargs: Any) -> Any:
        memory.mark(phase)
        try:
            return fn(*args, **kwargs)
        finally:
            memory.mark(after)

    return marked


@contextlib.contextmanager
def _replaced(module: ModuleType, name: str, value: Any) -> Iterator[None]:
    original = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, original)


@contextlib.contextmanager
def phases_marked(memory: PhaseMemory) -> Iterator[None]:
    """Wrap ``claynb.pipeline._enrich``'s steps so that each marks its phase."""
    from claynb.pipeline import _enrich

    get_backend = _enrich.get_backend

    def marked_backend(name: str) -> Any:
        return _marking(get_backend(name), memory, "engine", "finish")

    with contextlib.ExitStack() as stack:
        for name, phase, after in (
            ("prepare", "prepare", "planning"),
            ("plan_work", "planning", "planning"),
            ("_finish", "finish", "merge"),
            ("merge", "merge", "merge"),
        ):
            wrapped = _marking(getattr(_enrich, name), memory, phase, after)
            stack.enter_context(_replaced(_enrich, name, wrapped))
        stack.enter_context(_replaced(_enrich, "get_backend", marked_backend))
        yield


def measure(rows: int, trace: bool) -> tuple[PhaseMemory, int, int]:
    """One first run of ``rows`` rows, its phases marked: the marks, the frame's bytes and
    the output frame's."""
    home = scratch_home()
    with instant_emulator() as (url, key):
        df = crm_frame(rows)
        frame_bytes = int(df.memory_usage(deep=True).sum())
        warm = df.head(500).assign(Email="warm." + df["Email"].head(500))
        enrich_once(warm, url, key, home)  # imports and the state file, before measuring
        gc.collect()
        if trace:
            tracemalloc.start()
        memory = PhaseMemory(trace)
        with phases_marked(memory), memory.sampling():
            out, _ = enrich_once(df, url, key, home)
        out_bytes = int(out.memory_usage(deep=True).sum())
        if trace:
            tracemalloc.stop()
    return memory, frame_bytes, out_bytes


def phase_ends(memory: PhaseMemory) -> dict[str, Mark]:
    """The last mark after each phase: where it ended (a phase marked more than once, such
    as ``planning`` or the engine's rounds, ends at its last mark)."""
    ends: dict[str, Mark] = {}
    for before, after in zip(memory.marks, memory.marks[1:], strict=False):
        ends[before.phase] = after
    return ends


def report(memory: PhaseMemory, frame_bytes: int, out_bytes: int, rows: int) -> None:
    base = memory.marks[0].rss
    load = psutil.getloadavg()
    print(
        f"enrich_phases: {rows:,} rows, a first run; load average "
        f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {psutil.cpu_count()} CPUs"
    )
    print(
        f"  frame {frame_bytes / 1e6:.1f} MB, output frame {out_bytes / 1e6:.1f} MB "
        f"(its new columns {(out_bytes - frame_bytes) / 1e6:.1f} MB); RSS above the call's start:"
    )
    header = f"  {'phase':9s} {'at its end':>11s} {'peak':>9s} {'x frame':>8s} {'arrow':>9s}"
    print(header + ("  Python alive / peak" if memory.trace else ""))
    ends = phase_ends(memory)
    for phase in PHASES:
        if phase not in ends:
            continue
        end, peak = ends[phase], memory.peaks.get(phase, 0) - base
        line = (
            f"  {phase:9s} {(end.rss - base) / 1e6:8.1f} MB {peak / 1e6:6.1f} MB "
            f"{peak / frame_bytes:7.2f}x {end.arrow / 1e6:6.1f} MB"
        )
        if memory.trace:
            traced_peak = memory.traced_peaks.get(phase, 0)
            line += f"  {end.traced / 1e6:6.1f} / {traced_peak / 1e6:6.1f} MB"
        print(line)
    top = max(memory.peaks.values()) - base
    print(f"  the call's peak: {top / 1e6:.1f} MB = {top / frame_bytes:.2f}x the frame")
    if memory.trace:
        for phase, end in ends.items():
            if phase in PHASES and end.snapshot is not None:
                print_top(phase, end.snapshot)


def print_top(phase: str, snapshot: tracemalloc.Snapshot) -> None:
    """tracemalloc's lines holding most at the end of ``phase``."""
    stats = snapshot.statistics("lineno")
    print(
        f"  --- Python allocations alive as {phase} ends: {sum(s.size for s in stats) / 1e6:.1f} MB"
    )
    for stat in stats[:TOP_LINES]:
        frame = stat.traceback[0]
        where = "/".join(frame.filename.split("/")[-2:])
        print(f"    {stat.size / 1e6:6.2f} MB {stat.count:8,d}  {where}:{frame.lineno}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--trace", action="store_true", help="also count Python allocations")
    args = parser.parse_args()
    memory, frame_bytes, out_bytes = measure(args.rows, args.trace)
    report(memory, frame_bytes, out_bytes, args.rows)


if __name__ == "__main__":
    main()
