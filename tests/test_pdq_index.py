"""The multi-index Hamming search (relake.hamming) returns exactly a brute-force scan's pairs, and image-pdq
entries are parsed strictly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relake.hamming import HammingIndex, brute_force, chunking, hex_hashes
from relake.kinds import BLOCKLIST_KINDS, MalformedEntry, normalise_pdq, parse_pdq


def _near(rng: np.random.Generator, h: np.ndarray, d: int) -> np.ndarray:
    bits = np.unpackbits(h)
    bits[rng.choice(256, size=d, replace=False)] ^= 1
    return np.packbits(bits)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), listed=st.integers(0, 300), queries=st.integers(0, 40),
       max_distance=st.sampled_from([0, 1, 7, 15, 31, 32, 45, 64]))
def test_the_index_finds_exactly_what_a_brute_force_scan_finds(seed: int, listed: int, queries: int,
                                                               max_distance: int) -> None:
    rng = np.random.default_rng(seed)
    table = rng.integers(0, 256, (listed, 32), dtype=np.uint8)
    if listed:  # duplicates in the list
        table[: listed // 10] = table[listed - listed // 10:]
    q = rng.integers(0, 256, (queries, 32), dtype=np.uint8)
    for i in range(min(queries, listed)):  # most queries have a listed hash at or around the threshold
        d = int(rng.integers(max(0, max_distance - 2), max_distance + 3))
        q[i] = _near(rng, table[int(rng.integers(0, listed))], min(d, 256))
    want = brute_force(table, q, max_distance)
    for scan_max in (0, 10_000):  # the multi-index search, and the scan short lists get
        got = HammingIndex(table, max_distance, scan_max=scan_max).search(q)
        for g, w in zip(got, want, strict=True):
            assert g.tolist() == w.tolist()


def test_the_chunking_guarantees_one_chunk_within_the_probe_radius() -> None:
    for d in range(0, 100):
        widths, radius = chunking(d)
        assert sum(widths) == 256 and max(widths) <= 62
        assert (radius + 1) * len(widths) > d  # pigeonhole: d bits over m chunks leave one with <= d // m
    assert chunking(31) == ([24, 24, 24] + [23] * 8, 2)


def test_hex_hashes_keeps_only_64_hex_digits() -> None:
    good = "ab" * 32
    arr, rows = hex_hashes([good, None, "xyz", good.upper() + ",80", "", "ab" * 16])
    assert rows.tolist() == [0, 3]
    assert bytes(arr[0]).hex() == good and bytes(arr[1]).hex() == good


H = "54a977c221d14c1c43ba5e6e21d4a13989a3553f1462611cbb85fda7be83b677"


@pytest.mark.parametrize(("value", "normal"), [
    (H, H), (H.upper(), H), (f"{H},100", f"{H},100"), (f"{H} 7", f"{H},7"), (f"{H}\t 0", f"{H},0"),
    (f"{H} , 55", f"{H},55"),
])
def test_pdq_entries_normalise(value: str, normal: str) -> None:
    assert normalise_pdq(value) == normal
    assert BLOCKLIST_KINDS["image-pdq"].normalise(value) == normal


@pytest.mark.parametrize(("value", "reason"), [
    ("ab" * 16, "32 hex digits: looks like a md5 hash, not a PDQ hash (wrong kind)"),
    ("ab" * 20, "40 hex digits: looks like a sha1 hash, not a PDQ hash (wrong kind)"),
    ("ab" * 31, "62 hex digits, expected 64 for a PDQ hash"),
    (f"{H},101", "quality '101' is not an integer from 0 to 100"),
    (f"{H},-1", "quality '-1' is not an integer from 0 to 100"),
    (f"{H},50,1", "quality '50,1' is not an integer from 0 to 100"),
    ("https://x.org/a.jpg", "looks like a URL, not a PDQ hash (wrong kind)"),
    (f'"{H}"', "enclosed in quotes"),
    ("g" * 64, "not hexadecimal: expected a PDQ hash of 64 hex digits, optionally ',quality'"),
])
def test_malformed_pdq_entries_say_why(value: str, reason: str) -> None:
    with pytest.raises(MalformedEntry) as err:
        parse_pdq(value)
    assert err.value.reason == reason
