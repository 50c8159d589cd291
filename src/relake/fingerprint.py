"""Order- and shard-invariant content fingerprints.

Each row is rendered as DuckDB's JSON array of its values in column order (``json_array(*COLUMNS(*))``:
values and NULLs), followed by a unit separator and the JSON array of the column names (so a renamed column
changes every row hash), and hashed with md5; the digest read as a little-endian 128-bit integer is the row
hash H. The fingerprint of a set of rows is ``(count, sum(H) mod 2^128)``, overall and per bucket (bucket =
the digest's first byte, 256 buckets),
so re-ordering or re-sharding leaves it unchanged, any edit changes it, and differing buckets can be located.
md5 is a standard hash, never DuckDB's ``hash()``, so the value is reproducible outside DuckDB.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from relake.db import Db
from relake.manifest import Fingerprint
from relake.sql import query

ALGORITHM = "relake-fp/2: sum mod 2^128 of md5(json_array(row values)) as little-endian int; 256 buckets by digest[0]"
_MOD = 1 << 128


def fingerprint_src(db: Db) -> Fingerprint:
    """Fingerprint of the rows of the view ``src`` (bind it first with ``db.bind_parquet("src", ...)``)."""
    rows = query("fingerprint/buckets").rows(db.con, names=names_tag(db.con.table("src").columns))
    return combine((int(b), int(n), int(lo), int(hi)) for b, n, lo, hi in rows)


def names_tag(columns: Iterable[str]) -> str:
    """What each row's JSON is followed by before hashing: a unit separator and the column names."""
    return "\x1f" + json.dumps(list(columns), separators=(",", ":"), ensure_ascii=False)


def combine(buckets: Iterable[tuple[int, int, int, int]]) -> Fingerprint:
    """Fold per-bucket ``(bucket, rows, sum_lo, sum_hi)`` partial sums (from any number of shards)."""
    per: dict[int, list[int]] = {}
    for bucket, n, lo, hi in buckets:
        acc = per.setdefault(bucket, [0, 0])
        acc[0] += n
        acc[1] = (acc[1] + lo + (hi << 64)) % _MOD
    out = {f"{b:02x}": (n, f"{v:032x}") for b, (n, v) in sorted(per.items())}
    total = sum(v for _, v in per.values()) % _MOD
    rows = sum(n for n, _ in per.values())
    return Fingerprint(algorithm=ALGORITHM, rows=rows, value=f"{total:032x}", buckets=out)


def subtract(whole: Fingerprint, part: Fingerprint) -> Fingerprint:
    """The fingerprint of ``whole`` without the rows of ``part`` (a sub-multiset of it), bucket by bucket."""
    per: list[tuple[int, int, int, int]] = []
    for b in sorted(set(whole.buckets) | set(part.buckets)):
        wn, wv = whole.buckets.get(b, (0, "0" * 32))
        pn, pv = part.buckets.get(b, (0, "0" * 32))
        if wn - pn:
            value = (int(wv, 16) - int(pv, 16)) % _MOD
            per.append((int(b, 16), wn - pn, value & ((1 << 64) - 1), value >> 64))
    return combine(per)
