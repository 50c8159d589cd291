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
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Literal

import duckdb

from relake.db import Db, connect
from relake.engine import Engine, plain_file
from relake.errors import InputError, duckdb_errors
from relake.lake import VERSION_FILE, Lake
from relake.record import Fingerprint, Version
from relake.report import Report, json_meta, rounded
from relake.sources import SideKind, read_side, resolve_side
from relake.sql import query
from relake.vectors import shard_rows

# the recipe version.json records: what is hashed (names_tag: the row's values, a unit separator, the column names)
ALGORITHM = ("relake-fp/2: sum mod 2^128 of md5(json_array(row values) || U+001F || json_array(column names)) as "
             "little-endian int; 256 buckets by digest[0]")
# the same algorithm (same values) as records of relake before issue 18 describe it: their text left the names out
_ALGORITHM_OLD_TEXT = ("relake-fp/2: sum mod 2^128 of md5(json_array(row values)) as little-endian int; 256 buckets by "
                       "digest[0]")
_SAME_ALGORITHM = frozenset({ALGORITHM, _ALGORITHM_OLD_TEXT})


def is_current(algorithm: str) -> bool:
    """Whether a recorded fingerprint was made by this relake's algorithm (however its record words the recipe)."""
    return algorithm in _SAME_ALGORITHM
_MOD = 1 << 128
# per-shard sums of DuckDB's hash() of whole rows (queries/audit/hash_sum.sql), kept in a version's stats so a
# build from it need not rehash every base row; hash() may change between DuckDB versions, so they are tagged
ROW_HASH = f"sum of DuckDB hash(row values) as HUGEINT, DuckDB {duckdb.__version__}"


def fingerprint_src(db: Db) -> Fingerprint:
    """Fingerprint of the rows of the view ``src`` (bind it first with ``db.bind_parquet("src", ...)``)."""
    rows = query("fingerprint/buckets").rows(db.con, names=names_tag(db.con.table("src").columns))
    return combine((int(b), int(n), int(lo), int(hi)) for b, n, lo, hi in rows)


def fingerprint_and_row_hashes(db: Db, paths: Sequence[Path]) -> tuple[Fingerprint, dict[str, Any] | None]:
    """The fingerprint of these files' rows and, from the same scan, each file's row-hash sum as the stats entry
    ``row_hash`` (``{"algorithm": ROW_HASH, "shards": [decimal sums]}``); ``None`` instead when the files
    have a column named ``filename`` or a file is listed twice (then only the fingerprint is computed)."""
    plain = [db.plain_path(p) for p in paths]
    src = db.con.read_parquet(plain)
    if len(set(plain)) != len(plain) or "filename" in (c.lower() for c in src.columns):
        src.create_view("src", replace=True)
        return fingerprint_src(db), None
    db.con.read_parquet(plain, filename=True).create_view("src_files", replace=True)
    rows = query("fingerprint/buckets_and_hashes").rows(db.con, names=names_tag(src.columns))
    fp = combine((int(b), int(n), int(lo), int(hi)) for f, b, n, lo, hi, _h in rows if f is None)
    sums = {str(f): int(h) for f, _b, _n, _lo, _hi, h in rows if f is not None}
    return fp, row_hash_stats([sums.get(p, 0) for p in plain])


def row_hash_stats(sums: Sequence[int]) -> dict[str, Any]:
    return {"algorithm": ROW_HASH, "shards": [str(x) for x in sums]}


def cached_row_hashes(stats: dict[str, Any], shards: int) -> list[int] | None:
    """A version's per-shard row-hash sums, when made by this DuckDB version for exactly ``shards`` shards."""
    entry = stats.get("row_hash")
    if not isinstance(entry, dict) or entry.get("algorithm") != ROW_HASH:
        return None
    values = entry.get("shards")
    if not isinstance(values, list) or len(values) != shards:
        return None
    try:
        return [int(v) for v in values]
    except (TypeError, ValueError):
        return None


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


# --- one job per file: for an engine (local threads or Ray tasks), folded with combine --------------------

FileSchema = tuple[tuple[str, str], ...]  # (column name, DuckDB type) in file order


def fingerprint_file(path: str, names: str, schema: FileSchema | None = None, deletes: str | None = None,
                     shard: int = 0) -> list[tuple[int, int, int, int]]:
    """Per-bucket ``(bucket, rows, sum_lo, sum_hi)`` of one parquet file (queries/fingerprint/buckets.sql in its
    own single-threaded DuckDB). ``names`` is the set's :func:`names_tag`; when ``schema`` is given the file must
    have exactly those columns and types, so the parts fold to what one scan of the whole set gives. With
    ``deletes`` the file is root shard ``shard`` of a vector version: its rows that vector keeps."""
    con = duckdb.connect(":memory:", config={"threads": 1})
    query("db/quiet").run(con)
    try:
        with duckdb_errors(f"{path}: cannot scan"), plain_file(path) as plain:
            rel = shard_rows(con, plain, deletes, shard)
            if schema is not None and _schema(rel) != schema:
                raise InputError(f"{path}: its columns or types differ from the first file's; a per-file "
                                 "fingerprint needs one schema (use --engine local)")
            rel.create_view("src")
            rows = query("fingerprint/buckets").rows(con, names=names)
    finally:
        con.close()
    return [(int(b), int(n), int(lo), int(hi)) for b, n, lo, hi in rows]


