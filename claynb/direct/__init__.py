"""The direct tier: runs of up to 100 items, many in flight, from this process.

The peer of :mod:`claynb.queue` and :mod:`claynb.events`: ``claynb.enrich(df, ...,
backend="direct")`` (the default) uses :func:`run`, the backend function registered in
:mod:`claynb.pipeline._backends`.
"""

from claynb.direct._backend import run, run_async
from claynb.direct._receiver import WebhookReceiver

__all__ = ["WebhookReceiver", "run", "run_async"]
