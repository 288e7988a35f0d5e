"""Generate claynb/data/leads.csv: a synthetic CRM export with the mess real ones carry.

Run ``python scripts/make_leads.py`` to regenerate; the seed is fixed, so the committed file
only changes when this script does. The people and companies are invented. What is copied
from real exports is the mess: blank cells, the same lead entered twice (sometimes with
different case or stray spaces), malformed emails, domains typed as URLs, mixed case
everywhere, and a few free-mail addresses.
"""

from __future__ import annotations

import csv
import random
from datetime import date, timedelta
from pathlib import Path

SEED = 20260311
ROWS = 300  # before duplicates are added
OUT = Path(__file__).resolve().parent.parent / "claynb" / "data" / "leads.csv"
COLUMNS = [
    "Lead ID",
    "Name",
    "Email",
    "Company",
    "Domain",
    "Title",
    "Country",
    "Lead Source",
    "Lead Status",
    "Created",
]

FIRST = [
    "Ada",
    "Grace",
    "Alan",
    "Barbara",
    "Ken",
    "Margaret",
    "Dennis",
    "Frances",
    "Radia",
    "Sophie",
    "Tim",
    "Katherine",
    "Hedy",
    "Donald",
    "Amara",
    "Mateo",
    "Priya",
    "Jonas",
    "Chen",
    "Fatima",
    "Lukas",
    "Ines",
    "Kwame",
    "Yuki",
    "Olga",
    "Rafael",
    "Noor",
    "Emil",
    "Zanele",
    "Diego",
    "Hannah",
    "Arjun",
    "Lea",
    "Tomasz",
    "Maya",
    "Sven",
    "Aisha",
    "Pablo",
]
LAST = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Liskov",
    "Thompson",
    "Hamilton",
    "Ritchie",
    "Allen",
    "Perlman",
    "Wilson",
    "Johnson",
    "Lamarr",
    "Knuth",
    "Okafor",
    "Garcia",
    "Sharma",
    "Becker",
    "Wei",
    "Haddad",
    "Muller",
    "Costa",
    "Mensah",
    "Tanaka",
    "Ivanova",
    "Silva",
    "Rahman",
    "Larsen",
    "Dlamini",
    "Fernandez",
    "Schmidt",
    "Patel",
    "Fischer",
    "Nowak",
    "Levy",
    "Lindqvist",
    "Bello",
    "Ruiz",
    "O'Brien",
    "van der Berg",
]
STEMS = [
    "north",
    "blue",
    "bright",
    "quantum",
    "cedar",
    "atlas",
    "nimbus",
    "summit",
    "harbor",
    "vertex",
    "lumen",
    "pioneer",
    "orbit",
    "granite",
    "meridian",
    "copper",
    "falcon",
    "helix",
    "juniper",
    "keystone",
    "maple",
    "nova",
    "pixel",
    "riverstone",
    "sierra",
]
TAILS = [
    "labs",
    "analytics",
    "logistics",
    "health",
    "systems",
    "cloud",
    "robotics",
    "capital",
    "foods",
    "energy",
    "works",
    "data",
    "mobility",
    "learning",
    "security",
]
TLDS = [".com"] * 6 + [".io", ".co", ".ai", ".de", ".co.uk"]
TITLES = [
    "VP Sales",
    "Head of RevOps",
    "Revenue Operations Manager",
    "Account Executive",
    "SDR",
    "Marketing Director",
    "CTO",
    "Founder & CEO",
    "Growth Lead",
    "Data Analyst",
    "Sales Operations Analyst",
    "Director of Demand Gen",
    "",
    "n/a",
]
COUNTRIES = [
    "United States",
    "US",
    "USA",
    "United Kingdom",
    "UK",
    "Germany",
    "DE",
    "France",
    "Canada",
    "Netherlands",
    "Australia",
    "Spain",
    "Sweden",
    "Singapore",
    "",
]
SOURCES = ["Webinar", "Website", "Trade Show", "Outbound", "Partner", "Content Download", ""]
STATUSES = ["New", "Working", "Nurture", "Qualified", "Unqualified", "new", "WORKING"]
FREE_MAIL = ["gmail.com", "yahoo.com", "outlook.com", "hotmail.com"]
BAD_EMAILS = [
    "n/a",
    "unknown",
    "-",
    "none@",
    "{first}@",
    "{first}.{last}@{stem}.",
    "{first}@@{domain}",
    "{first} {last}@{domain}",
    "{first}.{last}@{stem}",
    "{first}.{last} at {domain}",
    "{first}.{last}@{domain};{first}@{domain}",
]


