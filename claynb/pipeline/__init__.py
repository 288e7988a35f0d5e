"""The enrichment pipeline: a DataFrame in, the work it stands for, results back in a frame.

    _normalise   a frame reduced to unique, normalised, validated work
    _work        the units every tier speaks: WorkItem, ItemResult, statuses, BudgetGuard
    _cache       answers already paid for, and the dead-letter list
    _journal     which runs were started and how they ended (resume without paying twice)
    _claims      rows claimed before they are sent: processes sharing a home never send one twice
    _ledger      every charge, summarised and plotted
    _budget      hard caps, reserved at the worst case and settled to the actual charge
    _budget_store where a named budget is kept for every process: SQLite under the home, or Redis
    _estimate    what an enrichment would cost, spending nothing
    _backends    the tiers, chosen by name
    _progress    rows done, credits spent, time left
    _enrich      enrich, enrich_async and failures: the steps above, in order
    _search      claynb.search: Clay's Search as frames, paged within a budget and the quota
    _tables_read claynb.read_table: a Clay table as a frame

It sits on the wire layer (:mod:`claynb.wire`) and under the tiers (:mod:`claynb.direct`,
:mod:`claynb.queue`, :mod:`claynb.events`), which it reaches only by name through
:mod:`claynb.pipeline._backends`. Public names are re-exported from :mod:`claynb`.
"""
