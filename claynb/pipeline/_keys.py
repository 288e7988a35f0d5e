"""A frame's item keys by group, and the look-up the other way: key -> group.

A call keeps the state of its rows by group of the frame (arrays with a slot per group),
and knows each group's item key (:class:`FrameKeys`), held as its 16 bytes: going from
groups to their keys makes their text then, a list at a time. Going from a key to its
group is needed only for keys that come back from outside a call's own bookkeeping (a
resumed run's keys from the journal, keys other calls held, a backend's results): those
are looked up a whole list at a time, against the keys' 16 bytes sorted
(:class:`KeyIndex`, built the first time it is asked). A dict of 200,000 keys with an int
object per group held about 13 MB from planning to the merge; the sorted index holds
4.8 MB, and only from the first look-up on."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np

#: An item key: the first 16 bytes of a sha256, as 32 lower-case hex characters.
KEY_BYTES = 16

#: Keys turned into bytes at once (their joined text, their bytes and search positions
#: stay small: for 200,000 keys at once they were about 20 MB that the process kept).
_KEYS_AT_ONCE = 8192


class FrameKeys(Sequence[str | None]):
    """The item key of each group of a frame, held as its 16 bytes (``digests``: a row of
    bytes per group; ``held[g]`` False for a group that is not sent: its inputs are
    invalid, its key None), and :meth:`groups_of` for keys -> groups.

    A key is made as ``str`` only when it is asked for (:meth:`of`: a run's keys when it
    is sent, a list for the journal, the claims or the cache), never held for the whole
    call: 200,000 keys as 32-character text and their list were 16.8 MB from ``prepare``
    to the finish; their bytes are 3.2 MB. Read as a sequence, it is each group's key
    (or None), made a chunk at a time.
    """

    __slots__ = ("digests", "held", "_index")

    def __init__(self, digests: np.ndarray, held: np.ndarray) -> None:
        self.digests = np.asarray(digests, dtype=np.uint8).reshape(-1, KEY_BYTES)
        self.held = np.asarray(held, dtype=bool)
        if len(self.held) != len(self.digests):
            raise ValueError("a key's bytes and whether it is held: one of each per group")
        self._index: KeyIndex | None = None

    @classmethod
    def of_keys(cls, keys: Sequence[str | None]) -> FrameKeys:
        """The frame's keys from their text (None: a group with no key)."""
        held = np.fromiter((k is not None for k in keys), dtype=bool, count=len(keys))
        raw, known = _digests([k or "" for k in keys])
        if not known[held].all():
            raise ValueError("an item key is 32 lower-case hex characters")
        return cls(np.frombuffer(raw, dtype=np.uint8), held)

    def __len__(self) -> int:
        """The frame's groups, valid or not."""
        return len(self.held)

    @overload
    def __getitem__(self, at: int) -> str | None: ...

    @overload
    def __getitem__(self, at: slice) -> list[str | None]: ...

    def __getitem__(self, at: int | slice) -> str | None | list[str | None]:
        if isinstance(at, slice):
            return list(self._text(np.arange(len(self))[at]))
        if not self.held[at]:
            return None
        return self.digests[at].tobytes().hex()

    def __iter__(self) -> Iterator[str | None]:
        for lo in range(0, len(self), _KEYS_AT_ONCE):
            yield from self._text(np.arange(lo, min(lo + _KEYS_AT_ONCE, len(self))))

    def _text(self, groups: np.ndarray) -> Iterator[str | None]:
        keys = iter(self.of(groups[self.held[groups]]))
        return (next(keys) if held else None for held in self.held[groups].tolist())

    def valid(self) -> np.ndarray:
        """The groups that have a key, in order."""
        return np.flatnonzero(self.held)

    def of(self, groups: np.ndarray) -> list[str]:
        """The keys of these groups (each a group that has one), in their order, made now
        (a chunk at a time: one hex text per chunk, cut into keys)."""
        keys: list[str] = []
        for lo in range(0, len(groups), _KEYS_AT_ONCE):
            keys += key_texts(self.digests[groups[lo : lo + _KEYS_AT_ONCE]].tobytes())
        return keys

    def listed(self, groups: np.ndarray) -> KeyList:
        """The keys of these groups (each a group that has one), in their order, as a
        sequence whose text is made when it is read (:class:`KeyList`), not now."""
        return KeyList(self, groups)

    def groups_of(self, keys: Sequence[str]) -> np.ndarray:
        """The group of each of ``keys`` (-1 for a key of no group of this frame)."""
        if not len(keys):
            return np.zeros(0, dtype=np.int64)
        if self._index is None:
            self._index = KeyIndex.of(self)
        return self._index.groups_of(keys)