def companies(rng: random.Random, n: int) -> list[tuple[str, str]]:
    """Invented (company name, domain) pairs, unique by domain."""
    seen: dict[str, str] = {}
    while len(seen) < n:
        stem, tail = rng.choice(STEMS), rng.choice(TAILS)
        domain = f"{stem}{rng.choice(['', '-'])}{tail}{rng.choice(TLDS)}"
        seen.setdefault(domain, f"{stem.title()} {tail.title()}")
    return [(name, domain) for domain, name in seen.items()]


def messy_case(rng: random.Random, text: str) -> str:
    """What people type into CRMs: mostly as-is, sometimes upper, lower or padded."""
    roll = rng.random()
    if roll < 0.08:
        text = text.upper()
    elif roll < 0.16:
        text = text.lower()
    if rng.random() < 0.08:
        text = rng.choice([" ", "  ", "\t"]) + text
    if rng.random() < 0.08:
        text = text + rng.choice([" ", "  "])
    return text


def email_for(rng: random.Random, first: str, last: str, domain: str) -> str:
    f, lname = first.lower(), last.lower().replace("'", "").replace(" ", "")
    roll = rng.random()
    if roll < 0.06:
        return ""
    if roll < 0.13:
        stem = domain.split(".")[0]
        bad = rng.choice(BAD_EMAILS)
        return bad.format(first=f, last=lname, domain=domain, stem=stem)
    if roll < 0.19:
        return f"{f}.{lname}{rng.randrange(10, 99)}@{rng.choice(FREE_MAIL)}"
    local = rng.choice([f"{f}.{lname}", f"{f}.{lname}", f"{f[0]}{lname}", f, f"{f}_{lname}"])
    address = f"{local}@{domain}"
    if rng.random() < 0.12:
        address = f"{first}.{last.replace(' ', '')}@{domain.title()}"
    return messy_case(rng, address)


def domain_cell(rng: random.Random, domain: str) -> str:
    """The company's domain as CRMs hold it: often clean, sometimes a URL, sometimes blank."""
    roll = rng.random()
    if roll < 0.06:
        return ""
    if roll < 0.14:
        return rng.choice([f"https://www.{domain}/", f"http://{domain}", f"www.{domain}"])
    if roll < 0.20:
        return domain.upper() if rng.random() < 0.5 else f" {domain.title()} "
    return domain


def lead(rng: random.Random, i: int, company: tuple[str, str], start: date) -> dict[str, str]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    name, domain = company
    full = f"{first} {last}"
    if rng.random() < 0.04:
        full = ""
    elif rng.random() < 0.10:
        full = rng.choice([full.upper(), full.lower(), f"{last}, {first}", f" {full} "])
    created = start + timedelta(days=rng.randrange(0, 540), minutes=rng.randrange(0, 1440))
    return {
        "Lead ID": f"00Q{rng.randrange(10**11, 10**12)}",
        "Name": full,
        "Email": email_for(rng, first, last, domain),
        "Company": "" if rng.random() < 0.05 else messy_case(rng, name),
        "Domain": domain_cell(rng, domain),
        "Title": rng.choice(TITLES),
        "Country": rng.choice(COUNTRIES),
        "Lead Source": rng.choice(SOURCES),
        "Lead Status": rng.choice(STATUSES),
        "Created": created.isoformat() if i % 7 else created.strftime("%m/%d/%Y"),
    }


def with_duplicates(rng: random.Random, rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Re-enter some leads: exact copies, and copies whose email differs only in case/space."""
    out = list(rows)
    for row in rng.sample(rows, k=len(rows) // 12):
        copy = dict(row, **{"Lead ID": f"00Q{rng.randrange(10**11, 10**12)}"})
        if rng.random() < 0.5 and copy["Email"]:
            copy["Email"] = rng.choice([copy["Email"].upper(), f" {copy['Email'].strip()} "])
        out.insert(rng.randrange(len(out) + 1), copy)
    for row in rng.sample(rows, k=len(rows) // 40):
        out.insert(rng.randrange(len(out) + 1), dict(row))  # the same export imported twice
    return out


def generate(seed: int = SEED, rows: int = ROWS) -> list[dict[str, str]]:
    rng = random.Random(seed)
    pool = companies(rng, 70)
    start = date(2025, 1, 6)
    base = [lead(rng, i, rng.choice(pool), start) for i in range(rows)]
    return with_duplicates(rng, base)


def main() -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(generate())
    print(OUT)


if __name__ == "__main__":
    main()
