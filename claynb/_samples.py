"""Sample data shipped with claynb, so notebooks and examples never depend on a path."""

from __future__ import annotations

from importlib import resources

import pandas as pd


def sample_leads() -> pd.DataFrame:
    """A synthetic CRM export of a few hundred leads, mess included.

    It carries what real exports do: blank cells, leads entered twice (sometimes differing
    only in case or stray spaces), malformed emails, domains typed as URLs and mixed case.
    Every column is read as text and blanks stay empty strings, exactly as the CSV has them,
    so what you see is what a CRM hands you. Columns: ``Lead ID, Name, Email, Company,
    Domain, Title, Country, Lead Source, Lead Status, Created``.
    """
    source = resources.files("claynb") / "data" / "leads.csv"
    with resources.as_file(source) as path:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