class KeyList(Sequence[str]):
    """The keys of some groups of a frame (``groups``: each one that has a key), in that
    order, read as text a chunk at a time and never held as a whole.

    What a call hands the claims and the cache look-up, which read every key the call
    will send: 200,000 keys as a list of ``str`` made at once were 17.8 MB of planning's
    peak. A slice is a ``KeyList`` too (no text made); the claims and the cache read the
    keys' bytes where they can: sorted as their text sorts (:meth:`ordered`), as one JSON
    array (:meth:`json`), as 64-bit integers (:meth:`word`).
    """

    __slots__ = ("frame", "groups")

    def __init__(self, frame: FrameKeys, groups: np.ndarray) -> None:
        self.frame = frame
        self.groups = np.asarray(groups, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.groups)

    @overload
    def __getitem__(self, at: int) -> str: ...

    @overload
    def __getitem__(self, at: slice) -> KeyList: ...

    def __getitem__(self, at: int | slice) -> str | KeyList:
        if isinstance(at, slice):
            return KeyList(self.frame, self.groups[at])
        return self.frame.digests[self.groups[at]].tobytes().hex()

    def __iter__(self) -> Iterator[str]:
        for lo in range(0, len(self), _KEYS_AT_ONCE):
            yield from self.frame.of(self.groups[lo : lo + _KEYS_AT_ONCE])

    def at(self, positions: np.ndarray) -> list[str]:
        """The keys at these positions of the list, made now."""
        return self.frame.of(self.groups[positions])

    def picked(self, mask: np.ndarray) -> KeyList:
        """The keys where ``mask`` (a bool per key) is True, in order."""
        return KeyList(self.frame, self.groups[mask])

    def ordered(self) -> KeyList:
        """The same keys sorted as their text sorts (lower-case hex sorts as the bytes):
        by their first 8 bytes alone, unless some keys share them (one 8-byte word per
        key held at once, not two)."""
        high = self.word(0)
        order = np.argsort(high)
        high = high[order]
        if (high[1:] == high[:-1]).any():  # keys sharing their first 8 bytes: by both
            order = np.lexsort((self.word(1), self.word(0)))
        return KeyList(self.frame, self.groups[order])

    def word(self, at: int) -> np.ndarray:
        """Each key's first (``at`` 0) or last (1) 8 bytes as an unsigned 64-bit integer,
        read big-endian (so the pairs sort as the bytes do)."""
        return self.frame.digests.view(">u8")[self.groups, at].astype(np.uint64)

    def json(self) -> str:
        """The keys as one JSON array of their text, written from their bytes (no
        ``str`` per key): each key is 35 bytes of it, ``"`` + 32 hex digits + ``",``."""
        if not len(self):
            return "[]"
        width = 2 * KEY_BYTES
        hexed = self.frame.digests[self.groups].tobytes().hex().encode("ascii")
        out = np.empty((len(self), width + 3), dtype=np.uint8)
        out[:, 0] = out[:, width + 1] = ord('"')
        out[:, width + 2] = ord(",")
        out[:, 1 : width + 1] = np.frombuffer(hexed, dtype=np.uint8).reshape(-1, width)
        return f"[{out.tobytes()[:-1].decode('ascii')}]"


