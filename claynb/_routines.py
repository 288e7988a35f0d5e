"""The routine catalogue: what each enrichment needs, returns and costs.

The emulator answers from it, and ``estimate`` prices work with it before anything is
sent. A routine is a waterfall of providers tried in order; each provider hits with a
probability and charges Data Credits only when it hits (unless ``charge_on_miss`` is set,
as some providers did under Clay's older pricing). The routine charges one Action when a
provider hits (or when any provider charged on a miss).

Outcomes are a pure function of (routine, normalised inputs, seed): the same inputs give
the same answer every time, so caching and resuming can be checked exactly.

Real Clay knows nothing of this catalogue and reports no per-item cost: a workspace routine
(``function:t_...``) is a :class:`Routine` with no providers whose price is what the user
declares (``cost=``, the most one row can cost) and whose inputs may carry a *kind* that
says how they are normalised and checked (:data:`KINDS`). The four built-in routines are
the emulator's demo catalogue.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from claynb.wire._exceptions import ConfigError

_EMAIL = r"^[a-z0-9._%+\-]+@[a-z0-9\-]+(\.[a-z0-9\-]+)*\.[a-z]{2,}$"
_DOMAIN_LENGTH = r"^.{4,253}$"
_DOMAIN_LABELS = r"^([a-z0-9]([a-z0-9\-]{0,61}[a-z0-9])?\.)+[a-z]{2,}$"
_LINKEDIN = r"^(https?://)?([a-z]{2,3}\.)?linkedin\.com/in/[a-z0-9_\-%]+/?$"
_LETTER = r"[^\W\d_]"

EMAIL_RE = re.compile(_EMAIL)
DOMAIN_RE = re.compile(rf"(?={_DOMAIN_LENGTH}){_DOMAIN_LABELS}")
LINKEDIN_RE = re.compile(_LINKEDIN)

#: What an input can be declared to hold, and so how it is normalised and checked: an
#: e-mail, a domain, a URL, a LinkedIn profile URL, a person's name, or free text (trimmed,
#: never refused). An input with no declared kind is read by its name (``work_email`` is
#: an e-mail, ``company_domain`` a domain), as the built-in routines' inputs are.
KINDS = ("email", "domain", "url", "linkedin_url", "full_name", "text")


@dataclass(frozen=True)
class Provider:
    """One data provider in a waterfall."""

    name: str
    hit_rate: float
    data_credits: float
    charge_on_miss: bool = False


@dataclass(frozen=True)
class Cost:
    """Actions and Data Credits charged for one row (or a sum of rows)."""

    actions: float = 0.0
    data_credits: float = 0.0

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.actions + other.actions, self.data_credits + other.data_credits)

    def __mul__(self, n: float) -> Cost:
        return Cost(self.actions * n, self.data_credits * n)

    @classmethod
    def total(cls, costs: Iterable[Cost]) -> Cost:
        """The sum of ``costs``: the same figures as adding them one by one, without a
        Cost made at each step (a run of 100 results: about 7 microseconds, not 47)."""
        actions = data_credits = 0.0
        for cost in costs:
            actions += cost.actions
            data_credits += cost.data_credits
        return cls(actions, data_credits)

    @classmethod
    def of(cls, value: Cost | Mapping[str, Any]) -> Cost:
        """A Cost from a Cost or ``{"actions": ..., "data_credits": ...}``, checked."""
        if isinstance(value, Cost):
            raw: Mapping[str, Any] = asdict(value)
        elif isinstance(value, Mapping):
            raw = value
        else:
            raise ConfigError(
                f"a cost is claynb.Cost(actions=..., data_credits=...), not {value!r:.80}"
            )
        unknown = set(raw) - {"actions", "data_credits"}
        if unknown:
            raise ConfigError(f"a cost has actions and data_credits, not {sorted(unknown)}")
        try:
            cost = cls(float(raw.get("actions", 0)), float(raw.get("data_credits", 0)))
        except (TypeError, ValueError):
            raise ConfigError(f"a cost's figures must be numbers, not {dict(raw)!r:.80}") from None
        if not (cost.actions >= 0 and cost.data_credits >= 0):
            raise ConfigError(f"a cost must not be negative: {cost}")
        return cost

    @property
    def is_zero(self) -> bool:
        return self.actions == 0 and self.data_credits == 0


@dataclass(frozen=True)
class Outcome:
    """What one item's run produced: a match with fields, a miss, or a failure."""

    status: str  # "matched" | "no_match" | "failed"
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    cost: Cost = Cost()
    provider: str | None = None


