"""Draw the README's pictures with claynb itself (run: python scripts/make_figures.py).

Every figure comes from the package's own code on the embedded emulator or the simulator,
so the pictures in the README are what a user gets.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import claynb  # noqa: E402
from claynb import sim  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "docs" / "img"


def decision_matrix() -> None:
    fig = sim.plot_decision_matrix(volume_per_day=20_000, latency_slo_s=300)
    fig.savefig(OUT / "decision_matrix.png", dpi=110, bbox_inches="tight")


def queue_simulation() -> None:
    fig = sim.simulate("queue", 20_000, workers=4, slo_s=300).plot()
    fig.savefig(OUT / "queue_simulation.png", dpi=110, bbox_inches="tight")


def waterfall() -> None:
    fig = sim.optimise_waterfall("find-work-email").plot()
    fig.savefig(OUT / "waterfall.png", dpi=110, bbox_inches="tight")


def ledger() -> None:
    with tempfile.TemporaryDirectory() as home:
        os.environ["CLAYNB_HOME"] = home
        df = claynb.sample_leads()
        with claynb.Emulator(run_latency_s=0.05) as emu:
            client = claynb.ClayClient(api_key=emu.api_key, base_url=emu.url)
            df.clay.enrich("enrich-person", {"email": "Email"}, client=client, progress=False)
            df.clay.enrich("enrich-company", {"domain": "Domain"}, client=client, progress=False)
        fig = claynb.ledger().plot()
        fig.savefig(OUT / "ledger.png", dpi=110, bbox_inches="tight")


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for draw in (decision_matrix, queue_simulation, waterfall, ledger):
        draw()
        print("drew", draw.__name__)
