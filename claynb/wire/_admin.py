"""What claynb reads from a claynb emulator's own routes, and only from one it was told of.

Real Clay reports no per-item cost, has no meters endpoint and registers outbound webhooks
with its CLI only. A claynb emulator serves all three under its admin URL (``/_emulator``,
not part of Clay): what each item of a run was charged and whether it ran for lack of
credits (``/runs/{id}``), and a webhook registration (``/webhooks``). A client knows that
URL only when the emulator handed it over (``emu.client()``, :func:`claynb.connect`
starting one, ``emulator_admin_url=``, or ``CLAYNB_EMULATOR_ADMIN_URL`` set to what
``claynb emulator`` printed): claynb never guesses an /_emulator path on the host it talks
to, so nothing reaches such a path on real Clay. Without it, every flow here answers None
and costs are estimated from declared prices.

The flows are driven by either client (see :mod:`claynb.wire._core`); a failed read of
the admin view is never an enrichment's failure, so it answers None too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from claynb._routines import Cost
from claynb.wire._core import _seg
from claynb.wire._exceptions import ClayError
from claynb.wire._results import answer_json

if TYPE_CHECKING:
    from claynb.wire._core import BaseClient, Flow

logger = logging.getLogger("claynb")


@dataclass(frozen=True)
class RunCharges:
    """What each item of one run cost, as the emulator's meters recorded it.

    ``not_run`` holds the items the meters could not pay for (Clay stops at zero);
    ``exhausted`` is True when a meter stood at zero as the view was read.
    """

    run_id: str
    items: dict[str, Cost] = field(default_factory=dict)
    not_run: frozenset[str] = frozenset()
    exhausted: bool = False

    def cost_of(self, item_id: str) -> Cost:
        return self.items.get(item_id, Cost())

    def ran_out(self, item_id: str) -> bool:
        """The meters could not pay for this item: it was not run (and not charged)."""
        return item_id in self.not_run


def parse_run_charges(run_id: str, body: dict[str, Any]) -> RunCharges:
    """The admin view of one run (``/_emulator/runs/{id}``) as :class:`RunCharges`."""
    raw_items, raw_meters = body.get("items"), body.get("meters")
    items: dict[str, Any] = raw_items if isinstance(raw_items, dict) else {}
    meters: dict[str, Any] = raw_meters if isinstance(raw_meters, dict) else {}
    costs = {
        str(item_id): Cost(float(c.get("actions", 0)), float(c.get("data_credits", 0)))
        for item_id, c in items.items()
        if isinstance(c, dict)
    }
    not_run = frozenset(
        str(item_id)
        for item_id, c in items.items()
        if isinstance(c, dict) and c.get("ran") is False
    )
    exhausted = any(
        meters.get(name) is not None and float(meters[name]) <= 1e-9
        for name in ("actions_left", "data_credits_left")
    )
    return RunCharges(run_id, costs, not_run, exhausted)


def charges_flow(core: BaseClient, run_id: str) -> Flow[RunCharges | None]:
    """The run's per-item charges from the emulator's books; None when the client knows of
    no emulator, or the view cannot be read."""
    admin = core.emulator_admin_url
    if admin is None:
        return None
    try:
        response = yield core.build_call("GET", f"{admin}/runs/{_seg(run_id)}", spends=False)
        assert response is not None
        return parse_run_charges(run_id, answer_json(response))
    except ClayError as exc:
        logger.warning("claynb: the emulator's charges for run %s: %s", run_id, exc.message)
        return None


def meters_flow(core: BaseClient) -> Flow[dict[str, Any] | None]:
    """The emulator's meters (used and left); None without an emulator."""
    admin = core.emulator_admin_url
    if admin is None:
        return None
    response = yield core.build_call(
        "GET", f"{admin}/meters", params={"charges": "0"}, spends=False
    )
    assert response is not None
    return answer_json(response)


def webhook_flow(core: BaseClient, url: str) -> Flow[dict[str, str] | None]:
    """Register ``url`` as an outbound webhook on the emulator: ``{"id", "signingSecret"}``.
    None without an emulator (real Clay: ``clay webhooks create URL``)."""
    admin = core.emulator_admin_url
    if admin is None:
        return None
    response = yield core.build_call(
        "POST", f"{admin}/webhooks", json_body={"url": url}, spends=False
    )
    assert response is not None
    body = answer_json(response)
    return {"id": str(body["id"]), "signingSecret": str(body["signingSecret"])}
