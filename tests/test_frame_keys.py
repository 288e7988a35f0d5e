"""A frame's keys by group, and the look-up the other way (claynb.pipeline._keys).

The look-up is sorted fixed-width arrays, not a dict: every key of a group must be found
whatever the order of the keys asked for and however they are chunked, and nothing else
may be found (a key of no group, another text, a near match)."""

from __future__ import annotations

import numpy as np
import pytest

from claynb.pipeline import _keys
from claynb.pipeline._keys import FrameKeys
from claynb.pipeline._work import item_key


@pytest.mark.parametrize("at_once", [8192, 64])
def test_each_key_finds_its_group_and_no_other(
    at_once: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(64 at once: the index and the look-up made over several chunks.)"""
    monkeypatch.setattr(_keys, "_KEYS_AT_ONCE", at_once)
    keys = [item_key("enrich-person", {"email": f"p{i}@x.com"}) for i in range(300)]
    held: list[str | None] = list(keys)
    held[7] = held[250] = None  # invalid groups have no key
    frame = FrameKeys.of_keys(held)
    assert len(frame) == 300 and frame.valid().tolist() == [
        g for g in range(300) if g not in (7, 250)
    ]
    asked = [keys[5], keys[299], keys[5], keys[0], keys[7]]
    assert frame.groups_of(asked).tolist() == [5, 299, 5, 0, -1]
    other = item_key("enrich-person", {"email": "nobody@x.com"})
    strange = [other, "invalid:3", keys[1].upper(), keys[1][:31], " " + keys[1][1:], keys[2]]
    assert frame.groups_of(strange).tolist() == [-1, -1, -1, -1, -1, 2]
    assert frame.groups_of(keys[::-1]).tolist() == [
        -1 if g in (7, 250) else g for g in range(299, -1, -1)
    ]
    assert frame.groups_of([]).tolist() == []
    assert frame.of(np.array([299, 0, 5])) == [keys[299], keys[0], keys[5]]
    assert list(frame) == held and frame[7] is None and frame[5] == keys[5]
    assert frame[248:252] == held[248:252]


def test_keys_that_share_their_first_eight_bytes_are_told_apart() -> None:
    alike = ["0" * 16 + f"{i:016x}" for i in (9, 3, 7)]
    near = FrameKeys.of_keys([alike[0], None, alike[1], alike[2]])
    asked = [*alike[::-1], "0" * 16 + f"{5:016x}", "0" * 16 + f"{10:016x}", "f" * 32]
    assert near.groups_of(asked).tolist() == [3, 2, 0, -1, -1, -1]


def test_a_frame_with_no_key_finds_nothing_and_a_malformed_key_is_refused() -> None:
    assert FrameKeys.of_keys([None, None]).groups_of(["0" * 32]).tolist() == [-1]
    with pytest.raises(ValueError, match="32 lower-case hex"):
        FrameKeys.of_keys(["0" * 32, "not a key"])


def test_the_direct_engines_queue_keeps_its_order_across_pops_and_returns() -> None:
    """The groups waiting to be sent (arrays, not an int per row): a batch cut short goes
    back to the front, a requeued one to the back, and nothing is lost or repeated."""
    from claynb.direct._engine import Pending

    queue = Pending()
    queue.push_back(np.arange(10))
    first = queue.pop(4)
    queue.push_front(first[2:])  # the budget covered only two of them
    queue.push_back(np.array([100, 101]))  # refused, sent again later
    assert len(queue) == 10
    assert queue.pop(3).tolist() == [2, 3, 4]
    assert queue.drain().tolist() == [5, 6, 7, 8, 9, 100, 101]
    assert len(queue) == 0 and queue.pop(5).tolist() == [] and not queue


def test_landed_results_keep_their_groups_given_or_looked_up_in_the_frame() -> None:
    """The direct engine hands each run's groups; the other tiers' results are looked up
    by key (a key of no group of the frame: -1), and a status no tier writes is left out."""
    from claynb.pipeline._work import ItemResult, Landed, Status

    keys = [item_key("enrich-person", {"email": f"p{i}@x.com"}) for i in range(5)]
    frame = FrameKeys.of_keys(keys)
    landed = Landed(frame).add([ItemResult(keys[3], Status.ENRICHED)], np.array([3]))
    other = item_key("enrich-person", {"email": "nobody@x.com"})
    landed.add([ItemResult(keys[1], Status.NO_MATCH), ItemResult(other, Status.FAILED)])
    odd = ItemResult(keys[2], "not a status")  # type: ignore[arg-type]
    landed.add([ItemResult(keys[0], Status.UNKNOWN), odd], np.array([0, 2]))
    assert list(landed.groups) == [3, 1, -1, 0] and len(landed) == 4
    landed.clear()
    assert len(landed) == 0 and landed.frame is None


@pytest.mark.parametrize("at_once", [8192, 64])
def test_a_key_list_reads_as_the_keys_text(at_once: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``KeyList`` (what the claims and the cache look-up read) is the same keys as their
    text, however it is read: whole, by position, sliced, sorted, as JSON, as the cache's
    hashes. Keys that share their first 8 bytes sort by the last 8."""
    import orjson

    from claynb.pipeline._cache import key_hashes

    monkeypatch.setattr(_keys, "_KEYS_AT_ONCE", at_once)
    keys = [item_key("enrich-person", {"email": f"p{i}@x.com"}) for i in range(300)]
    keys += ["0" * 16 + f"{i:016x}" for i in (9, 3, 7)]
    frame = FrameKeys.of_keys([*keys, None])
    groups = np.arange(len(keys))[::-1].copy()
    listed, text = frame.listed(groups), [keys[g] for g in groups]
    assert list(listed) == text and len(listed) == len(text)
    assert listed[4] == text[4] and list(listed[10:200:3]) == text[10:200:3]
    assert listed.at(np.array([7, 0, 7])) == [text[7], text[0], text[7]]
    assert list(listed.picked(np.arange(len(text)) % 3 == 1)) == text[1::3]
    assert list(listed.ordered()) == sorted(text)
    assert listed.json() == orjson.dumps(text).decode() and listed[:0].json() == "[]"
    assert key_hashes("r", listed).tolist() == key_hashes("r", text).tolist()
