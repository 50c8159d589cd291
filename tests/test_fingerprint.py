"""fingerprint.py: the order- and shard-invariant content fingerprint, checked against an independent
pure-Python computation (json rendering + hashlib.md5), and its invariances and sensitivities."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from helpers import LAION_SCHEMA, laion_table, shuffled, write_split, write_table
from relake.db import connect
from relake.fingerprint import combine, fingerprint_src
from relake.ingest import ingest_version
from relake.lake import Lake
from relake.record import Fingerprint
from relake.sql import query

MOD = 1 << 128


def md5_digest(text: str) -> bytes:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).digest()


def expected_from_strings(rendered: Sequence[str]) -> Fingerprint:
    """The documented definition, in plain Python: H = md5(json) as little-endian int; sum mod 2^128;
    buckets by the digest's first byte."""
    total = 0
    buckets: dict[int, list[int]] = {}
    for s in rendered:
        d = md5_digest(s)
        h = int.from_bytes(d, "little")
        total = (total + h) % MOD
        acc = buckets.setdefault(d[0], [0, 0])
        acc[0] += 1
        acc[1] = (acc[1] + h) % MOD
    return Fingerprint(
        algorithm="",
        rows=len(rendered),
        value=f"{total:032x}",
        buckets={f"{b:02x}": (n, f"{v:032x}") for b, (n, v) in sorted(buckets.items())},
    )


def py_json(row: dict[str, Any]) -> str:
    """DuckDB's json_array rendering of a flat row's values, for ordinary values (no exponent floats)."""
    return json.dumps(list(row.values()), separators=(",", ":"), ensure_ascii=False) + tag(row)


def tag(row: dict[str, Any]) -> str:
    """The column-name suffix each row string gets before md5 (written out here, not taken from the code)."""
    return "\x1f" + json.dumps(list(row), separators=(",", ":"), ensure_ascii=False)


def fp_of(paths: Sequence[Path], threads: int | None = None) -> Fingerprint:
    with connect(threads=threads) as db:
        db.bind_parquet("src", list(paths))
        return fingerprint_src(db)


def same(a: Fingerprint, b: Fingerprint) -> bool:
    return (a.rows, a.value, a.buckets) == (b.rows, b.value, b.buckets)


TINY = [
    {"SAMPLE_ID": 1, "URL": "https://a.example/x?y=1&z=[2]", "TEXT": None, "punsafe": 0.0},
    {"SAMPLE_ID": -2, "URL": "https://b.example/é", "TEXT": 'quote " back \\ nl \n tab \t ü 😀', "punsafe": 0.37},
    {"SAMPLE_ID": 2**62, "URL": "u", "TEXT": "", "punsafe": 0.5},
    {"SAMPLE_ID": 3, "URL": "u", "TEXT": "x", "punsafe": 123456789.125},
    {"SAMPLE_ID": 4, "URL": "u", "TEXT": None, "punsafe": None},
    {"SAMPLE_ID": 4, "URL": "u", "TEXT": None, "punsafe": None},  # an exact duplicate counts twice
]


def test_tiny_table_matches_pure_python(tmp_path: Path) -> None:
    path = write_table(pa.Table.from_pylist(TINY, schema=LAION_SCHEMA), tmp_path / "tiny.parquet")
    expected = expected_from_strings([py_json(r) for r in TINY])
    got = fp_of([path])
    assert got.rows == 6
    assert got.value == expected.value
    assert got.buckets == expected.buckets
    assert got.algorithm.startswith("relake-fp/2")


def test_matches_python_over_duckdb_json(tmp_path: Path) -> None:
    """1,000 rows: the row strings come from DuckDB's json_array, md5 and the sums from Python."""
    paths = write_split(laion_table(0, 1000), tmp_path / "s", 3)
    con = duckdb.connect()
    try:
        rendered = [r[0] for r in con.sql("SELECT CAST(json_array(*COLUMNS(*)) AS VARCHAR) FROM read_parquet($p) t",
                                          params={"p": [str(p) for p in paths]}).fetchall()]
    finally:
        con.close()
    assert len(rendered) == 1000
    assert rendered[0] == '[0,"https://img0.example.com/a/0.jpg",null,0.0]'
    suffix = '\x1f["SAMPLE_ID","URL","TEXT","punsafe"]'
    rendered = [r + suffix for r in rendered]
    expected = expected_from_strings(rendered)
    got = fp_of(paths)
    assert (got.rows, got.value, got.buckets) == (expected.rows, expected.value, expected.buckets)
    assert sum(n for n, _ in got.buckets.values()) == 1000
    # with 1,000 rows most of the 256 buckets are used, so bucket lookup is meaningful
    assert len(got.buckets) > 200


def test_empty_input(tmp_path: Path) -> None:
    path = write_table(laion_table(0, 0), tmp_path / "empty.parquet")
    got = fp_of([path])
    assert (got.rows, got.value, got.buckets) == (0, "0" * 32, {})


