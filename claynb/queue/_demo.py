"""Synthetic leads in any number, for the queue-tier notebook, tests and benchmark.

``claynb.sample_leads()`` is a realistic, messy CRM export of a few hundred rows; the
queue tier is about volume, so this makes as many distinct, valid leads as asked for,
the same ones for the same seed.
"""

from __future__ import annotations

import random

import pandas as pd

_FIRST = [
    "ada",
    "grace",
    "alan",
    "linus",
    "barbara",
    "ken",
    "margaret",
    "dennis",
    "radia",
    "guido",
    "sophie",
    "tim",
    "hedy",
    "donald",
    "frances",
    "edsger",
]
_LAST = [
    "lovelace",
    "hopper",
    "turing",
    "torvalds",
    "liskov",
    "thompson",
    "hamilton",
    "ritchie",
    "perlman",
    "rossum",
    "wilson",
    "knuth",
    "allen",
    "dijkstra",
]
_COMPANIES = [
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "stark",
    "wayne",
    "tyrell",
    "cyberdyne",
    "soylent",
    "wonka",
    "aperture",
]


def synthetic_leads(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` distinct leads: ``Lead ID``, ``Name``, ``Email``, ``Domain``."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        domain = f"{rng.choice(_COMPANIES)}{rng.randrange(1, 400)}.com"
        rows.append(
            {
                "Lead ID": f"L{seed:02d}-{i:06d}",
                "Name": f"{first.title()} {last.title()}",
                "Email": f"{first}.{last}{i}@{domain}",
                "Domain": domain,
            }
        )
    return pd.DataFrame(rows)
