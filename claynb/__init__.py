"""claynb: Clay, the data-enrichment platform, as a first-class citizen of Jupyter.

Importing claynb registers the pandas accessor ``df.clay``. Everything public is
re-exported here; the modules behind it are private and split by concept.
"""

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
from claynb._plans import PLANS, Plan, get_plan
from claynb._routines import DEFAULT_ROUTINES, Cost, Provider, Routine
from claynb._samples import sample_leads
from claynb._version import __version__
from claynb.emulator import Emulator, Faults

__all__ = [
    "DEFAULT_ROUTINES",
    "PLANS",
    "AuthenticationError",
    "BudgetExceeded",
    "ClayError",
    "ConfigError",
    "Cost",
    "CreditsExhausted",
    "Emulator",
    "Faults",
    "Forbidden",
    "HTTPStatusError",
    "NotFound",
    "OutcomeUnknown",
    "PayloadTooLarge",
    "Plan",
    "Provider",
    "RateLimited",
    "Routine",
    "ServerError",
    "SignatureError",
    "TransportError",
    "__version__",
    "get_plan",
    "sample_leads",
]
