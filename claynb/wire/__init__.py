"""The wire layer: everything claynb says to Clay and how it reads the answers.

    _core        the I/O-free client core: requests, retry decisions, flows
    _client      ClayClient and AsyncClayClient, which only send what the core builds
    _config      settings (Timeout, RetryPolicy, SourcePolicy) and the documented limits
    _pacing      client-side rate pacing (a token bucket shared by threads or tasks)
    _exceptions  the one exception tree, rooted at ClayError
    _results     typed answers parsed from the Public API's JSON
    _signatures  signing and verifying outbound webhook deliveries
    _sources     sending rows into a table's webhook source
    _search_flow Clay's Search (a forward-only iterator, never re-sent) as flows

Nothing here knows about DataFrames, budgets or tiers; the layers above import from here,
never the other way round. Public names are re-exported from :mod:`claynb`.
"""
