"""claynb: Clay, the data-enrichment platform, as a first-class citizen of Jupyter.

Importing claynb registers the pandas accessor ``df.clay``. Everything public is
re-exported here; the modules behind it are private and split by concept.
"""

from claynb import queue, sim
from claynb._accessor import ClayAccessor
from claynb._connect import connect
from claynb._plans import PLANS, Plan, get_plan
from claynb._routines import DEFAULT_ROUTINES, Cost, Provider, Routine
from claynb._samples import sample_leads
from claynb._version import __version__
from claynb.direct import WebhookReceiver
from claynb.emulator import Emulator, Faults
from claynb.pipeline._budget import Budget
from claynb.pipeline._enrich import enrich, enrich_async, failures, ledger
from claynb.pipeline._estimate import Estimate, estimate
from claynb.pipeline._ledger import Ledger
from claynb.pipeline._search import search, search_async, search_fields
from claynb.pipeline._tables_read import read_table
from claynb.wire._client import AsyncClayClient, ClayClient
from claynb.wire._config import RetryPolicy, SourcePolicy, Timeout
from claynb.wire._exceptions import (
    AuthenticationError,
    BudgetExceeded,
    ClayError,
    ConfigError,
    CreditsExhausted,
    Forbidden,
    HTTPStatusError,
    NotFound,
    OutcomeUnknown,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    SignatureError,
    TransportError,
)
from claynb.wire._results import (
    BatchResults,
    PeriodQuota,
    RunItem,
    RunResults,
    SearchResult,
    SearchStop,
)
from claynb.wire._signatures import verify_signature
from claynb.wire._sources import SourceCapWarning, SourceReport

__all__ = [
    "DEFAULT_ROUTINES",
    "PLANS",
    "AsyncClayClient",
    "AuthenticationError",
    "BatchResults",
    "Budget",
    "BudgetExceeded",
    "ClayAccessor",
    "ClayClient",
    "ClayError",
    "ConfigError",
    "Cost",
    "CreditsExhausted",
    "Emulator",
    "Estimate",
    "Faults",
    "Forbidden",
    "HTTPStatusError",
    "Ledger",
    "NotFound",
    "OutcomeUnknown",
    "PayloadTooLarge",
    "PeriodQuota",
    "Plan",
    "Provider",
    "RateLimited",
    "RetryPolicy",
    "Routine",
    "RunItem",
    "RunResults",
    "SearchResult",
    "SearchStop",
    "ServerError",
    "SignatureError",
    "SourceCapWarning",
    "SourcePolicy",
    "SourceReport",
    "Timeout",
    "TransportError",
    "WebhookReceiver",
    "__version__",
    "connect",
    "enrich",
    "enrich_async",
    "estimate",
    "failures",
    "get_plan",
    "ledger",
    "queue",
    "read_table",
    "sample_leads",
    "search",
    "search_async",
    "search_fields",
    "sim",
    "verify_signature",
]
