"""claynb's own overhead: 200,000 rows through enrich against an instant, unlimited emulator.

    python benchmarks/enrich_overhead.py [--rows 200000] [--prefill 2000000] [--tracemalloc]

The emulator runs in a separate process (zero run latency, no rate limit, meters large
enough never to run out), so what is measured is claynb: normalising, de-duplicating,
journaling, sending 2,000 runs of 100 over loopback HTTP, polling, caching, the ledger
and merging back into a frame. The frame is a CRM export shape (ten text columns).

Three calls on the same frame, each as rows per CPU-second of this (the enriching)
process, which a busy machine does not distort the way it does the wall clock: a first
run (every row sent; target >= 20,000), a cached re-run (every row from the cache;
target >= 150,000) and ``estimate`` (sends nothing; target >= 150,000). Peak memory of
the first run is the process's resident memory (RSS, sampled every 5 ms) above what it
was before the call, as a multiple of the frame's ``memory_usage(deep=True)`` (target
<= 2x). ``--prefill N`` first writes N other answers into the cache, so the cached
re-run and the estimate look rows up in a cache of N + rows. ``--tracemalloc`` adds a
second first run measured with tracemalloc (Python allocations only; much slower).

What the profile showed (cProfile, 20,000 rows, before the per-row work was changed;
``python -m cProfile -s tottime`` on the same three calls), by own time:

- first run (about 5,500 rows per CPU-second): the wire, not claynb's rows. Socket
  sends and connection bookkeeping of httpx/anyio (getpeername, is_idle, close: one
  spending POST per run on a fresh connection, so a run is never re-sent on a reused
  socket that died), JSON encoding of 2,000 request bodies and decoding of the answers
  (``parse_item`` per item), the journal's transactions (one per run, each a few
  statements), ``check_items`` per run, and the per-row list comprehensions of the merge.
- cached re-run (about 27,000) and estimate (about 34,000): the per-row Python work:
  ``cache_get`` (a ``json.loads`` per cached answer), ``item_key`` (a ``json.dumps``
  and a hash per unique row), ``normalise_value`` (NA checks per distinct value),
  ``validate_inputs`` (a regex per row), an ``ItemResult`` per cached row in
  ``plan_work``, and the merge fanning per-group lists out to rows.

Changed since: item keys are written as JSON directly (the same bytes), text is
normalised without per-value NA checks, cached answers are parsed in one JSON call per
chunk. Then (issue 13) planning and merging became columnar: ``prepare`` keeps an array
per input and a key and a reason per group, checks each input once per distinct value
and builds the keys column by column; ``plan_work`` answers groups in ``Answers`` (an
array per status, error, cost and result, a slot per group) instead of an ``ItemResult``
per row, reading cached answers as columns (one indexed query per 500 keys);
``estimate`` reads only which keys are cached (the index, not the answers); ``merge``
builds each output column once over the groups and takes it out to the rows; landing a
run encodes its answers with one JSON encoder instead of one per answer.

Then (issue 13, answers as columns) the cache is keyed by an INTEGER rowid (64 bits of
the item key, the routine mixed in, every hit checked against the full key; older state
files are migrated), a bulk look-up sends 20,000 hashes as one JSON array and SQLite
answers with one newline-delimited JSON text (``group_concat``), which ``pyarrow.json``
parses into columns; the merge takes flat fields straight from those Arrow arrays; and the
direct tier takes each run's results into columns as it lands (``Landed``) instead of
handing back an ``ItemResult`` and a dict per row.

What the profile shows now (CPU time: ``time.process_time`` around the steps, and
``cProfile.Profile(time.process_time)``; 200,000 rows; figures vary by 10 to 20% with the
load other processes put on the machine):

- cached re-run (about 0.9 CPU-s, was 2.3 to 3.0; about 220,000 rows per CPU-second):
  ``prepare``, about 0.2 s (below); planning, about 0.6 s, of which the cache look-up is
  SQLite finding the rows and writing their text, about 0.28 s, and Arrow parsing it,
  about 0.22 s (about 1 microsecond a row each); the merge, about 0.1 s. Side by side at
  a load of 1.4 to 1.6 on 2 CPUs: 0.90 CPU-s, and 2.39 before this change. With
  ``--prefill 2000000`` (2.2 million answers in the cache), side by side at a load of 1.3:
  1.03 CPU-s (194,000 rows per CPU-second), and 2.64 before. The rows sit on ten times as
  many pages, and reading them through SQLite's small page cache adds 0.1 to 0.3 s of
  system time (``PRAGMA mmap_size`` took most of that back in a trial; not set). What
  is left is per row in C (SQLite, Arrow's JSON parser) and ``prepare``'s hash per
  distinct row.
- estimate (0.63 CPU-s, 0.92 before, side by side; 0.74 and 1.16 with the 2.2 million):
  ``prepare`` and reading which keys are cached (the same query without the answers).
- ``prepare`` alone (``cProfile.Profile(time.process_time)`` and ``time.process_time``
  around it, 200,000 distinct e-mails): 0.45 CPU-s when each distinct value was
  lower-cased, checked by ``re`` and keyed by a ``json.dumps``-like string in Python; now
  about 0.2 (0.18 to 0.23 at a load of 3 on 2 CPUs). Arrow's kernels normalise the column
  (3 ms), a dictionary encoding finds the distinct values (25 ms; now Arrow's sort,
  about 10 ms here and 50 to 70 ms for the same e-mails in a random order: see the
  memory paragraph), RE2 checks them (20
  ms), the keys' JSON is one concatenation of columns (15 ms); what is left is the sha256
  of each key, about 0.1 s, one ``hashlib`` call per distinct row (the floor without a
  compiled hash over a column). With duplicates it is proportionally less: 200,000 rows
  of 48,000 distinct messy values (NA, blanks, mixed case, ``mailto:``, invalid) take
  0.06 CPU-s, was 0.20.
- first run (was about 24 CPU-s; now about 17, 11,500 rows per CPU-second, target 20,000;
  side by side, load average 2 on 2 CPUs: 23.9 and 25.1 CPU-s before, 17.5 and 16.9
  after). Changed: a results page is parsed once (it was parsed twice), with orjson, and
  its items taken as parsed; run bodies are encoded with orjson and built once by the
  direct tier (``RunItems``: not copied and checked again by ``check_items``); the
  outcomes of a run are mapped in one
  pass, estimates priced once a run; 8 requests open at once, not 16 (httpcore re-checks
  every idle pooled connection, a ``getpeername`` and a ``poll`` each, on every request:
  10% of the CPU); the cycle collector's thresholds raised while the engine runs (its
  full collections re-walked every answer alive: a tenth of the CPU at 100,000 rows);
  ``started`` in one statement; the cache's and the journal's JSON with orjson; the
  write-ahead log checkpointed every 8,000 pages, not 1,000. What is left, per run of 100
  (about 8.5 ms; sampled with py-spy at 50,000 rows, the loop thread's CPU by
  ``time.thread_time``): httpx, httpcore, anyio and h11, a third of it: two requests, a
  new connection for every spending POST (set-up and close, 6%: kept so, so a run is
  never sent on a pooled connection the server may be closing), reading bodies through
  four stream layers (7%), the pool's bookkeeping (5%), the cookie jar (2%). A bare
  sequence of POST and GET through ``AsyncClayClient`` costs 4 to 4.8 ms a run here
  (3.6 to 3.9 with the POST on a kept-alive connection), most of the 5 ms a run the
  target allows. Landing the run (``Journal.finished``, on a worker thread, a fifth of the
  CPU): 1.4 to 1.8 ms, of which the answers' JSON and inserts 0.5 ms and the commit the
  rest (the WAL gets the hundred or so pages the run's keys fall on: of the cache's
  unique index then, of the cache's rows now that they are keyed by a hash). claynb's
  own Python per run (outcomes, parsing, building requests, the engine's bookkeeping) is
  about 12%; ``prepare`` and planning 6%, the merge 5%. 20,000 needs a lighter HTTP stack
  than httpx's (about 1.5 ms of Python a request), not more trimming of claynb's own
  per-row code. Taking each run's answers into Arrow columns as it lands adds about
  0.15 ms a run of 100. With ``--prefill 2000000``, side by side
  at a load of 1.3: 18.6 CPU-s, and 20.3 before this change. The cache's rows are keyed
  by a hash now, so an insert rewrites a random page of whole rows (about 15 a page)
  where the unique index took a small entry: inserts alone, 100,000 in runs of 100 into 2
  million rows, took 2.9 to 4.8 CPU-s against 2.2 to 2.8 in a micro-benchmark, and a pair
  of first runs measured before the write-ahead log's larger checkpoints 27.5 against
  23.3; with them, the difference is lost in the run's noise.
- landing a run (issue 13, after the above): a run's answers are appended to an inbox
  in the state file and folded into the hash-keyed cache in key order when the call ends
  (:mod:`claynb.pipeline._cache`), so a commit writes a few pages, not a hundred random
  ones. ``benchmarks/landing_cost.py`` (2,000 landings of 100 alone, fold included): 2.8
  to 3.0 ms a run before, 0.92 to 0.96 after, with 200,000 answers in the cache; 3.2 and
  1.8 with 2 million. Here, side by side with main (each pair in the same minutes): the
  first run took 20.1 and 21.3 CPU-s before, 15.9 and 18.0 after (load 3 to 4.8 on 2
  CPUs: 12,600 and 11,100 rows per CPU-second); with ``--prefill 2000000``, 23.8 before
  and 19.7 after (load 4.5 to 5, tests running beside it). The cached re-run and the
  estimate are unchanged (0.92 and 0.61 CPU-s after, 0.91 and 0.63 before, same pair).
  Again after the items to send became columns, at a load of 6 to 10 on 2 CPUs: first run
  18.8 CPU-s against 20.8 (landing alone: 1.10 ms a run against 3.02).
- the wire (issue 13): ``AsyncClayClient`` sends through aiohttp (``claynb/wire/_aio.py``; the
  sync client stays on httpx). A run's POST and its results' GET through the client, 300
  pairs against this benchmark's emulator (``time.process_time``, the lead's
  ``mb_wire.py``): 2.2 to 2.3 ms of CPU, 4.4 before, side by side at a load of 2.4 to 4
  on 2 CPUs; the same pair on bare aiohttp 1.2 to 1.7. The first run, side by
  side with main before the landing change above (aiohttp, httpx, aiohttp, httpx at loads
  of 4 to 5.7 on 2 CPUs): 17.3 and 17.1 CPU-s (11,600 rows per CPU-second), 21.7 and 21.7
  on httpx; after it, side by side with main again (loads of 1.9 to 3 on 2 CPUs): 11.1
  and 10.5 CPU-s (18,000 and 19,100 rows per CPU-second), 15.0 and 16.8 on httpx.
  aiohttp with ``trust_env`` took two worker-thread trips per request (the proxy, ``.netrc``): 3.9 ms a pair with them; the
  environment is read once instead (``env_names_a_proxy``). Building the
  core's ``httpx.Request`` (about 45 us) and wrapping the answer as an ``httpx.Response``
  (about 13 us) is about 0.1 ms a run: too little to give the core another type of
  request and answer. What was left of the 8.6 ms a run before the landing change
  (cProfile by thread CPU time at 30,000 rows): aiohttp about a tenth, landing the run (``Journal.finished``: SQLite,
  ``fields_of``, ``outcomes_of``) about a quarter, parsing results pages (``parse_item``)
  and the engine's bookkeeping: the wire is no longer most of it.
- first run, the state file (issue 13 item 2). Thread CPU around the journal's methods
  and each SQLite statement (a first run of 200,000 rows, 11.4 CPU-s at a load of 3):
  landing the runs (``Journal.finished``) 2.3, of which the fold of the 200,000 answers
  0.7 (sorting 42 MB of rows and writing them again: what the inbox costs), inserting
  them into the inbox 0.4 and the commits 0.5; ``intent`` and ``started`` 0.35 and 0.4
  (mostly their commits); the claims 0.3; in another run system time was 2.0 of 11.8 CPU-s (``strace``: about
  130 ``pwrite`` a run of 100, most of them the write-ahead log's frames). Changed: new
  state files have 16 KB pages (``claynb._sqlite.PAGE_SIZE``): a run's intent, start
  and landing wrote 27 frames of 4 KB, now about 14, and the fold sorts and writes a
  quarter as many pages; an answer's status is bound as plain ``str`` (:mod:`sqlite3`
  looks a ``str`` subclass up among its adapters first: a quarter of the inbox's
  inserts); the claims go in as one JSON array per 20,000 keys (``json_each``), 0.2
  CPU-s against 0.43 a row at a time; a landing tallies its results in one pass and asks
  its three questions in one statement. Journaling 2,000 runs of 100 alone (intent,
  started, finished, the fold, the close; ``time.process_time``): 1.57 to 1.62 CPU-s
  against 1.91 to 2.01; into a cache of 2 million answers 2.88 against 4.01.
  ``python benchmarks/landing_cost.py`` side by side with main, two pairs at loads of 3.1
  to 4.4: 0.80 and 0.80 ms a run against 0.94 and 0.94. The first
  run, 16 KB pages against 4 KB with everything else the same, three pairs at loads of
  2.3 to 3.3 on 2 CPUs: 8.95, 8.71 and 8.60 CPU-s against 9.41, 9.22 and 9.31 (system
  time 1.45 against 1.68). This script side by side with main (4887669), loads of 1.6 to
  2.2: 9.10 and 8.93 CPU-s against 9.29 and 9.27 (21,978 and 22,396 rows per
  CPU-second); cached re-run 1.01 and 0.94 against 0.91 and 0.87, estimate 0.57 and 0.56
  against 0.59 and 0.53 (within the noise of a second run at these loads: 0.82 to 1.13
  in one process). Two more pairs at loads of 4.3 to 7.4 (tests running beside them):
  10.87 and 10.68 CPU-s against 11.09 and 9.56: at that load the noise is larger than
  the change. Planning's cache look-up (``cache_hits``) hashes and looks up the keys
  a chunk at a time and does not ask an empty cache: 4.7 MB of short-lived objects
  (tracemalloc's peak) against 16.0 for 200,000 keys, and 0.06 CPU-s against 0.10;
  ``enrich_phases`` planning's peak +14.3 MB above ``prepare``'s end against +18.7
  (same pair). What is left of the state file's share is SQLite's own work on this
  layout: the fold (every answer written twice, to the inbox and to the cache) and a
  commit per step of a run (the crash window needs all three).
- memory (then about 4.5x the frame). Side by side at a load of 2.4
  on 2 CPUs: 187.4 MB = 4.44x against 315.4 MB = 7.47x before (at a load of 10: 4.53x
  against 7.69x; issue 13 item 2; it was
  9.4 to 9.6x before the planning and merging became columnar). The RSS a phase frees
  mostly stays resident (pymalloc's arenas, Arrow's mimalloc pool), so the peak is close
  to the sum of the phases' high-water marks, and each phase was cut: the items to send
  are columns (``WorkItems``: their keys, their groups and the prepared Arrow text; a
  run's inputs are made when it is sent), not a ``WorkItem``, an inputs dict and Python
  text per row held from planning to the merge; the direct engine keeps a row's state
  (which rows are this call's, which have landed, how many POSTs each rode in) in arrays
  by group, not dicts and sets of keys; ``prepare`` normalises a column 16,384 rows at a
  time; planning picks keys by masks. By phase at 200,000 rows (RSS above the call's
  start, MB, read between the steps; one run): ``prepare`` 88 to 98 (2.1 to 2.3x:
  Arrow's dictionary encoding peaks 38 MB above the frame, every key is a 32-character
  ``str``, 16 MB), planning +30 (the cache look-up's 16 MB of transient Python objects),
  the engine +15 (was +78: the answers as Arrow columns, 24 MB, and what the runs in
  flight hold), the merge +47 (the output's new columns are 41.7 MB: 1x the frame by
  themselves). ``python benchmarks/enrich_phases.py`` prints this table (``--trace``:
  with the Python lines holding most at each phase's end); its docstring lists what was
  tried and did not pay, and what is left in order of size. At merge time, at 50,000
  rows, tracemalloc counted 15 MB of Python allocations (was 35): the keys as ``str`` (4
  MB) and the key -> group dict (3.3 MB) were most of it.
- memory, the key -> group dict (issue 13 item 2): gone. The direct engine's batches
  carry their rows' groups (cut from a queue of groups, their keys made as the batch is
  made), so sending, re-queueing, failing and landing a run index arrays by group and
  look no key up (it looked a run's keys up five or six times); the keys that come back
  from outside (a resumed run's from the journal, keys other calls held, a backend's
  results at the finish) are looked up a list at a time against the keys' 16 bytes
  sorted (``KeyIndex`` in ``claynb/pipeline/_keys.py``, 4.8 MB, built on first use: in
  a first run, at the finish). Side by side with main (b354ca6), 200,000 rows, this
  script, four pairs at loads of 3.9 to 6.1 on 2 CPUs: the first run's RSS peak 174.8,
  179.0, 177.3 and 174.9 MB (4.14 to 4.24x) against 191.5, 188.4, 192.2 and 193.9 (4.46
  to 4.59x); its CPU 9.74, 11.49, 11.36 and 11.03 CPU-s against 10.11, 10.12, 12.56 and
  12.43 (10.9 against 11.3 on average: not worse, and within the noise). Measured
  alone (``time.process_time``, best of 3), a first run's look-ups at 200,000 rows cost
  about 90 ms now (the index built, 36 ms; two look-ups of every key at the finish, 27
  ms each) against about 175 (the dict built, 27 ms; six look-ups of each run's 100 keys,
  74 ms in all; two at the finish, 37 ms each). The cached re-run and the estimate are unchanged (0.83 to 1.00 and 0.55 to
  0.62 CPU-s against 0.90 to 0.99 and 0.58 to 0.61). Then the engine sums a run's
  results' cost once, with ``Cost.total`` (it summed them twice through ``Cost.__add__``,
  a Cost made per result: 47 microseconds a run each, now 7): two more pairs, at loads of
  6.2 to 8.7, 11.85 and 12.70 CPU-s against 11.65 and 13.11 (peak 177.1 and 178.2 MB
  against 191.9 and 186.0). The keys themselves are still a
  32-character ``str`` each (16.2 MB at 200,000 rows), held by ``Prepared.keys`` and,
  the same objects, by ``Landed.keys`` until the finish: made a run at a time from 16
  bytes each, they would be as many by the engine's end (``Landed`` keeps each result's
  key), so that pays only once ``Landed`` keeps something else (the direct engine knows
  each result's group).
- memory, ``prepare`` (issue 13 item 2): its distinct values are found without the dictionary encoding (Arrow's
  sort where they hold many bytes; the normalised column joined a slice at a time into
  one column, no second copy; the keys' JSON a chunk at a time): ``prepare`` alone
  (``python benchmarks/prepare_cost.py``, side by side with main at loads of 6 to 8 on
  2 CPUs) peaks at 46 to 51 MB against 107, Arrow's own peak 3.2 MB against 38.2, with
  the same CPU (0.16 to 0.17 s) on this frame; 0.20 to 0.21 against 0.17 to 0.18 with
  its rows in a random order (the sort). In the call (``enrich_phases``, three pairs at
  loads of 4 to 10) ``prepare`` ends at 43 to 45 MB against 81 to 103, but the call's
  peak did not move (194.0 to 196.6 MB against 196.0 to 199.7; here 191.8 against
  192.2, 4.54x and 4.55x, load 4.8): the engine now takes from the system what it
  reused from ``prepare``'s leftovers. The cached re-run and the estimate are unchanged
  (0.98 and 0.65 CPU-s against 1.00 and 0.64, same pair).
- memory, the merge (issue 13 item 2): it was the call's peak (+47 MB above the engine's
  end; the output's new columns alone are 1x the frame). ``_finish`` now lets go of all
  that the merge does not read before the output is built (the plan's item keys, its key
  index and normalised inputs, the landed results), and of the answers' fields once they
  are columns, so the output's columns reuse their memory; ``Landed`` keeps a status and
  a cost source as a byte per result and an error only where there is one; the status
  columns go to Arrow without a Python list per row; the input's columns are shared with
  the output (copy-on-write), the new ones are not copied on the way in. Side by side with
  main (4887669), this benchmark twice each at loads of 1.8 to 2.3 on 2 CPUs: the first
  run's RSS peak 135.0 and 135.8 MB (3.20x and 3.22x) against 172.5 and 172.3 (4.09x and
  4.08x); the first run 8.64 and 8.83 CPU-s against 8.87 and 8.92; the cached re-run 0.88
  and 0.87 against 0.89 and 0.87; the estimate 0.54 and 0.55 against 0.53 and 0.55.
  ``_finish`` alone: 0.30 and 0.36 CPU-s against 0.54 and 0.56 (a first run; it now also
  frees the plan, which main frees after the call). By phase: ``enrich_phases``.
- memory, the answers' blocks (issue 13 item 2): ``Landed`` joins every 64 runs' field
  blocks into one table (about 30 tables at 200,000 rows, not 2,000), and the merge lets
  go of each field once it is a column. Side by side with main (71d3775), this benchmark
  twice each at loads of 5.4 to 13 on 2 CPUs: the first run's RSS peak 107.6 and 114.4 MB
  (2.55x and 2.71x) against 131.7 and 124.7 (3.12x and 2.95x); the first run 9.45 and
  10.26 CPU-s against 10.40 and 10.94; the cached re-run 0.83 and 0.98 against 0.95 and
  0.87; the estimate 0.55 and 0.60 against 0.59 and 0.57 (at such loads, noise).
- memory, the keys as 16 bytes (issue 13 item 2): ``FrameKeys`` holds each group's key
  as its 16 bytes from ``prepare`` on and makes their text a list at a time; ``Landed``
  keeps each result's group, not its key. Side by side with main (4990c12), this script
  at 200,000 rows at a load of 1.3 to 1.6 on 2 CPUs: the first run's RSS peak 105.3 MB
  (2.49x) against 108.5 (2.57x); the first run 9.12 CPU-s against 10.22; the cached
  re-run 0.87 against 0.98; the estimate 0.55 against 0.61. Against main before the
  answers' blocks were joined (71d3775), three pairs: at loads of 9.4 to 14.1, 119.3
  and 121.2 MB against 131.4 and 133.6; at 1.2 to 1.3, 119.0 against 117.7 (no lower:
  ``enrich_phases``, item 1, says why); the first run 10.35, 10.53 and 8.72 CPU-s
  against 10.41, 9.53 and 10.29; the cached re-run 1.09, 1.06 and 0.95 against 0.94,
  0.91 and 0.89 and the estimate 0.65, 0.70 and 0.70 against 0.60, 0.56 and 0.61 (the
  keys made as text in planning cost about 35 ms at 200,000; under ``cProfile``, one
  estimate each at a load of 1.2: 0.64 against 0.69 s). Planning makes them 100,000 at
  a time: 32,768 at a time read the cache less in order (0.07 CPU-s more).
- first run, landing (issue 13 item 2, the first run's CPU). Where it went (thread CPU
  around the journal's methods and each ``BEGIN``/``COMMIT``, one first run of 200,000
  at a load of 3, 8.5 CPU-s): landing the runs on the worker thread 1.9 (the inbox's
  inserts 0.5, the fold 0.55, 2,000 commits 0.48), ``intent`` and ``started`` on the loop
  0.39 and 0.27 (their commits 0.32); the rest the wire (a run's POST and GET, 1.4 to 1.6
  ms of CPU against 0.9 to 1.1 on bare aiohttp, spread over many small steps: building
  an ``httpx.Request`` about 35 us, an ``httpx.Response`` 13 us, aiohttp's session
  settings nothing measurable), the cycle collector (0.3), and per-row Python of the
  columns (``Landed.add``, ``WorkItems.inputs``). Changed: the direct tier lands the
  runs that finish within 20 ms of each other in one transaction
  (``claynb/direct/_landing.py``, ``Journal.finished_runs``; at most 16, all or none, a
  refused group landed run by run): 137 to 151 commits instead of 2,000, landing 1.3
  CPU-s on the worker thread (its commits 0.22); ``outcomes_of`` binds its look-ups once
  (54 to 73 us a run of 100 against 72 to 86), and the engine names only the rows sent
  more than once instead of a dict of every row per run. This script side by side with
  main (dc62279), two pairs at loads of 2.7 to 3.1 on 2 CPUs: the first run 9.07 and 8.46
  CPU-s against 9.54 and 10.60 (22,051 and 23,641 rows per CPU-second against 20,964 and
  18,868), its wall clock 18.8 and 18.0 s against 19.0 and 20.8; RSS peak 91.8 and 89.1
  MB against 95.2 and 96.0; cached re-run 0.85 and 0.86 against 0.88 and 1.24; estimate
  0.51 and 0.52 against 0.51 and 0.69. Two more pairs at loads of 2.3 to 2.6: 7.87 and
  8.61 CPU-s against 8.64 and 9.16 (wall 14.2 and 19.3 s against 16.1 and 20.3; RSS peak
  91.7 and 98.2 MB against 86.7 and 97.1): over the four, 8.50 CPU-s against 9.49 on
  average, a tenth less. With a 50 ms window, against f9cc60f and dc62279,
  four pairs at loads of 2.9 to 4.1: 9.18, 8.25, 9.20 and 9.64 CPU-s against 9.93, 9.59,
  9.66 and 10.91, but the wall clock 1.2 to 4.6 s longer (runs waiting to land hold
  their slots). (An engine and its landings in a reference cycle kept the engine's
  arrays alive through the merge until a full collection: 127 MB; nothing of the
  engine's is held by the landings now.) Tried
  and not kept: landing on the loop thread, no worker-thread trip (three pairs at loads
  of 2.7 to 4.8: 9.77, 9.77, 10.46 CPU-s against 9.57, 9.27, 10.64); the inbox's inserts
  as one JSON array through ``json_each`` (266 to 311 us a run against 173 to 182 for
  ``executemany``); the fold with a 16 or 64 MB page cache (0.48 and 0.54 CPU-s against
  0.42, and more resident), or sorting only the keys and reading the rows by ``seq``
  (1.85); groups of 32 (the wall clock 27 s against 17: runs waiting to land hold their
  slots).
- first run, the fold with a cache of millions (issue 13 item 2). The cache held whole
  rows keyed by the 64-bit hash, so 200,000 answers with random hashes fell on nearly
  every leaf page of a cache of 2.2 million and the fold rewrote all of it (about 460 MB)
  through the write-ahead log. Now the answers stay where they landed
  (``cache_answers``, appended) and the cache is an index from hash to ``seq`` (about 20
  bytes an entry): a fold writes index pages and copies no row (``claynb/pipeline/_cache.py``;
  older state files are migrated when opened). The fold alone (``_cache.fold`` wrapped
  with psutil's CPU times, one first run of 200,000 after ``prefill``), side by side with
  main (c2a6c91; 6e2b4f6 has the same claynb code) at loads of 3.5 to 5: with the 2.2
  million, 0.24 CPU-s (user 0.18, system 0.06) against 0.95 (0.36, 0.59), that first run
  6.99 CPU-s against 8.58; with an empty cache, 0.16 against 0.44, the first run 6.98
  against 7.60. This script side by side with main, two pairs without ``--prefill`` at
  loads of 2.8 to 3.4: first run 8.06 and 8.67 CPU-s against 8.88 and 8.44, cached
  re-run 0.79 and 0.92 against 0.92 and 0.91, estimate 0.50 and 0.53 against 0.51 and
  0.59; two pairs with ``--prefill 2000000`` (loads 4.9 to 7.4, then 2.1 to 2.8): first
  run 8.52 and 8.62 against 10.10 and 10.10 (about 23,300 rows per CPU-second against
  19,800), cached re-run 0.97 and 0.92 against 0.96 and 1.03, estimate 0.75 (at a load
  of 7.4) and 0.53 against 0.57 and 0.58. The look-up alone (``cache_hits`` of 200,000
  cached keys among 2.2 million, twice each): 0.42 CPU-s against 0.52 with the answers,
  0.30 against 0.40 to 0.42 for which are cached (the estimate's). A cached look-up is
  now two: the index, in the order of the hashes (one ``seq`` or -1 per hash asked, as
  text numpy parses: positions and ``seq`` as JSON pairs parsed by orjson cost 0.11
  CPU-s for 200,000 against 0.08, and a cached re-run 0.94 to 1.00 against main's 0.84
  to 0.94), then the answers in the order they were written.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import multiprocessing as mp
import shutil
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pandas as pd
import psutil

TARGET_FIRST_PER_CPU_S = 20_000
TARGET_CACHED_PER_CPU_S = 150_000
TARGET_MEMORY_RATIO = 2.0


def serve(conn: Any, stop: Any) -> None:
    """Child process: an instant emulator with meters that never run out."""
    import claynb

    unlimited = claynb.Plan("unlimited", 0.0, 10**12, 10**12)
    emu = claynb.Emulator(plan=unlimited, run_latency_s=0, rate_limit_rps=None)
    emu.start()
    conn.send((emu.url, emu.api_key))
    stop.wait()
    emu.stop()


def scratch_home(prefix: str = "claynb-bench-") -> str:
    """A new, empty ``CLAYNB_HOME`` for one measurement, removed when the script exits: a
    state file with ``--prefill 2000000`` is about half a GB, and runs add up."""
    home = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    return home


@contextlib.contextmanager
def instant_emulator() -> Iterator[tuple[str, str]]:
    """:func:`serve` in a child process (its CPU is not the enriching process's): its URL and
    key while the block runs, stopped after."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    stop = ctx.Event()
    server = ctx.Process(target=serve, args=(child, stop), daemon=True)
    server.start()
    try:
        yield parent.recv()
    finally:
        stop.set()
        server.join(30)


def crm_frame(rows: int) -> pd.DataFrame:
    """A CRM export's shape: ten text columns, every email distinct."""
    sources = ["Webinar", "Inbound", "Event", "Partner", "Outbound"]
    statuses = ["New", "Working", "Nurture", "Qualified"]
    titles = ["VP Sales", "Head of RevOps", "Growth Lead", "CTO", "Data Engineer"]
    countries = ["US", "GB", "DE", "FR", "CA", "NL"]
    return pd.DataFrame(
        {
            "Lead ID": [f"L-{i:07d}" for i in range(rows)],
            "Name": [f"Person{i} Surname{i % 997}" for i in range(rows)],
            "Email": [f"person{i}.surname{i % 997}@company{i % 5000}.com" for i in range(rows)],
            "Company": [f"Company {i % 5000}" for i in range(rows)],
            "Domain": [f"company{i % 5000}.com" for i in range(rows)],
            "Title": [titles[i % 5] for i in range(rows)],
            "Country": [countries[i % 6] for i in range(rows)],
            "Lead Source": [sources[i % 5] for i in range(rows)],
            "Lead Status": [statuses[i % 4] for i in range(rows)],
            "Created": [f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(rows)],
        }
    )


class RssPeak:
    """Samples this process's resident memory on a thread; the peak above the start."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.base = self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.005)

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)

    @property
    def delta(self) -> int:
        return self.peak - self.base


def enrich_once(df: pd.DataFrame, url: str, key: str, home: str) -> tuple[pd.DataFrame, float]:
    import claynb

    client = claynb.ClayClient(api_key=key, base_url=url)
    start = time.perf_counter()
    out = claynb.enrich(
        df, "enrich-person", {"email": "Email"}, client=client, progress=False, home=home
    )
    return out, time.perf_counter() - start


def cpu_seconds(fn: Any) -> tuple[Any, float]:
    """``fn()`` and the CPU seconds this process spent on it."""
    before = psutil.Process().cpu_times()
    value = fn()
    after = psutil.Process().cpu_times()
    return value, (after.user + after.system) - (before.user + before.system)


def prefill(home: str, rows: int) -> float:
    """Write ``rows`` other answers into the cache under ``home``; the seconds it took."""
    from claynb.pipeline._cache import cache_put
    from claynb.pipeline._journal import Journal
    from claynb.pipeline._work import item_key

    start = time.perf_counter()
    with Journal.open(home) as journal:
        for lo in range(0, rows, 100_000):
            answers = [
                (
                    item_key("enrich-person", {"email": f"other{i}@prefill{i % 977}.io"}),
                    "enriched",
                    {"full_name": f"Other {i}", "title": "VP Sales", "company": "Prefill"},
                )
                for i in range(lo, min(rows, lo + 100_000))
            ]
            with journal.transaction() as conn:
                cache_put(conn, "enrich-person", answers, now=time.time())
    return time.perf_counter() - start


def verdict(value: float, target: float, higher: bool = True) -> str:
    return "met" if (value >= target if higher else value <= target) else "MISSED"


def main() -> None:
    import claynb

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--prefill", type=int, default=0, help="answers in the cache first")
    parser.add_argument(
        "--tracemalloc", action="store_true", help="also measure a first run with tracemalloc"
    )
    args = parser.parse_args()

    home = scratch_home()
    with instant_emulator() as (url, key):
        filled = prefill(home, args.prefill) if args.prefill else 0.0
        df = crm_frame(args.rows)
        frame_bytes = int(df.memory_usage(deep=True).sum())
        enrich_once(df.head(500).assign(Email="warm." + df["Email"].head(500)), url, key, home)

        with RssPeak() as rss:
            (out, seconds), first_cpu = cpu_seconds(lambda: enrich_once(df, url, key, home))
        statuses = out["clay_status"].value_counts().to_dict()
        del out
        (again, _), cached_cpu = cpu_seconds(lambda: enrich_once(df, url, key, home))
        cached_statuses = again["clay_status"].value_counts().to_dict()
        del again
        est, estimate_cpu = cpu_seconds(
            lambda: claynb.estimate(df, "enrich-person", {"email": "Email"}, home=home)
        )

        traced_peak = None
        if args.tracemalloc:
            tracemalloc.start()
            enrich_once(df, url, key, scratch_home())
            _, traced_peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()

    load = psutil.getloadavg()[0]
    print(
        f"enrich_overhead: {args.rows:,} rows, enrich-person, emulator in another process "
        f"(zero latency, unlimited); load average {load:.1f} on {psutil.cpu_count()} CPUs"
    )
    if args.prefill:
        print(f"  cache pre-filled with {args.prefill:,} other answers in {filled:.0f} s")
    print(f"  first run statuses: {statuses}; re-run: {cached_statuses}")
    print(f"  estimate: {est.rows:,} rows, {est.cached:,} cached, {est.to_send:,} to send")
    print(f"  input frame memory_usage(deep=True): {frame_bytes / 1e6:.1f} MB")
    print(f"  first run wall clock: {seconds:.1f} s = {args.rows / seconds:,.0f} rows/s")
    for name, cpu, target in (
        ("first run", first_cpu, TARGET_FIRST_PER_CPU_S),
        ("cached re-run", cached_cpu, TARGET_CACHED_PER_CPU_S),
        ("estimate", estimate_cpu, TARGET_CACHED_PER_CPU_S),
    ):
        rate = args.rows / cpu
        print(
            f"  {name}: {cpu:.2f} CPU-s = {rate:,.0f} rows per CPU-second "
            f"(target >= {target:,}: {verdict(rate, target)})"
        )
    measured = [("RSS peak above the start of the first run", rss.delta)]
    if traced_peak is not None:
        measured.append(("tracemalloc peak (Python allocations, first run)", traced_peak))
    for name, peak in measured:
        ratio = peak / frame_bytes
        print(
            f"  {name}: {peak / 1e6:.1f} MB = {ratio:.2f}x the frame "
            f"(target <= {TARGET_MEMORY_RATIO:g}x: {verdict(ratio, TARGET_MEMORY_RATIO, False)})"
        )


if __name__ == "__main__":
    main()