@dataclass(frozen=True, slots=True)
class KeyIndex:
    """Keys -> groups as sorted fixed-width arrays: each key's 16 bytes as two unsigned
    64-bit integers (``high``, ``low``: sorted by both, so by the bytes), and its group.
    A look-up is one ``searchsorted`` over ``high`` per list of keys; the few keys that
    share their first 8 bytes with another sit side by side, and are walked along."""

    high: np.ndarray
    low: np.ndarray
    groups: np.ndarray

    @classmethod
    def of(cls, frame: FrameKeys) -> KeyIndex:
        """The index of a frame's keys (a group with no key left out)."""
        keys = frame.listed(frame.valid()).ordered()
        return cls(keys.word(0), keys.word(1), keys.groups)

    def groups_of(self, keys: Sequence[str]) -> np.ndarray:
        """The group of each of ``keys`` (-1 for a key of no group here, or not a key)."""
        found = np.full(len(keys), -1, dtype=np.int64)
        n = len(self.groups)
        if not n:
            return found
        for lo in range(0, len(keys), _KEYS_AT_ONCE):
            high, low, known = _halves(keys[lo : lo + _KEYS_AT_ONCE])
            # Searched in the keys' sorted order: each search starts where the last one
            # ended, and the index is read front to back (a third of the CPU of
            # searching and reading it in the keys' own order).
            order = np.argsort(high)
            high, low = high[order], low[order]
            at = np.searchsorted(self.high, high)
            while True:
                near = np.minimum(at, n - 1)
                same = (at < n) & (self.high[near] == high)
                walk = same & (self.low[near] < low)  # sorted by low within the same high
                if not walk.any():
                    break
                at[walk] += 1
            hit = known[order] & same & (self.low[near] == low)
            found[lo + order] = np.where(hit, self.groups[near], -1)
        return found


def key_texts(raw: bytes) -> list[str]:
    """Keys' 16 bytes each, joined, as their text: one hex text, cut into keys."""
    hexed = raw.hex()
    width = 2 * KEY_BYTES
    return [hexed[at : at + width] for at in range(0, len(hexed), width)]


def _halves(keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each key's 16 bytes as two big-endian unsigned integers (first 8 bytes, last 8),
    and which keys are item keys at all (another text gets zeros, and False)."""
    high = np.empty(len(keys), dtype=np.uint64)
    low = np.empty(len(keys), dtype=np.uint64)
    known = np.empty(len(keys), dtype=bool)
    for lo in range(0, len(keys), _KEYS_AT_ONCE):
        part = keys[lo : lo + _KEYS_AT_ONCE]
        raw, known[lo : lo + len(part)] = _digests(part)
        words = np.frombuffer(raw, dtype=">u8").reshape(-1, 2)
        high[lo : lo + len(part)] = words[:, 0]
        low[lo : lo + len(part)] = words[:, 1]
    return high, low, known


def _digests(keys: Sequence[str]) -> tuple[bytes, np.ndarray]:
    """The keys' 16 bytes each, joined, and which were item keys. All at once when every
    one is (no Python object per key); else key by key."""
    joined = "".join(keys)
    if len(joined) == 2 * KEY_BYTES * len(keys) and joined == joined.lower():
        try:
            raw = bytes.fromhex(joined)
        except ValueError:
            raw = b""
        if len(raw) == KEY_BYTES * len(keys):
            return raw, np.ones(len(keys), dtype=bool)
    each = [_digest(k) for k in keys]
    known = np.fromiter((d is not None for d in each), dtype=bool, count=len(each))
    return b"".join(d or bytes(KEY_BYTES) for d in each), known


def _digest(key: str) -> bytes | None:
    """One key's 16 bytes, or None when it is not 32 lower-case hex characters."""
    if len(key) != 2 * KEY_BYTES or key != key.lower() or not key.isalnum():
        return None
    try:
        return bytes.fromhex(key)
    except ValueError:
        return None
