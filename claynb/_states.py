"""State machines kept as data: a ``str`` enum of states and a table of the moves allowed.

claynb keeps three machines whose states outlive a process: the journal's batches (SQLite),
the queue tier's batches (Redis, moved by Lua scripts) and the event service's leads. Each
declares its states as a :class:`enum.StrEnum` (so SQL and Lua hold the enum's values,
never a loose string of their own) and its moves as one :class:`Machine`, in the module
that owns it. Every change of state asks the machine first, so a move the table does not
allow raises :class:`IllegalTransition` in one place, naming both states.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Generic, TypeVar

from claynb.wire._exceptions import ClayError

S = TypeVar("S", bound=StrEnum)


class IllegalTransition(ClayError):
    """A state machine was asked for a move its table does not allow.

    It means a bug, or two processes disagreeing about where something is: either way,
    going on could send or charge something twice, so claynb stops instead.
    """


class Machine(Generic[S]):
    """The moves allowed between the states ``S``.

    ``None`` stands for "not there": as a source, where a thing starts; as a target, a
    thing forgotten (a journaled send that certainly never left).
    """

    def __init__(
        self, name: str, states: type[S], moves: Mapping[S | None, Iterable[S | None]]
    ) -> None:
        self.name = name
        self.states = states
        self.moves: dict[S | None, frozenset[S | None]] = {
            state: frozenset(targets) for state, targets in moves.items()
        }
        unknown = {s for s in self.moves if s is not None and not isinstance(s, states)}
        if unknown:
            raise TypeError(f"{name}: {unknown} are not {states.__name__} members")

    def allows(self, current: S | None, new: S | None) -> bool:
        return new in self.moves.get(current, frozenset())

    def move(self, current: str | None, new: S) -> S:
        """``new``, once the table allows it from ``current``; IllegalTransition otherwise."""
        self.check(current, new)
        return new

    def check(self, current: str | None, new: S | None) -> None:
        """Raise :class:`IllegalTransition` unless the table allows ``current -> new``."""
        state = None if current is None else self.states(current)
        if not self.allows(state, new):
            was = "nothing" if state is None else repr(str(state))
            to = "gone" if new is None else repr(str(new))
            raise IllegalTransition(f"{self.name}: no move from {was} to {to}")

    def sources(self, new: S) -> frozenset[S]:
        """Every state (not "nothing") the table allows to move to ``new``."""
        return frozenset(s for s, targets in self.moves.items() if s is not None and new in targets)
