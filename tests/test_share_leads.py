"""The sample leads the notebooks use: realistic mess, and reproducible from its script."""

from __future__ import annotations

import csv
import importlib.util
import io
from pathlib import Path

import pandas as pd
import pytest

import claynb
from claynb._routines import DOMAIN_RE, EMAIL_RE

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "make_leads.py"


def test_sample_leads_is_a_few_hundred_rows_of_text() -> None:
    leads = claynb.sample_leads()
    assert 250 <= len(leads) <= 500
    assert {"Name", "Email", "Company", "Domain"} <= set(leads.columns)
    assert all(pd.api.types.is_string_dtype(leads[c]) for c in leads.columns)


def test_sample_leads_carries_what_crm_exports_carry() -> None:
    leads = claynb.sample_leads()
    email = leads["Email"].str.strip().str.lower()
    assert (email == "").sum() >= 10, "blank emails"
    assert email[email != ""].duplicated().sum() >= 10, "the same lead twice"
    assert (leads["Email"] != leads["Email"].str.strip()).sum() >= 5, "stray whitespace"
    assert (leads["Email"].str.strip() != email).sum() >= 20, "mixed case"
    assert (~email[email != ""].map(lambda e: bool(EMAIL_RE.match(e)))).sum() >= 10, "bad emails"
    domain = leads["Domain"].str.strip().str.lower()
    assert domain.str.startswith(("http", "www.")).sum() >= 10, "domains typed as URLs"
    assert domain.map(lambda d: bool(DOMAIN_RE.match(d))).sum() >= 200, "mostly usable domains"
    assert leads.duplicated(subset=[c for c in leads.columns if c != "Lead ID"]).sum() >= 5


def test_the_committed_csv_is_what_the_script_generates() -> None:
    spec = importlib.util.spec_from_file_location("make_leads", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=module.COLUMNS)
    writer.writeheader()
    writer.writerows(module.generate())
    committed = (Path(claynb.__file__).parent / "data" / "leads.csv").read_bytes().decode("utf-8")
    assert buffer.getvalue() == committed


def test_the_emulator_finds_people_a_reader_would_believe(tmp_path: Path) -> None:
    """Enriched names agree with what each email says of its owner; the company is the domain."""
    leads = claynb.sample_leads()
    with (
        pytest.MonkeyPatch.context() as mp,
        claynb.Emulator(run_latency_s=0) as emu,
    ):
        mp.setenv("CLAYNB_HOME", str(tmp_path))
        client = claynb.ClayClient(api_key=emu.api_key, base_url=emu.url)
        out = leads.clay.enrich("enrich-person", {"email": "Email"}, client=client, progress=False)
    found = out[out["clay_status"] == "enriched"]
    assert len(found) >= 150
    email = found["Email"].str.strip().str.lower()
    local, domain = email.str.split("@").str[0], email.str.split("@").str[1]
    assert (found["clay_company_domain"] == domain).all()
    squeezed = found["clay_full_name"].str.lower().str.replace(r"[' ]", "", regex=True)
    initial = found["clay_full_name"].str[0].str.lower()
    said = local.str.replace(r"\d+", "", regex=True).str.split(r"[._]")
    two_part = said.str.len() >= 2
    ends = [n.endswith(s[-1]) for n, s in zip(squeezed[two_part], said[two_part], strict=True)]
    assert all(ends), "first.last@ gives that last name"
    assert (local.str[0] == initial).all(), "the first letter of the address is the name's"
    crm_name = found["Name"].str.strip().str.lower().str.replace("'", "")
    agrees = [s.endswith(n.split()[-1]) for s, n in zip(local, crm_name, strict=True) if n]
    assert sum(agrees) / len(agrees) > 0.6, "most people come back as the CRM knows them"
