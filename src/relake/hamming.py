"""Exact Hamming-radius search over 256-bit hashes (PDQ) by multi-index hashing, in numpy.

Multi-index hashing (Norouzi, Punjani and Fleet, "Fast search in Hamming space with multi-index hashing", 2012):
the 256 bits are split into ``m`` chunks; when two hashes differ in at most ``d`` bits, one of the chunks differs
in at most ``r = d // m`` bits (pigeonhole). Each chunk of every listed hash is kept sorted; a query probes, per
chunk, its own chunk value and every value within ``r`` flipped bits (``searchsorted``), and the candidates
found are checked on all 256 bits. The result is exactly a brute-force scan's (``brute_force`` is that scan,
for tests). With ``d = 31`` the index uses ``m = 11`` chunks of 23-24 bits and ``r = 2``: about 3,100 probes
per query whatever the list's size, and a random listed hash is a candidate with probability about
3,100 / 2^23: one stray candidate per query at 2.7 million entries. So M entries × N images cost about N × 3,100
binary searches, not N × M comparisons.

Hashes are 32 bytes each (``np.uint8``, shape ``(n, 32)``), bit 0 the most significant of byte 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from itertools import combinations

import numpy as np
import numpy.typing as npt

__all__ = ["HASH_BYTES", "HammingIndex", "brute_force", "chunking", "hex_hashes"]

HASH_BYTES = 32
_BITS = HASH_BYTES * 8
_MIN_CHUNKS = 5  # chunks of at most 52 bits: a chunk value fits an int64
_BLOCK = 1 << 16  # hashes split into chunk values per step (bounds the temporary bit matrix)
_QUERY_BLOCK = 256  # queries probed per step
_SCAN_MAX = 4096  # lists up to this size are scanned (every pair): cheaper than ~3,100 binary searches a query
_SCAN_PAIRS = 1 << 15  # pairs compared per step of a scan
_SORT_NEEDLES = 1 << 16  # above this many listed hashes, probes are sorted before the binary searches

Hashes = npt.NDArray[np.uint8]
Pairs = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]


def chunking(max_distance: int) -> tuple[list[int], int]:
    """The chunk widths (bits, summing to 256) and probe radius used for ``max_distance``: ``m`` chunks with
    ``m = max(5, d // 3 + 1)``, so the radius ``d // m`` is at most 2 (ten or so bits would need up to 2,600
    probes a chunk)."""
    if not 0 <= max_distance < _BITS:
        raise ValueError(f"max_distance {max_distance} is outside 0..{_BITS - 1}")
    m = max(_MIN_CHUNKS, max_distance // 3 + 1)
    base, extra = divmod(_BITS, m)
    widths = [base + 1] * extra + [base] * (m - extra)
    return widths, max_distance // m


def hex_hashes(values: Sequence[str | None]) -> tuple[Hashes, npt.NDArray[np.int64]]:
    """The hashes among ``values`` that are 64 hex digits (any case, anything after them from a ',' or space on
    ignored: an ``image-pdq`` entry's quality) as ``(k, 32)`` bytes, and the positions in ``values`` they come
    from; anything else (NULL, another length, not hex) is left out."""
    out: list[bytes] = []
    rows: list[int] = []
    for i, v in enumerate(values):
        if v is None:
            continue
        digits = v.strip().split(",", 1)[0].split(None, 1)[0] if v.strip() else ""
        if len(digits) != _BITS // 4:
            continue
        try:
            out.append(bytes.fromhex(digits))
        except ValueError:
            continue
        rows.append(i)
    arr = np.frombuffer(b"".join(out), dtype=np.uint8).reshape(-1, HASH_BYTES)
    return arr, np.array(rows, dtype=np.int64)


@cache
def _masks(width: int, radius: int) -> npt.NDArray[np.int64]:
    """Every ``width``-bit value with at most ``radius`` bits set (the XOR masks of one chunk's probes)."""
    out = [0]
    for r in range(1, radius + 1):
        out += [sum(1 << b for b in bits) for bits in combinations(range(width), r)]
    return np.array(out, dtype=np.int64)


def _chunk_values(hashes: Hashes, widths: list[int]) -> list[npt.NDArray[np.int64]]:
    """Each chunk's value (its bits read most significant first) for every hash, per chunk."""
    n = hashes.shape[0]
    out = [np.empty(n, dtype=np.int64) for _ in widths]
    for lo in range(0, n, _BLOCK):
        bits = np.unpackbits(hashes[lo:lo + _BLOCK], axis=1).astype(np.int64)
        start = 0
        for j, w in enumerate(widths):
            weights = np.left_shift(np.int64(1), np.arange(w - 1, -1, -1, dtype=np.int64))
            out[j][lo:lo + bits.shape[0]] = bits[:, start:start + w] @ weights
            start += w
    return out


def _words(hashes: Hashes) -> npt.NDArray[np.uint64]:
    return np.ascontiguousarray(hashes).view(np.uint64).reshape(-1, HASH_BYTES // 8)


def _distances(a: npt.NDArray[np.uint64], b: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    """Hamming distance of each row of ``a`` to the same row of ``b`` (both ``(k, 4)`` words)."""
    out: npt.NDArray[np.int64] = np.bitwise_count(np.bitwise_xor(a, b)).sum(axis=1, dtype=np.int64)
    return out


def _check(hashes: Hashes, name: str) -> Hashes:
    arr = np.asarray(hashes)
    if arr.dtype != np.uint8 or arr.ndim != 2 or arr.shape[1] != HASH_BYTES:
        raise ValueError(f"{name}: expected uint8 hashes of shape (n, {HASH_BYTES}), got {arr.dtype} {arr.shape}")
    return np.ascontiguousarray(arr)


class HammingIndex:
    """The listed hashes, indexed for exact radius search up to ``max_distance`` bits (see the module)."""

    def __init__(self, hashes: Hashes, max_distance: int, *, scan_max: int = _SCAN_MAX) -> None:
        """``scan_max``: lists up to this size are searched by comparing every pair (no index is built)."""
        self.hashes = _check(hashes, "listed hashes")
        self.max_distance = max_distance
        self.scan_max = scan_max
        self.widths, self.radius = chunking(max_distance)
        self._words = _words(self.hashes)
        self._order: list[npt.NDArray[np.int64]] = []
        self._sorted: list[npt.NDArray[np.int64]] = []
        for values in _chunk_values(self.hashes, self.widths) if len(self) > scan_max else []:
            order = np.argsort(values, kind="stable")
            self._order.append(order)
            self._sorted.append(values[order])

    def __len__(self) -> int:
        return int(self.hashes.shape[0])

    def search(self, queries: Hashes) -> Pairs:
        """Every (query row, listed row, distance) with distance ≤ ``max_distance``, ordered by query row, then
        distance, then listed row."""
        queries = _check(queries, "queries")
        found: list[Pairs] = []
        for lo in range(0, queries.shape[0], _QUERY_BLOCK):
            q, e, d = self._search_block(queries[lo:lo + _QUERY_BLOCK])
            found.append((q + lo, e, d))
        q = np.concatenate([f[0] for f in found]) if found else np.empty(0, np.int64)
        e = np.concatenate([f[1] for f in found]) if found else np.empty(0, np.int64)
        d = np.concatenate([f[2] for f in found]) if found else np.empty(0, np.int64)
        order = np.lexsort((e, d, q))
        return q[order], e[order], d[order]

    def _search_block(self, queries: Hashes) -> Pairs:
        n = len(self)
        empty = np.empty(0, np.int64)
        if n == 0 or queries.shape[0] == 0:
            return empty, empty, empty
        if n <= self.scan_max:
            return _scan(self._words, _words(queries), self.max_distance)
        cand_q: list[npt.NDArray[np.int64]] = []
        cand_e: list[npt.NDArray[np.int64]] = []
        for j, values in enumerate(_chunk_values(queries, self.widths)):
            masks = _masks(self.widths[j], self.radius)
            probes = np.bitwise_xor(values[:, None], masks[None, :]).ravel()
            by_value = np.arange(probes.size, dtype=np.int64)
            if n > _SORT_NEEDLES:  # sorted needles: binary searches in a large list that stay in cache (4x faster)
                by_value = np.argsort(probes)
                probes = probes[by_value]
            starts = np.searchsorted(self._sorted[j], probes, side="left")
            counts = np.searchsorted(self._sorted[j], probes, side="right") - starts
            total = int(counts.sum())
            if total == 0:
                continue
            owner = np.repeat(by_value // masks.size, counts)
            offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
            cand_q.append(owner)
            cand_e.append(self._order[j][np.repeat(starts, counts) + offsets])
        if not cand_q:
            return empty, empty, empty
        pair = np.unique(np.concatenate(cand_q) * n + np.concatenate(cand_e))
        q, e = np.divmod(pair, n)
        d = _distances(_words(queries)[q], self._words[e])
        keep = d <= self.max_distance
        return q[keep], e[keep], d[keep]


def _scan(listed: npt.NDArray[np.uint64], queries: npt.NDArray[np.uint64], max_distance: int) -> Pairs:
    """Every (query, listed, distance) within ``max_distance``, by comparing every pair (a short list)."""
    qs, es, ds = [], [], []
    step = max(1, _SCAN_PAIRS // max(1, listed.shape[0]))
    for lo in range(0, queries.shape[0], step):
        d = np.bitwise_count(np.bitwise_xor(queries[lo:lo + step, None, :], listed[None, :, :])).sum(
            axis=2, dtype=np.int64)
        q, e = np.nonzero(d <= max_distance)
        qs.append(q.astype(np.int64) + lo)
        es.append(e.astype(np.int64))
        ds.append(d[q, e])
    return np.concatenate(qs), np.concatenate(es), np.concatenate(ds)


def brute_force(listed: Hashes, queries: Hashes, max_distance: int) -> Pairs:
    """What ``HammingIndex(listed, max_distance).search(queries)`` returns, by comparing every pair (tests)."""
    listed, queries = _check(listed, "listed hashes"), _check(queries, "queries")
    lw, qw = _words(listed), _words(queries)
    qs, es, ds = [], [], []
    for i in range(qw.shape[0]):
        d = np.bitwise_count(np.bitwise_xor(lw, qw[i])).sum(axis=1, dtype=np.int64)
        hit = np.flatnonzero(d <= max_distance)
        qs.append(np.full(hit.size, i, np.int64))
        es.append(hit.astype(np.int64))
        ds.append(d[hit])
    q = np.concatenate(qs) if qs else np.empty(0, np.int64)
    e = np.concatenate(es) if es else np.empty(0, np.int64)
    d = np.concatenate(ds) if ds else np.empty(0, np.int64)
    order = np.lexsort((e, d, q))
    return q[order], e[order], d[order]
