"""claynb: Clay, the data-enrichment platform, as a first-class citizen of Jupyter.

Importing claynb registers the pandas accessor ``df.clay``. Everything public is
re-exported here; the modules behind it are private and split by concept.
"""

from claynb import queue, sim
from claynb._accessor import ClayAccessor
from claynb._budget import Budget
from claynb._client import AsyncClayClient, ClayClient
from claynb._config import RetryPolicy, SourcePolicy, Timeout
from claynb._connect import connect
from claynb._direct import WebhookReceiver
from claynb._enrich import enrich, enrich_async, failures
from claynb._estimate import Estimate, estimate
from claynb._exceptions import (
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
from claynb._ledger import Ledger, ledger
from claynb._plans import PLANS, Plan, get_plan
from claynb._results import (
    BatchResults,
    PeriodQuota,
    RunItem,
    RunResults,
    SearchResult,
    SearchStop,
)
from claynb._routines import DEFAULT_ROUTINES, Cost, Provider, Routine
from claynb._samples import sample_leads
from claynb._search import search, search_async, search_fields
from claynb._signatures import verify_signature
from claynb._sources import SourceCapWarning, SourceReport
from claynb._tables_read import read_table
from claynb._version import __version__
from claynb.emulator import Emulator, Faults

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
