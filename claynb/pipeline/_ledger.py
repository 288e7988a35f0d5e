"""The ledger: every charge Clay made for claynb, kept under ``CLAYNB_HOME``.

One line per finished run (time, routine, run id, rows, rows matched, Actions, Data
Credits, dollars, backend, plan, and where the figures come from: ``metered`` from an
emulator's meters, ``estimated`` from declared prices, ``unpriced``). It is written in the same transaction that marks the
run finished in the journal, and keyed by run id, so a run collected twice (after a crash,
or by two notebooks) is recorded once. ``claynb.ledger()`` summarises it by day and by
routine and plots it; :func:`observed_rates` feeds ``estimate`` with the match rates and
costs actually seen.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import pandas as pd

from claynb.pipeline._work import CostSource

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SCHEMA = """
CREATE TABLE IF NOT EXISTS charges (
    run_id TEXT PRIMARY KEY, at REAL NOT NULL, routine TEXT NOT NULL, backend TEXT,
    plan TEXT, rows INTEGER NOT NULL, matched INTEGER NOT NULL, actions REAL NOT NULL,
    data_credits REAL NOT NULL, usd REAL NOT NULL, cost_source TEXT
);
CREATE INDEX IF NOT EXISTS charges_routine ON charges (routine);
CREATE TABLE IF NOT EXISTS search_quota (
    search_id TEXT NOT NULL, page INTEGER NOT NULL, at REAL NOT NULL, source_type TEXT NOT NULL,
    records INTEGER NOT NULL, requested INTEGER NOT NULL, quota_limit REAL, quota_used REAL,
    quota_remaining REAL, resets_at TEXT, PRIMARY KEY (search_id, page)
);
"""

COLUMNS = [
    "run_id",
    "at",
    "routine",
    "backend",
    "plan",
    "rows",
    "matched",
    "actions",
    "data_credits",
    "usd",
    "cost_source",
]
_SUMS = ["runs", "rows", "matched", "actions", "data_credits", "usd"]


def migrate(conn: sqlite3.Connection) -> None:
    """Bring a ledger written by an older claynb up to date (its rows' provenance unknown)."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(charges)")}
    if "cost_source" not in have:
        conn.execute("ALTER TABLE charges ADD COLUMN cost_source TEXT")


@dataclass(frozen=True)
class Charge:
    """What one run cost."""

    run_id: str
    at: float
    routine: str
    backend: str
    plan: str
    rows: int
    matched: int
    actions: float
    data_credits: float
    usd: float
    cost_source: str | None = None


def _insert(conn: sqlite3.Connection, table: str, row: Charge | QuotaSeen) -> bool:
    """Insert a row once (its fields in the table's column order); False if already there."""
    values = tuple(getattr(row, f.name) for f in fields(row))  # flat: no deep copy
    marks = ", ".join("?" * len(values))
    return conn.execute(f"INSERT OR IGNORE INTO {table} VALUES ({marks})", values).rowcount == 1


def record(conn: sqlite3.Connection, charge: Charge) -> bool:
    """Record a run's charge once; False when that run was already recorded."""
    return _insert(conn, "charges", charge)


@dataclass(frozen=True)
class QuotaSeen:
    """The search quota one page reported (Clay's ``period_quota``), and what it fetched."""

    search_id: str
    page: int
    at: float
    source_type: str
    records: int
    requested: int
    limit: float | None
    used: float | None
    remaining: float | None
    resets_at: str | None


QUOTA_COLUMNS = [
    "search_id",
    "page",
    "at",
    "source_type",
    "records",
    "requested",
    "quota_limit",
    "quota_used",
    "quota_remaining",
    "resets_at",
]


def record_quota(conn: sqlite3.Connection, seen: QuotaSeen) -> bool:
    """Record what a search page reported once; False when that page was already recorded."""
    return _insert(conn, "search_quota", seen)


def quota_frame(conn: sqlite3.Connection) -> pd.DataFrame:
    """Every search page recorded, oldest first: the quota as Clay reported it."""
    return _read(conn, "search_quota", QUOTA_COLUMNS, "at, page")


def observed_rates(
    conn: sqlite3.Connection, routine: str
) -> tuple[int, int, float, float, str | None]:
    """(rows, matched, actions, data_credits, provenance) summed over every recorded run of
    a routine whose cost was known (an unpriced run's figures say nothing)."""
    row = conn.execute(
        "SELECT COALESCE(SUM(rows), 0), COALESCE(SUM(matched), 0), "
        "COALESCE(SUM(actions), 0), COALESCE(SUM(data_credits), 0) "
        "FROM charges WHERE routine = ? AND COALESCE(cost_source, '') != ?",
        (routine, CostSource.UNPRICED),
    ).fetchone()
    sources = pd.Series(
        [
            s
            for (s,) in conn.execute(
                "SELECT DISTINCT cost_source FROM charges WHERE routine = ? "
                "AND COALESCE(cost_source, '') != ?",
                (routine, CostSource.UNPRICED),
            )
        ],
        dtype=object,
    )
    return int(row[0]), int(row[1]), float(row[2]), float(row[3]), _provenance(sources)


def _read(conn: sqlite3.Connection, table: str, columns: list[str], order: str) -> pd.DataFrame:
    """A ledger table as a DataFrame, ``at`` as UTC timestamps."""
    rows = conn.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order}").fetchall()
    frame = pd.DataFrame(rows, columns=columns)
    frame["at"] = pd.to_datetime(frame["at"].astype("float64"), unit="s", utc=True)
    return frame


