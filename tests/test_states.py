"""State machines as data: a move the table does not allow raises, naming both states."""

from __future__ import annotations

from enum import StrEnum

import pytest

import claynb
from claynb._states import IllegalTransition, Machine
from claynb.events._service import LEAD_MOVES, LeadState


class Door(StrEnum):
    OPEN = "open"
    SHUT = "shut"


DOOR = Machine("door", Door, {None: {Door.SHUT}, Door.SHUT: {Door.OPEN}, Door.OPEN: {Door.SHUT}})


def test_allowed_moves_return_the_new_state_and_others_raise() -> None:
    assert DOOR.move(None, Door.SHUT) is Door.SHUT
    assert DOOR.move("shut", Door.OPEN) is Door.OPEN  # stored values are accepted
    with pytest.raises(IllegalTransition, match="door: no move from 'open' to 'open'"):
        DOOR.move(Door.OPEN, Door.OPEN)
    with pytest.raises(IllegalTransition, match="from nothing to 'open'"):
        DOOR.move(None, Door.OPEN)
    with pytest.raises(ValueError):
        DOOR.move("ajar", Door.OPEN)  # not a state at all
    assert issubclass(IllegalTransition, claynb.ClayError)
    assert DOOR.sources(Door.SHUT) == {Door.OPEN}


def test_a_table_names_only_its_own_states() -> None:
    with pytest.raises(TypeError):
        Machine("door", Door, {"ajar": {Door.OPEN}})  # type: ignore[dict-item]


def test_an_event_lead_is_answered_once_and_comes_back_only_by_replay() -> None:
    assert LEAD_MOVES.sources(LeadState.PENDING) == {LeadState.DEAD}  # a replay
    assert LEAD_MOVES.allows(LeadState.PENDING, LeadState.DONE)
    for state in LeadState:  # nothing moves out of done: one contact per lead, ever
        assert not LEAD_MOVES.allows(LeadState.DONE, state)