@dataclass(frozen=True)
class Routine:
    """A Clay routine: its inputs, result fields and waterfall of providers.

    ``cost``, when declared, is the most one row can be charged (it overrides what the
    providers add up to); ``kinds`` pairs inputs with a kind from :data:`KINDS`. A routine
    with neither providers nor a declared cost is *unpriced*: it can be run, but nothing
    can say what a row cost, and a capped :class:`claynb.Budget` refuses it.
    """

    id: str
    inputs: tuple[str, ...]
    fields: tuple[str, ...] = ()
    providers: tuple[Provider, ...] = ()
    actions_per_hit: float = 1.0
    cost: Cost | None = None
    kinds: tuple[tuple[str, str], ...] = ()

    @property
    def priced(self) -> bool:
        """Whether the most a row can cost is known (declared, or from the providers)."""
        return self.cost is not None or bool(self.providers)

    def kind_of(self, name: str) -> str:
        """The declared kind of input ``name``; its own name when none was declared."""
        return dict(self.kinds).get(name, name)

    def match_rate(self) -> float:
        """Probability that some provider in the waterfall hits (NaN: not known)."""
        if not self.providers:
            return float("nan")
        miss = 1.0
        for p in self.providers:
            miss *= 1.0 - p.hit_rate
        return 1.0 - miss

    def expected_cost(self) -> Cost:
        """Mean Actions and Data Credits per valid row sent (a declared routine's worst
        case: nothing else is known about it until the ledger has seen it run)."""
        if not self.providers:
            return self.worst_case_cost()
        remaining, credits, charged = 1.0, 0.0, 0.0
        for p in self.providers:
            hit = remaining * p.hit_rate
            credits += hit * p.data_credits
            if p.charge_on_miss:
                credits += (remaining - hit) * p.data_credits
            remaining -= hit
        charged = self.match_rate() + (remaining if self._miss_charges() else 0.0)
        return Cost(charged * self.actions_per_hit, credits)

    def worst_case_cost(self) -> Cost:
        """The most one row can ever be charged: what a budget must reserve.

        Raises :class:`claynb.ConfigError` for an unpriced routine: a worst case of zero
        would let a budget be passed without a word.
        """
        if self.cost is not None:
            return self.cost
        if not self.providers:
            raise ConfigError(
                f"routine {self.id!r} has no declared cost, so no budget can hold its worst "
                "case: pass cost=claynb.Cost(actions=..., data_credits=...) (the most one row "
                "can cost) or declare it in claynb.toml"
            )
        if self._miss_charges():
            credits = sum(p.data_credits for p in self.providers)
        else:
            credits = max(p.data_credits for p in self.providers)
        return Cost(self.actions_per_hit, credits)

    def _miss_charges(self) -> bool:
        return any(p.charge_on_miss for p in self.providers)

    def with_providers(self, providers: tuple[Provider, ...]) -> Routine:
        return replace(self, providers=providers)

    def priced_at(self, cost: Cost | Mapping[str, Any] | None) -> Routine:
        """This routine with ``cost`` declared as its worst case per row (None: as it is)."""
        return self if cost is None else replace(self, cost=Cost.of(cost))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (for a queue job's batch): :meth:`from_dict` reads it back."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Routine:
        raw = dict(data)
        cost = raw.pop("cost", None)
        return cls(
            id=str(raw.pop("id")),
            inputs=tuple(raw.pop("inputs")),
            fields=tuple(raw.pop("fields", ())),
            providers=tuple(Provider(**p) for p in raw.pop("providers", ())),
            cost=None if cost is None else Cost.of(cost),
            kinds=tuple((str(k), str(v)) for k, v in raw.pop("kinds", ())),
            **raw,
        )


def workspace_routine(
    routine_id: str,
    inputs: tuple[str, ...],
    *,
    cost: Cost | Mapping[str, Any] | None = None,
    kinds: Mapping[str, str] | None = None,
    fields: tuple[str, ...] = (),
) -> Routine:
    """A routine of a Clay workspace (``function:t_...``): its fields are whatever comes
    back, its price what is declared (None: unpriced), its inputs checked by their kinds."""
    declared = dict(kinds or {})
    unknown = {name: kind for name, kind in declared.items() if kind not in KINDS}
    if unknown:
        raise ConfigError(
            f"routine {routine_id!r}: unknown input kind(s) {unknown}; kinds are {', '.join(KINDS)}"
        )
    extra = sorted(set(declared) - set(inputs))
    if extra:
        raise ConfigError(
            f"routine {routine_id!r}: kinds given for inputs it does not take: {extra}"
        )
    return Routine(
        routine_id,
        tuple(inputs),
        tuple(fields),
        cost=None if cost is None else Cost.of(cost),
        kinds=tuple(declared.items()),
    )


_ADJ = ["Senior", "Lead", "Principal", "Staff", "Head of", "VP", "Director of", "Chief"]
_ROLES = ["Revenue Operations", "Sales", "Marketing", "Engineering", "Growth", "Data", "Finance"]
_SENIORITY = ["entry", "senior", "manager", "director", "vp", "c_suite"]
_CITIES = [
    "Berlin, DE",
    "London, GB",
    "New York, US",
    "Austin, US",
    "Toronto, CA",
    "Paris, FR",
    "Amsterdam, NL",
    "Sydney, AU",
    "Singapore, SG",
    "Madrid, ES",
]
# First names the emulator knows: an email's local part that is one of them reads as a first
# name, and a lone initial is filled in with one that starts with it.
_FIRST = [
    "Ada", "Aisha", "Alan", "Amara", "Arjun", "Barbara", "Chen", "Dennis", "Diego", "Donald",
    "Edsger", "Emil", "Fatima", "Frances", "Grace", "Guido", "Hannah", "Hedy", "Ines", "Jonas",
    "John", "Katherine", "Ken", "Kwame", "Lea", "Linus", "Lukas", "Margaret", "Mateo", "Maya",
    "Noor", "Olga", "Pablo", "Priya", "Radia", "Rafael", "Sophie", "Sven", "Tim", "Tomasz",
    "Ursula", "Victor", "Wendy", "Xavier", "Yuki", "Zanele",
]  # fmt: skip
_LAST = [
    "Allen", "Becker", "Costa", "Dlamini", "Fischer", "Garcia", "Haddad", "Hamilton", "Hopper",
    "Ivanova", "Johnson", "Knuth", "Larsen", "Levy", "Lindqvist", "Liskov", "Mensah", "Muller",
    "Nowak", "Okafor", "Patel", "Rahman", "Ruiz", "Schmidt", "Sharma", "Silva", "Tanaka",
    "Thompson", "Wilson",
]  # fmt: skip
# Surnames that lose an apostrophe or a space in an email address, written as people do.
_SURNAME_SPELLING = {
    "obrien": "O'Brien",
    "oconnor": "O'Connor",
    "oneill": "O'Neill",
    "odonnell": "O'Donnell",
    "osullivan": "O'Sullivan",
    "vanderberg": "van der Berg",
    "vandenberg": "van den Berg",
    "mcdonald": "McDonald",
}
_INDUSTRIES = [
    "Software",
    "Fintech",
    "Healthcare",
    "Logistics",
    "Retail",
    "Manufacturing",
    "Media",
    "Education",
    "Energy",
    "Biotech",
]
_COUNTRIES = ["US", "GB", "DE", "FR", "CA", "NL", "AU", "SG", "ES", "SE"]
_EMAIL_PROVIDERS = ["google", "microsoft", "zoho", "other"]


def _surname(token: str) -> str:
    return _SURNAME_SPELLING.get(token.replace("'", ""), token.title())


def _first_name(rng: random.Random, initial: str) -> str:
    """A first name starting with ``initial`` (any first name when none does)."""
    fitting = [n for n in _FIRST if n[0].lower() == initial] or _FIRST
    return rng.choice(fitting)


def _name_from_email(rng: random.Random, local: str) -> str:
    """A person's name that reads as the email's local part does.

    ``ken.obrien``, ``ken_obrien`` and ``ken.obrien42`` give Ken O'Brien; ``kobrien`` an
    O'Brien whose first name starts with K; ``mateo`` a Mateo. Only what the address does
    not say is made up (seeded by the inputs, so the same address gives the same person).
    """
    tokens = [t for t in (re.sub(r"\d+", "", p) for p in re.split(r"[._\-+]", local)) if t]
    known = {n.lower(): n for n in _FIRST}
    if len(tokens) >= 2:
        first = tokens[0]
        first = _first_name(rng, first) if len(first) == 1 else known.get(first, first.title())
        return f"{first} {_surname(tokens[-1])}"
    token = tokens[0] if tokens else ""
    if token in known:
        return f"{known[token]} {rng.choice(_LAST)}"
    for low, name in known.items():
        if token.startswith(low) and len(token) - len(low) >= 3:
            return f"{name} {_surname(token[len(low) :])}"
    if len(token) >= 4:
        return f"{_first_name(rng, token[0])} {_surname(token[1:])}"
    return f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"


def _person(rng: random.Random, inputs: dict[str, str]) -> dict[str, Any]:
    local, domain = inputs["email"].split("@", 1)
    name = _name_from_email(rng, local)
    slug = re.sub(r"[^a-z]+", "-", name.lower()).strip("-")
    return {
        "full_name": name,
        "title": f"{rng.choice(_ADJ)} {rng.choice(_ROLES)}",
        "seniority": rng.choice(_SENIORITY),
        "company_domain": domain,
        "linkedin_url": f"https://www.linkedin.com/in/{slug}-{rng.randrange(1000, 9999)}",
        "location": rng.choice(_CITIES),
    }


def _company(rng: random.Random, inputs: dict[str, str]) -> dict[str, Any]:
    stem = inputs["domain"].split(".")[0]
    return {
        "company_name": stem.replace("-", " ").title(),
        "industry": rng.choice(_INDUSTRIES),
        "employee_count": int(rng.lognormvariate(4.5, 1.4)) + 1,
        "hq_country": rng.choice(_COUNTRIES),
        "founded_year": rng.randrange(1950, 2025),
    }


def _work_email(rng: random.Random, inputs: dict[str, str]) -> dict[str, Any]:
    names = [p for p in re.split(r"\s+", inputs["full_name"].lower()) if p]
    first, last = names[0], names[-1]
    pattern = rng.choice([f"{first}.{last}", f"{first}", f"{first[0]}{last}", f"{first}{last[0]}"])
    pattern = re.sub(r"[^a-z0-9.]", "", pattern) or "contact"
    return {
        "work_email": f"{pattern}@{inputs['company_domain']}",
        "email_provider": rng.choice(_EMAIL_PROVIDERS),
    }


def _mobile(rng: random.Random, inputs: dict[str, str]) -> dict[str, Any]:
    return {
        "mobile_phone": f"+1 {rng.randrange(200, 999)}-{rng.randrange(200, 999)}-{rng.randrange(1000, 9999)}"
    }


_BUILDERS = {
    "enrich-person": _person,
    "enrich-company": _company,
    "find-work-email": _work_email,
    "find-mobile-phone": _mobile,
}

DEFAULT_ROUTINES: dict[str, Routine] = {
    r.id: r
    for r in [
        Routine(
            "enrich-person",
            ("email",),
            ("full_name", "title", "seniority", "company_domain", "linkedin_url", "location"),
            (Provider("person-db", 0.80, 1.0),),
        ),
        Routine(
            "enrich-company",
            ("domain",),
            ("company_name", "industry", "employee_count", "hq_country", "founded_year"),
            (Provider("company-db", 0.90, 1.0),),
        ),
        Routine(
            "find-work-email",
            ("full_name", "company_domain"),
            ("work_email", "email_provider"),
            (
                Provider("email-finder-a", 0.45, 1.0),
                Provider("email-finder-b", 0.30, 2.0),
                Provider("email-finder-c", 0.25, 3.0),
            ),
        ),
        Routine(
            "find-mobile-phone",
            ("linkedin_url",),
            ("mobile_phone",),
            (Provider("phone-db", 0.35, 10.0),),
        ),
    ]
}


def get_routine(routine_id: str, catalogue: dict[str, Routine] | None = None) -> Routine:
    """Look a routine up by id; a ``KeyError`` naming the known ids when it is not there."""
    catalogue = DEFAULT_ROUTINES if catalogue is None else catalogue
    try:
        return catalogue[routine_id]
    except KeyError:
        known = ", ".join(sorted(catalogue))
        raise KeyError(f"unknown routine {routine_id!r}; known routines: {known}") from None


def validate_inputs(routine: Routine, inputs: dict[str, Any]) -> str | None:
    """Why these inputs cannot be enriched, or ``None`` when they can.

    Inputs are expected already normalised (trimmed, lower-cased where it matters). Each
    is checked as its kind says (:meth:`Routine.kind_of`: its name unless declared).
    """
    for name in routine.inputs:
        reason = input_problem(routine.kind_of(name), name, inputs.get(name))
        if reason is not None:
            return reason
    return None


def input_problem(kind: str, name: str, value: Any) -> str | None:
    """Why one input's value (of this kind) cannot be enriched, or ``None`` when it can:
    each input is checked on its own, so a frame's column is checked once per distinct
    value (:func:`input_problems`)."""
    return _problem(_checks(kind), name, value)


def input_problems(kind: str, name: str, values: Iterable[Any]) -> list[str | None]:
    """:func:`input_problem` of each value, the kind's checks chosen once for them all."""
    checks = _checks(kind)
    return [_problem(checks, name, value) for value in values]


def _problem(checks: list[_Check], name: str, value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return f"missing input {name!r}"
    if not isinstance(value, str):
        return f"input {name!r} must be a string, got {type(value).__name__}"
    for check in checks:
        if not check.pattern.search(value):
            return check.reason.format(name=name, value=repr(value))
    return None


@dataclass(frozen=True)
class _Check:
    """One rule some kinds' values must pass, and the reason given when a value does not.
    Kinds are read as the names were, by what they say: a check applies to the kinds that
    contain ``word`` (or, when ``whole``, to that kind alone).

    ``pattern`` is searched for with :mod:`re`; ``arrow`` is the same rule as patterns
    that must all be found, written for Arrow's RE2 (which has no look-ahead): on
    printable ASCII the two agree, which is where :mod:`claynb.pipeline._normalise`
    checks a whole column with them at once.
    """

    word: str
    whole: bool
    pattern: re.Pattern[str]
    arrow: tuple[str, ...]
    reason: str  # str.format'ed with the input's name and the value's repr

    def fits(self, kind: str) -> bool:
        return kind == self.word if self.whole else self.word in kind


_CHECKS = (
    _Check("email", False, EMAIL_RE, (_EMAIL,), "malformed email {value}"),
    _Check(
        "domain", False, DOMAIN_RE, (_DOMAIN_LENGTH, _DOMAIN_LABELS), "malformed domain {value}"
    ),
    _Check(
        "linkedin_url", True, LINKEDIN_RE, (_LINKEDIN,), "malformed LinkedIn profile URL {value}"
    ),
    _Check("full_name", True, re.compile(_LETTER), (_LETTER,), "{name} {value} has no letters"),
)


def _checks(kind: str) -> list[_Check]:
    """The checks a value of ``kind`` must pass, in order (``text`` is never refused)."""
    return [] if kind == "text" else [check for check in _CHECKS if check.fits(kind)]


def kind_patterns(kind: str) -> tuple[str, ...]:
    """The RE2 patterns a printable-ASCII value of ``kind`` must all contain to be valid
    (none: only a blank value is refused; :func:`input_problem` is the definition)."""
    return tuple(pattern for check in _checks(kind) for pattern in check.arrow)


def _rng(routine_id: str, inputs: dict[str, Any], seed: int) -> random.Random:
    key = "\x1f".join([routine_id, str(seed)] + [f"{k}={inputs.get(k)}" for k in sorted(inputs)])
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def run_item(routine: Routine, inputs: dict[str, Any], seed: int = 0) -> Outcome:
    """The deterministic outcome of running ``routine`` on one item's inputs."""
    reason = validate_inputs(routine, inputs)
    if reason is not None:
        return Outcome("failed", error=reason)
    rng = _rng(routine.id, {k: inputs[k] for k in routine.inputs}, seed)
    credits = 0.0
    for provider in routine.providers:
        if rng.random() < provider.hit_rate:
            credits += provider.data_credits
            result = _BUILDERS.get(routine.id, _generic)(rng, inputs)
            return Outcome(
                "matched",
                result=result,
                cost=Cost(routine.actions_per_hit, credits),
                provider=provider.name,
            )
        if provider.charge_on_miss:
            credits += provider.data_credits
    actions = routine.actions_per_hit if credits > 0 else 0.0
    return Outcome("no_match", cost=Cost(actions, credits))


def _generic(rng: random.Random, inputs: dict[str, Any]) -> dict[str, Any]:
    return {"value": rng.randrange(1_000_000)}
