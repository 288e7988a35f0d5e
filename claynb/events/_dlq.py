"""Dead letters: listing them as a table, and replaying them onto the lead subject.

A dead letter is ``{"lead", "kind", "reason", "at"}``: the lead event as it arrived, why it
was parked (``budget``, ``credits_exhausted``, ``failed``, ``outcome_unknown``) and when.
Replaying publishes the lead again, marked ``replay``, and only then removes the letter, so
a crash between the two replays a lead twice (the service ignores the second) rather than
losing it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from claynb.events._bus import LEADS, Bus, DeadLetter

#: Letters of this kind are not replayed unless asked: the send may already have been
#: charged, so a person should check the run before paying again.
NEEDS_CHECK = "outcome_unknown"


def letter_rows(letters: Iterable[DeadLetter]) -> list[dict[str, Any]]:
    """One flat row per letter, for a table or a DataFrame."""
    rows = []
    for letter in letters:
        lead = letter.event.get("lead") or {}
        rows.append(
            {
                "id": letter.id,
                "lead_id": lead.get("lead_id"),
                "routine": lead.get("routine"),
                "kind": letter.event.get("kind"),
                "reason": letter.reason,
                "at": letter.event.get("at"),
            }
        )
    return rows


async def replay(
    bus: Bus,
    *,
    limit: int | None = None,
    kinds: set[str] | None = None,
    include_unknown: bool = False,
    letters: list[DeadLetter] | None = None,
) -> list[str]:
    """Publish dead-lettered leads again (``letters``, else all); the ids replayed."""
    done: list[str] = []
    if letters is None:
        letters = await bus.dead_letters(limit or 1_000_000)
    for letter in letters:
        kind = str(letter.event.get("kind", ""))
        if kinds is not None and kind not in kinds:
            continue
        if kind == NEEDS_CHECK and not include_unknown:
            continue
        lead = letter.event.get("lead")
        if not isinstance(lead, dict) or not lead.get("lead_id"):
            continue
        replays = int(lead.get("replay") or 0) + 1
        await bus.publish(LEADS, {**lead, "replay": replays})
        await bus.remove_dead_letter(letter.id)
        done.append(str(lead["lead_id"]))
        if limit is not None and len(done) >= limit:
            break
    return done