def charges_frame(conn: sqlite3.Connection) -> pd.DataFrame:
    """Every recorded charge as a DataFrame, oldest first, ``at`` as UTC timestamps."""
    return _read(conn, "charges", COLUMNS, "at")


class Ledger:
    """A snapshot of the ledger: ``charges``, ``by_day``, ``by_routine`` and ``plot()``;
    ``search_quota``: the period quota each search page reported."""

    def __init__(self, charges: pd.DataFrame, search_quota: pd.DataFrame | None = None) -> None:
        self.charges = charges
        self.search_quota = (
            search_quota if search_quota is not None else pd.DataFrame(columns=QUOTA_COLUMNS)
        )

    def _summary(self, by: str | pd.Series) -> pd.DataFrame:
        frame = self.charges.assign(runs=1)
        if frame.empty:
            empty = pd.DataFrame(columns=_SUMS)
            empty.index.name = by if isinstance(by, str) else by.name
            return empty
        grouped = frame.groupby(by)
        out = grouped[_SUMS].sum()
        out["match_rate"] = out["matched"] / out["rows"].where(out["rows"] > 0)
        out["cost_source"] = grouped["cost_source"].agg(_provenance)
        return out

    @property
    def by_day(self) -> pd.DataFrame:
        """Runs, rows, matches, Actions, Data Credits and dollars per UTC day."""
        day = self.charges["at"].dt.floor("D").rename("day")
        return self._summary(day)

    @property
    def by_routine(self) -> pd.DataFrame:
        """The same totals per routine, with the match rate seen."""
        return self._summary("routine")

    @property
    def total(self) -> pd.Series:
        """Everything ever charged, summed."""
        frame = self.charges.assign(runs=1)
        return frame[_SUMS].sum()

    def summary(self) -> pd.DataFrame:
        """Totals per day and routine: the table most people want to read."""
        day = self.charges["at"].dt.floor("D").rename("day")
        return self._summary([day, self.charges["routine"]])  # type: ignore[arg-type]

    def plot(self, *, meter: str = "data_credits") -> Figure:
        """Daily spend stacked by routine, with the running total (a matplotlib Figure)."""
        return plot_charges(self.charges, meter=meter)  # type: ignore[no-any-return]

    def __len__(self) -> int:
        return len(self.charges)

    @property
    def cost_source(self) -> str | None:
        """Where the totals come from: metered only when every run's figures were."""
        return _provenance(self.charges["cost_source"])

    def __repr__(self) -> str:
        t, source = self.total, self.cost_source
        return (
            f"Ledger({len(self)} runs, {int(t['rows'])} rows, {t['actions']:g} Actions, "
            f"{t['data_credits']:g} Data Credits, ${t['usd']:.2f}"
            f"{f', {source}' if source else ''})"
        )

    def _repr_html_(self) -> str:
        head = f"<p><b>{self!r}</b></p>"
        return head + self.by_routine._repr_html_()  # type: ignore[operator]


def _provenance(sources: pd.Series) -> str | None:
    """One word for many runs' figures (an older ledger's rows, of unknown provenance,
    count as estimated)."""
    values = [CostSource(v) if v else CostSource.ESTIMATED for v in sources]
    found = CostSource.of_all(values)
    return None if found is None else str(found)


def plot_charges(charges: pd.DataFrame, *, meter: str = "data_credits") -> Any:
    """Daily ``meter`` stacked by routine, with the cumulative total on a second axis."""
    import matplotlib.pyplot as plt

    labels = {
        "actions": "Actions",
        "data_credits": "Data Credits",
        "usd": "dollars",
        "rows": "rows",
    }
    if meter not in labels:
        raise ValueError(f"meter must be one of {', '.join(labels)}, got {meter!r}")
    fig, ax = plt.subplots(figsize=(8, 4))
    if charges.empty:
        ax.text(
            0.5, 0.5, "no charges recorded yet", ha="center", va="center", transform=ax.transAxes
        )
        ax.set_axis_off()
        return fig
    day = charges["at"].dt.tz_convert(None).dt.floor("D")
    table = charges.assign(day=day).pivot_table(
        index="day", columns="routine", values=meter, aggfunc="sum", fill_value=0
    )
    table.index = table.index.strftime("%Y-%m-%d")
    table.plot(kind="bar", stacked=True, ax=ax, width=0.8)
    ax.set_xlabel("day (UTC)")
    ax.set_ylabel(f"{labels[meter]} per day")
    ax.set_title(f"Clay spend: {labels[meter]} by day and routine")
    total = ax.twinx()
    total.plot(
        range(len(table)),
        table.sum(axis=1).cumsum().to_numpy(),
        color="black",
        marker="o",
        label="running total",
    )
    total.set_ylabel(f"{labels[meter]}, running total")
    total.set_ylim(bottom=0)
    ax.tick_params(axis="x", labelrotation=0)
    fig.tight_layout()
    plt.close(fig)
    return fig