def _fingerprint_job(job: tuple[str, str, FileSchema, str | None, int]) -> list[tuple[int, int, int, int]]:
    return fingerprint_file(*job)


def _schema(rel: duckdb.DuckDBPyRelation) -> FileSchema:
    return tuple((n, str(t)) for n, t in zip(rel.columns, rel.dtypes, strict=True))


def fingerprint_files(paths: Sequence[Path], engine: Engine, deletes: Path | None = None) -> Fingerprint:
    """The fingerprint of these files (one schema) as one engine job per file; equal to a single scan's. With
    ``deletes``, of the rows of the vector version whose root shards they are."""
    if not paths:
        return combine([])
    files = [str(Path(p).absolute()) for p in paths]
    con = duckdb.connect(":memory:", config={"threads": 1})
    try:
        with duckdb_errors(f"{files[0]}: not readable as parquet"), plain_file(files[0]) as plain:
            schema = _schema(con.read_parquet(plain))
    finally:
        con.close()
    names = names_tag(n for n, _ in schema)
    vector = None if deletes is None else str(Path(deletes).absolute())
    parts = engine.map(_fingerprint_job, [(f, names, schema, vector, i) for i, f in enumerate(files)],
                       label=lambda j: j[0])
    return combine(x for part in parts for x in part)


# --- of any target: a version (recomputed, or read from its manifest) or a parquet set -------------------


FingerprintSource = Literal["computed", "manifest"]


def _value(fp: Fingerprint) -> str:
    return fp.value


def _bucket_table(buckets: dict[str, tuple[int, str]]) -> dict[str, dict[str, Any]]:
    return {k: {"rows": n, "value": v} for k, (n, v) in buckets.items()}


@dataclass(frozen=True)
class FingerprintReport(Report):
    """What ``relake fingerprint`` reports; ``buckets`` only when asked for (then also in its JSON)."""

    json_computed: ClassVar[tuple[str, ...]] = ("algorithm", "rows")

    target: str
    kind: SideKind
    source: FingerprintSource
    fingerprint: Fingerprint = field(metadata=json_meta(convert=_value))
    manifest_matches: bool | None  # computed for a version: does it equal the manifest's?
    seconds: float = field(metadata=json_meta(convert=rounded))
    buckets: dict[str, tuple[int, str]] | None = field(
        default=None, metadata=json_meta(convert=_bucket_table, omit_none=True))

    @property
    def algorithm(self) -> str:
        return self.fingerprint.algorithm

    @property
    def rows(self) -> int:
        return self.fingerprint.rows


def fingerprint_report(
    lake: Lake, spec: str, *, from_manifest: bool = False, memory_limit: str | None = None,
    engine: Engine | None = None, buckets: bool = False,
) -> FingerprintReport:
    """``relake fingerprint``: on ``engine`` when it is distributed (one job per file, ``fingerprint_target_on``),
    else here (``fingerprint_target``); with ``buckets`` the report carries the 256 bucket values."""
    if engine is not None and engine.distributed and not from_manifest:
        report = fingerprint_target_on(engine, lake, spec)
    else:
        report = fingerprint_target(lake, spec, from_manifest=from_manifest, memory_limit=memory_limit)
    return replace(report, buckets=report.fingerprint.buckets) if buckets else report


def fingerprint_target(
    lake: Lake, spec: str, *, from_manifest: bool = False, memory_limit: str | None = None
) -> FingerprintReport:
    """The fingerprint of a version (recomputed, or read from its manifest) or of any parquet set."""
    start = time.perf_counter()
    with connect(lake, memory_limit=memory_limit) as db:
        side = resolve_side(lake, db, spec)
        if from_manifest:
            if side.version is None:
                raise InputError(f"{spec}: --from-manifest needs a version (a name, or a folder with "
                                 f"{VERSION_FILE}); plain parquet files have no manifest")
            if not side.trusted:
                raise InputError(f"{spec}: its record has no file identities (written by an older relake, or a "
                                 f"release folder's), so it is not known to describe these files; run `relake "
                                 f"verify {spec}` once to confirm them, or drop --from-manifest")
            return FingerprintReport(spec, side.kind, "manifest", side.version.fingerprint, None,
                                     time.perf_counter() - start)
        read_side(db, side).create_view("src", replace=True)
        with duckdb_errors(f"{spec}: cannot scan"):
            fp = fingerprint_src(db)
    return FingerprintReport(spec, side.kind, "computed", fp, _matches(side.version, fp),
                             time.perf_counter() - start)


def fingerprint_target_on(engine: Engine, lake: Lake, target: str) -> FingerprintReport:
    """``relake fingerprint TARGET --engine ...``: a version's shards or a parquet set, one job per file."""
    start = time.perf_counter()
    with connect(lake, memory_limit="1GB", threads=1) as db:
        side = resolve_side(lake, db, target)
    fp = fingerprint_files(side.paths, engine, side.deletes)
    return FingerprintReport(target, side.kind, "computed", fp, _matches(side.version, fp),
                             time.perf_counter() - start)


def _matches(version: Version | None, fp: Fingerprint) -> bool | None:
    """Whether a recomputed fingerprint equals the version's manifest (None for a parquet set)."""
    if version is None:
        return None
    mf = version.fingerprint
    return (mf.rows, mf.value) == (fp.rows, fp.value)