def test_reshuffled_and_resharded_copy_has_the_same_fingerprint(tmp_path: Path) -> None:
    table = laion_table(0, 2000)
    original = write_split(table, tmp_path / "orig", 4)
    copy = write_split(shuffled(table, seed=7), tmp_path / "copy", 7, prefix="other", compression="zstd",
                       row_group_size=100)
    ids = [i for p in copy for i in pq.read_table(p).column("SAMPLE_ID").to_pylist()]
    assert sorted(ids) == list(range(2000)) and ids != sorted(ids)
    a, b = fp_of(original), fp_of(copy)
    assert same(a, b)
    assert same(a, fp_of(list(reversed(copy)), threads=1))


def test_versions_of_reshuffled_copy_agree(tmp_path: Path) -> None:
    """The same through ingest: the manifests of the two versions carry equal fingerprints."""
    table = laion_table(0, 500)
    write_split(table, tmp_path / "orig", 2)
    write_split(shuffled(table, seed=3), tmp_path / "copy", 5)
    lake = Lake.at(tmp_path / "lake")
    v1 = ingest_version(lake, "orig", [str(tmp_path / "orig")])
    v2 = ingest_version(lake, "copy", [str(tmp_path / "copy")], copy=True)
    assert len(v1.shards) == 2 and len(v2.shards) == 5
    assert same(v1.fingerprint, v2.fingerprint)
    assert lake.load_version("copy").fingerprint == v2.fingerprint


def test_one_changed_caption_changes_the_value_and_only_its_buckets(tmp_path: Path) -> None:
    rows = laion_table(0, 1000).to_pylist()
    changed = [dict(r) for r in rows]
    victim = 123
    changed[victim]["TEXT"] = changed[victim]["TEXT"] + "!"
    a = fp_of(write_split(pa.Table.from_pylist(rows, schema=LAION_SCHEMA), tmp_path / "a", 2))
    b = fp_of(write_split(pa.Table.from_pylist(changed, schema=LAION_SCHEMA), tmp_path / "b", 3))
    assert a.rows == b.rows == 1000
    assert a.value != b.value
    differing = {k for k in set(a.buckets) | set(b.buckets) if a.buckets.get(k) != b.buckets.get(k)}
    affected = {f"{md5_digest(py_json(rows[victim]))[0]:02x}", f"{md5_digest(py_json(changed[victim]))[0]:02x}"}
    assert differing == affected
    assert 1 <= len(differing) <= 2


@pytest.mark.parametrize(
    "edit",
    ["null-to-empty", "swap-captions", "duplicate-row", "drop-row", "id-plus-one", "float-ulp", "rename-column"],
)
def test_edits_change_the_fingerprint(tmp_path: Path, edit: str) -> None:
    base = laion_table(0, 200)
    rows = base.to_pylist()
    schema = LAION_SCHEMA
    if edit == "null-to-empty":
        assert rows[0]["TEXT"] is None
        rows[0]["TEXT"] = ""
    elif edit == "swap-captions":
        rows[1]["TEXT"], rows[2]["TEXT"] = rows[2]["TEXT"], rows[1]["TEXT"]
    elif edit == "duplicate-row":
        rows.append(dict(rows[5]))
    elif edit == "drop-row":
        rows.pop(5)
    elif edit == "id-plus-one":
        rows[-1]["SAMPLE_ID"] += 1
    elif edit == "float-ulp":
        import math

        rows[9]["punsafe"] = math.nextafter(rows[9]["punsafe"], 2.0)
    elif edit == "rename-column":
        schema = pa.schema([("SAMPLE_ID", pa.int64()), ("URL", pa.string()), ("text", pa.string()),
                            ("punsafe", pa.float64())])
        rows = [{("text" if k == "TEXT" else k): v for k, v in r.items()} for r in rows]
    a = fp_of([write_table(base, tmp_path / "a.parquet")])
    b = fp_of([write_table(pa.Table.from_pylist(rows, schema=schema), tmp_path / "b.parquet")])
    assert a.value != b.value


def test_combine_of_per_shard_partial_sums_equals_the_whole(tmp_path: Path) -> None:
    paths = write_split(laion_table(0, 900), tmp_path / "s", 3)
    partial: list[tuple[int, int, int, int]] = []
    with connect() as db:
        for p in paths:
            db.bind_parquet("src", [p])
            names = '\x1f["SAMPLE_ID","URL","TEXT","punsafe"]'
            for b, n, lo, hi in query("fingerprint/buckets").rows(db.con, names=names):
                partial.append((int(b), int(n), int(lo), int(hi)))
    assert same(combine(partial), fp_of(paths))


def test_combine_wraps_mod_2_128() -> None:
    big = (1 << 64) - 1
    fp = combine([(0, 3, 3 * big, 3 * big), (1, 1, 5, 0), (0, 1, 1, 0)])
    expected0 = (3 * big + (3 * big << 64) + 1) % MOD
    assert fp.rows == 5
    assert fp.buckets == {"00": (4, f"{expected0:032x}"), "01": (1, f"{5:032x}")}
    assert fp.value == f"{(expected0 + 5) % MOD:032x}"
