"""diff.py and `relake diff` / `relake fingerprint`: every diff is checked against an independent model in
plain Python (dicts over rows read with pyarrow), on v1/v2 pairs with known edits, and by properties."""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import random
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import Cli, error_line, read_rows, shuffled, write_split, write_table
from relake.diff import DiffSummary, diff_versions
from relake.errors import InputError
from relake.fingerprint import fingerprint_target
from relake.ingest import ingest_version
from relake.lake import Lake
from relake.record import OwnedFile
from relake.sources import resolve_sources

# --- the independent model ----------------------------------------------------------------------------


@dataclasses.dataclass
class Model:
    compared: list[str]
    key: list[str]
    added: dict[Any, dict[str, Any]]  # key -> B's values (A's names)
    removed: dict[Any, dict[str, Any]]  # key -> A's values
    changed: dict[Any, tuple[list[str], dict[str, Any], dict[str, Any]]]  # key -> (columns, before, after)
    rows_a: int
    rows_b: int
    removed_a_rows: list[dict[str, Any]]  # the raw A rows removed (for domains / shards)


def _arrow_types(paths: Sequence[Path]) -> dict[str, pa.DataType]:
    schema = pq.read_schema(paths[0])
    return {f.name: f.type for f in schema}


def model_diff(
    a_paths: Sequence[Path], b_paths: Sequence[Path], *, key: list[str] | None = None,
    maps: dict[str, str] | None = None,
) -> Model:
    """Keyed (``key`` given, A's names) or keyless (``key=[]``) diff, computed with Python dicts."""
    maps = maps or {}
    a_rows, b_rows = read_rows(a_paths), read_rows(b_paths)
    ta, tb = _arrow_types(a_paths), _arrow_types(b_paths)
    b_of = {c: maps.get(c, c) for c in ta if maps.get(c, c) in tb and (c in maps or c not in maps.values())}
    compared = [c for c in ta if c in b_of]
    as_text = {c for c in compared if ta[c] != tb[b_of[c]]}

    def norm(row: dict[str, Any], side: str) -> dict[str, Any]:
        out = {}
        for c in compared:
            v = row[c if side == "a" else b_of[c]]
            out[c] = None if v is None else (str(v) if c in as_text else v)
        return out

    na = [norm(r, "a") for r in a_rows]
    nb = [norm(r, "b") for r in b_rows]
    values = [c for c in compared if c not in (key or [])]
    if key:
        da = {tuple(r[k] for k in key): (r, raw) for r, raw in zip(na, a_rows, strict=True)}
        db = {tuple(r[k] for k in key): r for r in nb}
        assert len(da) == len(na) and len(db) == len(nb), "the model needs unique keys"
        added = {k: v for k, v in db.items() if k not in da}
        removed = {k: v[0] for k, v in da.items() if k not in db}
        changed = {}
        for k, (ra, _raw) in da.items():
            if k in db:
                cols = [c for c in values if ra[c] != db[k][c]]
                if cols:
                    changed[k] = (cols, ra, db[k])
        removed_raw = [raw for k, (_r, raw) in da.items() if k not in db]
        return Model(compared, key, added, removed, changed, len(na), len(nb), removed_raw)
    ca = collections.Counter(tuple(r[c] for c in compared) for r in na)
    cb = collections.Counter(tuple(r[c] for c in compared) for r in nb)
    removed_c, added_c = ca - cb, cb - ca
    removed_raw = []
    left = dict(removed_c)
    for r, raw in zip(na, a_rows, strict=True):
        t = tuple(r[c] for c in compared)
        if left.get(t, 0) > 0:
            left[t] -= 1
            removed_raw.append(raw)
    return Model(compared, [], {t: n for t, n in added_c.items()}, {t: n for t, n in removed_c.items()}, {},
                 len(na), len(nb), removed_raw)


def model_counts(m: Model) -> dict[str, int]:
    if m.key:
        added, removed, changed = len(m.added), len(m.removed), len(m.changed)
    else:
        added, removed, changed = sum(m.added.values()), sum(m.removed.values()), 0
    return {"a": m.rows_a, "b": m.rows_b, "added": added, "removed": removed, "changed": changed,
            "unchanged": m.rows_a - removed - changed}


def model_column_changes(m: Model) -> dict[str, int]:
    return dict(collections.Counter(c for cols, _, _ in m.changed.values() for c in cols))


def host(url: str | None) -> str | None:
    if url is None or "://" not in url:
        return None
    return urlsplit(url.strip()).hostname


def assert_summary_matches(s: DiffSummary, m: Model) -> None:
    assert s.to_dict()["rows"] == model_counts(m)
    assert s.column_changes == model_column_changes(m)
    assert s.compared == m.compared
    assert s.key == m.key


def assert_out_matches(out: Path, m: Model) -> None:
    """The --out parquet holds exactly the model's rows, sorted by key."""
    rows = pq.read_table(out).to_pylist()
    values = [c for c in m.compared if c not in m.key]
    if m.key:
        keys = [tuple(r[k] for k in m.key) for r in rows]
        assert keys == sorted(keys, key=lambda t: tuple((x is None, x) for x in t))
        got = {tuple(r[k] for k in m.key): r for r in rows}
        assert len(got) == len(rows)
        want_keys = set(m.added) | set(m.removed) | set(m.changed)
        assert set(got) == want_keys
        for k, r in got.items():
            before = {c: r["before_" + c] for c in values}
            after = {c: r["after_" + c] for c in values}
            if k in m.added:
                assert (r["change"], r["changed_columns"]) == ("added", [])
                assert before == dict.fromkeys(values) and after == {c: m.added[k][c] for c in values}
            elif k in m.removed:
                assert (r["change"], r["changed_columns"]) == ("removed", [])
                assert after == dict.fromkeys(values) and before == {c: m.removed[k][c] for c in values}
            else:
                cols, ra, rb = m.changed[k]
                assert (r["change"], r["changed_columns"]) == ("changed", cols)
                assert before == {c: ra[c] for c in values} and after == {c: rb[c] for c in values}
    else:
        assert [r["row_md5"] for r in rows] == sorted(r["row_md5"] for r in rows)
        removed = collections.Counter(tuple(r["before_" + c] for c in values) for r in rows if r["change"] == "removed")
        added = collections.Counter(tuple(r["after_" + c] for c in values) for r in rows if r["change"] == "added")
        assert dict(removed) == m.removed and dict(added) == m.added


# --- v1 / v2 with known edits ---------------------------------------------------------------------------

V1_SCHEMA = pa.schema([("SAMPLE_ID", pa.int64()), ("URL", pa.string()), ("TEXT", pa.string()),
                       ("WIDTH", pa.int32()), ("HEIGHT", pa.int32()), ("similarity", pa.float64())])
HOSTS = ["a.example.com", "B.example.org", "c.example.net", "d.example.io"]


def v1_rows(n: int = 60) -> list[dict[str, Any]]:
    rows = [{"SAMPLE_ID": 1000 + i, "URL": f"https://{HOSTS[i % 4]}/img/{i}.jpg",
             "TEXT": None if i % 9 == 0 else f"caption {i}", "WIDTH": 100 + i, "HEIGHT": 50 + i % 7,
             "similarity": (i % 10) / 8} for i in range(n)]
    rows[5]["URL"] = rows[4]["URL"]  # a duplicated URL
    return rows


def v2_rows(v1: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """v1 with 6 rows removed, 5 captions changed (one to NULL, one from NULL), one HEIGHT changed, 4 rows
    added (one reusing a URL, one with a NULL caption); WIDTH becomes text and URL is renamed url."""
    rows = [dict(r) for r in v1 if not 10 <= r["SAMPLE_ID"] - 1000 < 16]
    by_id = {r["SAMPLE_ID"]: r for r in rows}
    for i in (20, 21, 22, 23):
        by_id[1000 + i]["TEXT"] = f"new caption {i}"
    by_id[1024]["TEXT"] = None
    by_id[1027]["TEXT"] = "was NULL"  # 27 % 9 == 0
    by_id[1030]["HEIGHT"] = 999
    by_id[1030]["TEXT"] = "both changed"
    rows += [{"SAMPLE_ID": 5000 + j, "URL": f"https://{HOSTS[j % 4]}/new/{j}.jpg", "TEXT": f"added {j}",
              "WIDTH": 10 * j, "HEIGHT": 7, "similarity": 0.5} for j in range(4)]
    rows[-1]["URL"] = v1[30]["URL"]
    rows[-2]["TEXT"] = None
    return [{"SAMPLE_ID": r["SAMPLE_ID"], "url": r["URL"], "TEXT": r["TEXT"], "WIDTH": str(r["WIDTH"]),
             "HEIGHT": r["HEIGHT"], "similarity": r["similarity"]} for r in rows]


V2_SCHEMA = pa.schema([("SAMPLE_ID", pa.int64()), ("url", pa.string()), ("TEXT", pa.string()),
                       ("WIDTH", pa.string()), ("HEIGHT", pa.int32()), ("similarity", pa.float64())])


@pytest.fixture
def pair(tmp_path: Path) -> tuple[list[Path], list[Path]]:
    """v1 in 2 shards; v2 (edited, renamed, retyped) re-ordered into 3 shards."""
    v1 = v1_rows()
    a = write_split(pa.Table.from_pylist(v1, schema=V1_SCHEMA), tmp_path / "v1", 2)
    b = write_split(shuffled(pa.Table.from_pylist(v2_rows(v1), schema=V2_SCHEMA), 3), tmp_path / "v2", 3,
                    prefix="shard")
    return a, b


def test_keyed_diff_with_map_matches_model(lake: Lake, pair: tuple[list[Path], list[Path]], tmp_path: Path) -> None:
    a, b = pair
    out = tmp_path / "d.parquet"
    s = diff_versions(lake, "v1/", "v2", maps=["URL=url"], out=str(out))
    m = model_diff(a, b, key=["SAMPLE_ID"], maps={"URL": "url"})
    assert_summary_matches(s, m)
    assert model_counts(m) == {"a": 60, "b": 58, "added": 4, "removed": 6, "changed": 7, "unchanged": 47}
    assert s.column_changes == {"TEXT": 7, "HEIGHT": 1}
    assert s.schema["retyped"] == [{"name": "WIDTH", "a": "INTEGER", "b": "VARCHAR"}]
    assert s.schema["added"] == [] and s.schema["removed"] == []
    assert s.schema["mapped"] == [{"a": "URL", "b": "url"}]
    assert_out_matches(out, m)
    assert s.out_rows == 17
    want_hosts = collections.Counter(host(r["URL"]) for r in m.removed_a_rows)
    assert dict(s.removed_by_domain) == dict(want_hosts)
    assert s.removed_by_domain == sorted(want_hosts.items(), key=lambda x: (-x[1], x[0] or ""))
    # removed rows 10..15 sit in v1's first shard (rows 0..29)
    assert s.removed_by_shard == [{"rows": 6, "shard": 0, "file": str(a[0])}]
    assert not s.identical


def test_unmapped_rename_is_a_schema_change_with_a_hint(lake: Lake, pair: tuple[list[Path], list[Path]]) -> None:
    a, b = pair
    s = diff_versions(lake, "v1", "v2/")
    m = model_diff(a, b, key=["SAMPLE_ID"])
    assert_summary_matches(s, m)
    assert "URL" not in s.compared
    assert s.schema["removed"] == [{"name": "URL", "type": "VARCHAR"}]
    assert s.schema["added"] == [{"name": "url", "type": "VARCHAR"}]
    assert s.hints == ["A's URL and B's url both look like the url column; compare them with --map URL=url"]
    assert s.removed_by_domain == []  # URL is not compared, so removed rows carry no URL


def test_keyless_diff_counts_duplicates(lake: Lake, tmp_path: Path) -> None:
    rows = v1_rows(30)
    a_rows = [*rows, rows[3], rows[3], rows[7]]  # duplicates in A
    b_rows = [*rows[1:], rows[3], rows[8], rows[8]]  # one copy of row 3 fewer, row 0 removed, row 8 twice
    a = write_split(pa.Table.from_pylist(a_rows, schema=V1_SCHEMA), tmp_path / "a", 2)
    b = write_split(shuffled(pa.Table.from_pylist(b_rows, schema=V1_SCHEMA), 1), tmp_path / "b", 3)
    out = tmp_path / "d.parquet"
    s = diff_versions(lake, "a/", "b/", keyless=True, out=str(out))
    m = model_diff(a, b, key=[])
    assert s.mode == "keyless" and s.key == []
    assert_summary_matches(s, m)
    assert model_counts(m)["removed"] == 3 and model_counts(m)["added"] == 2
    assert_out_matches(out, m)
    assert s.out_rows == 5 and pq.read_table(out).num_rows == 5


@pytest.mark.parametrize("mask", [0, 1, 7])
def test_keyless_diff_is_exact_with_few_hash_buckets(
    lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mask: int
) -> None:
    """With 1, 2 or 8 buckets nearly every bucket differs and holds equal rows too: the second pass still
    groups whole rows, so the diff (and the rows of each side, counted from the buckets) stays exact."""
    monkeypatch.setattr("relake.diff.local._BUCKET_MASK", mask)
    rows = v1_rows(30)
    a = write_split(pa.Table.from_pylist([*rows, rows[3], rows[3]], schema=V1_SCHEMA), tmp_path / "a", 2)
    b = write_split(pa.Table.from_pylist([*rows[1:], rows[3], rows[8]], schema=V1_SCHEMA), tmp_path / "b", 3)
    out = tmp_path / "d.parquet"
    s = diff_versions(lake, "a/", "b/", keyless=True, out=str(out))
    m = model_diff(a, b, key=[])
    assert_summary_matches(s, m)
    assert (s.rows_a, s.rows_b, s.removed, s.added) == (32, 31, 2, 1)
    assert_out_matches(out, m)


def test_default_key_falls_back_when_the_id_repeats(lake: Lake, tmp_path: Path) -> None:
    rows = v1_rows(20)
    rows[3]["SAMPLE_ID"] = rows[2]["SAMPLE_ID"]
    write_split(pa.Table.from_pylist(rows, schema=V1_SCHEMA), tmp_path / "a", 1)
    b_rows = [dict(r) for r in rows]
    b_rows[9]["TEXT"] = "changed"
    write_split(pa.Table.from_pylist(b_rows, schema=V1_SCHEMA), tmp_path / "b", 1)
    s = diff_versions(lake, "a/", "b/")
    assert s.key == ["URL", "TEXT"] and s.mode == "keyed"
    assert s.key_note is None
    assert (s.added, s.removed, s.changed) == (1, 1, 0)  # the caption is part of the key
    # URL repeats too once the caption is gone: then keyless, saying why
    for r in (*rows, *b_rows):
        r["TEXT"] = "same"
    write_split(pa.Table.from_pylist(rows, schema=V1_SCHEMA), tmp_path / "a", 1)
    write_split(pa.Table.from_pylist(b_rows, schema=V1_SCHEMA), tmp_path / "b", 1)
    s = diff_versions(lake, "a/", "b/")
    assert s.mode == "keyless" and s.key == []
    assert s.key_note == (
        "keyless (multiset of rows): SAMPLE_ID is not a key: 1 duplicated key value(s) on 2 rows in A, "
        "1 duplicated key value(s) on 2 rows in B; URL+TEXT is not a key: 1 duplicated key value(s) on 2 rows "
        "in A, 1 duplicated key value(s) on 2 rows in B")
    assert (s.added, s.removed, s.changed) == (0, 0, 0)


def test_explicit_key_refuses_duplicates_and_nulls(lake: Lake, tmp_path: Path) -> None:
    rows = v1_rows(20)
    rows[3]["SAMPLE_ID"] = rows[2]["SAMPLE_ID"]
    rows[4]["SAMPLE_ID"] = None
    a = tmp_path / "a.parquet"
    write_table(pa.Table.from_pylist(rows, schema=V1_SCHEMA), a)
    with pytest.raises(InputError) as err:
        diff_versions(lake, "a.parquet", "a.parquet", key=["SAMPLE_ID"])
    assert str(err.value) == (
        "cannot diff by key SAMPLE_ID: 1 duplicated key value(s) on 2 rows in A, 1 row(s) with a NULL key in A "
        "(e.g. 1002); 1 duplicated key value(s) on 2 rows in B, 1 row(s) with a NULL key in B (e.g. 1002); "
        "use --keyless (rows as a multiset) or another --key")
    with pytest.raises(InputError) as err:
        diff_versions(lake, "a.parquet", "a.parquet", key=["URL"])
    assert "https://" not in str(err.value)
    assert str(err.value).startswith("cannot diff by key URL: 1 duplicated key value(s) on 2 rows in A "
                                     "(examples withheld: the key holds URLs or captions)")


def test_struct_key_matches_nulls_and_the_model(
    lake: Lake, pair: tuple[list[Path], list[Path]], tmp_path: Path
) -> None:
    a, b = pair
    out = tmp_path / "d.parquet"
    s = diff_versions(lake, "v1/", "v2/", key=["url", "TEXT"], maps=["URL=url"], out=str(out))
    assert s.key == ["URL", "TEXT"]  # B's name is accepted for a mapped column and reported as A's
    m = model_diff(a, b, key=["URL", "TEXT"], maps={"URL": "url"})
    assert_summary_matches(s, m)
    assert_out_matches(out, m)
    unchanged_null = [r for r in read_rows(a) if r["TEXT"] is None and r["SAMPLE_ID"] not in range(1010, 1016)
                      and r["SAMPLE_ID"] != 1027]
    assert unchanged_null  # rows with a NULL caption matched (NULL-safe) instead of showing as removed+added
    assert all((r["URL"], None) not in m.removed for r in unchanged_null)


def test_diff_of_a_set_with_itself_is_empty(lake: Lake, pair: tuple[list[Path], list[Path]], cli: Cli) -> None:
    for kw in ({}, {"keyless": True}, {"key": ["URL", "TEXT"]}):
        s = diff_versions(lake, "v1/", "v1/", **kw)  # type: ignore[arg-type]
        assert (s.added, s.removed, s.changed, s.unchanged) == (0, 0, 0, 60)
        assert s.identical and s.removed_by_shard == [] and s.column_changes == {}
    result = cli("diff", "v1/", "v1/", "--exit-code")
    assert result.exit_code == 0, result.stderr


def test_mirror(lake: Lake, pair: tuple[list[Path], list[Path]]) -> None:
    ab = diff_versions(lake, "v1/", "v2/", maps=["URL=url"])
    ba = diff_versions(lake, "v2/", "v1/", maps=["url=URL"])
    assert (ab.added, ab.removed, ab.changed, ab.unchanged) == (ba.removed, ba.added, ba.changed, ba.unchanged)
    assert (ab.rows_a, ab.rows_b) == (ba.rows_b, ba.rows_a)
    assert ab.column_changes == ba.column_changes
    assert [(r["name"], r["a"], r["b"]) for r in ab.schema["retyped"]] == [
        (r["name"], r["b"], r["a"]) for r in ba.schema["retyped"]]


# --- lake versions: shards, buckets, provenance ----------------------------------------------------------


def test_versions_report_removals_by_shard(lake: Lake, pair: tuple[list[Path], list[Path]], tmp_path: Path) -> None:
    a, b = pair
    ingest_version(lake, "one", [str(a[0].parent)])
    ingest_version(lake, "two", [str(b[0].parent)])
    rows = v1_rows()
    rows2 = [r for r in rows if r["SAMPLE_ID"] not in (1040, 1041, 1002)]  # from shards 1, 1 and 0
    write_split(pa.Table.from_pylist(rows2, schema=V1_SCHEMA), tmp_path / "v1b", 4)
    ingest_version(lake, "one-b", [str(tmp_path / "v1b")])
    s = diff_versions(lake, "one", "one-b")
    assert s.removed_by_shard == [{"rows": 2, "shard": 1, "file": str(a[1])},
                                  {"rows": 1, "shard": 0, "file": str(a[0])}]
    assert s.a["kind"] == "version" and s.buckets is not None
    s = diff_versions(lake, "one", "two", maps=["URL=url"])
    assert_summary_matches(s, model_diff(a, b, key=["SAMPLE_ID"], maps={"URL": "url"}))
    assert s.buckets is None  # mapped: bucket fingerprints are over other rows


def test_a_name_that_is_also_a_folder_here_is_ambiguous(lake: Lake, pair: tuple[list[Path], list[Path]]) -> None:
    a, _ = pair
    ingest_version(lake, "v1", [str(a[0].parent)])
    with pytest.raises(InputError, match=re.escape("'v1' is both a version of the lake and a file or folder "
                                                   "here; write ./v1 for the path")):
        diff_versions(lake, "v1", "v1/")
    assert diff_versions(lake, "./v1", "v1/").identical


def test_equal_bucket_fingerprints_skip_the_scan(lake: Lake, tmp_path: Path) -> None:
    rows = v1_rows(400)
    a = write_split(pa.Table.from_pylist(rows, schema=V1_SCHEMA), tmp_path / "src-a", 2)
    b_rows = [dict(r) for r in rows]
    b_rows[17]["TEXT"] = "edited"
    b_rows[200]["WIDTH"] = None
    del b_rows[300]
    b = write_split(shuffled(pa.Table.from_pylist(b_rows, schema=V1_SCHEMA), 5), tmp_path / "src-b", 3)
    for name, src in (("a", a), ("a-again", a), ("b", b)):
        ingest_version(lake, name, [str(src[0].parent)])
    same = diff_versions(lake, "a", "a-again")
    assert same.buckets == {"compared": 256, "differing": 0, "equal": 256, "scan_skipped": True}
    assert same.identical and same.unchanged == 400
    for kw in ({}, {"keyless": True}):
        s = diff_versions(lake, "a", "b", **kw)  # type: ignore[arg-type]
        full = diff_versions(lake, "a", "b", use_buckets=False, **kw)  # type: ignore[arg-type]
        assert full.buckets is None
        assert s.buckets is not None and not s.buckets["scan_skipped"] and 0 < s.buckets["differing"] <= 6
        assert s.to_dict()["rows"] == full.to_dict()["rows"] == model_counts(
            model_diff(a, b, key=["SAMPLE_ID"] if not kw else []))
        assert s.column_changes == full.column_changes
        assert s.removed_by_shard == full.removed_by_shard


def _derive(lake: Lake, base: str, name: str, rows: list[dict[str, Any]], removed: pa.Table | None,
            folder: Path) -> None:
    """A derived version as the build writes it: version.json (kind derived, parent) and removed.parquet."""
    write_split(pa.Table.from_pylist(rows, schema=V1_SCHEMA), folder, 1)
    v = ingest_version(lake, name + "-tmp", [str(folder)])
    vdir = lake.version_dir(name)
    lake.version_dir(name + "-tmp").rename(vdir)
    (vdir / "version.json").write_text(dataclasses.replace(v, name=name, kind="derived", parent=base).to_json())
    if removed is not None:  # with its size and sha256 in the record, as a build records it
        pq.write_table(removed, vdir / "removed.parquet")
        owned = OwnedFile("removed.parquet", (vdir / "removed.parquet").stat().st_size,
                          hashlib.sha256((vdir / "removed.parquet").read_bytes()).hexdigest())
        (vdir / "version.json").write_text(
            dataclasses.replace(v, name=name, kind="derived", parent=base, files=(owned,)).to_json())


def test_provenance_counts_removals_by_rule_and_category(lake: Lake, tmp_path: Path) -> None:
    rows = v1_rows(30)
    write_split(pa.Table.from_pylist(rows, schema=V1_SCHEMA), tmp_path / "o", 1)
    ingest_version(lake, "orig", [str(tmp_path / "o")])
    lists = pa.list_(pa.string())
    step1 = pa.table({"SAMPLE_ID": [1000, 1001, 1002],
                      "rules": pa.array([["csam-hashes"], ["csam-hashes", "nsfw"], ["nsfw"]], lists),
                      "categories": pa.array([["safety"], ["safety"], ["safety"]], lists)})
    _derive(lake, "orig", "research", rows[3:], step1, tmp_path / "r")
    step2 = pa.table({"SAMPLE_ID": [1003], "rules": pa.array([["watermark"]], lists),
                      "categories": pa.array([["quality"]], lists)})
    _derive(lake, "research", "research-safe", rows[4:], step2, tmp_path / "rs")
    s = diff_versions(lake, "orig", "research-safe")
    assert s.removed == 4
    assert s.removed_by_rule == {"csam-hashes": 2, "nsfw": 2, "watermark": 1}
    assert s.removed_by_category == {"safety": 3, "quality": 1}
    assert s.provenance_note is None
    s = diff_versions(lake, "research", "research-safe")
    assert s.removed_by_rule == {"watermark": 1} and s.removed_by_category == {"quality": 1}
    # reversed, or not an ancestor: no provenance
    assert diff_versions(lake, "research-safe", "orig").removed_by_rule is None
    # a build without rule lists: skipped, saying so
    _derive(lake, "orig", "other", rows[1:], pa.table({"SAMPLE_ID": [1000]}), tmp_path / "x")
    s = diff_versions(lake, "orig", "other")
    assert s.removed_by_rule is None
    assert s.provenance_note == "removed.parquet lacks rules/categories list columns; removals by rule skipped"


# --- output files -------------------------------------------------------------------------------------


def test_out_formats(lake: Lake, pair: tuple[list[Path], list[Path]], tmp_path: Path) -> None:
    diff_versions(lake, "v1/", "v2/", maps=["URL=url"], out="d.csv")
    diff_versions(lake, "v1/", "v2/", maps=["URL=url"], out="d.jsonl")
    diff_versions(lake, "v1/", "v2/", maps=["URL=url"], out="d.parquet")
    lines = (tmp_path / "d.csv").read_text().splitlines()
    assert lines[0] == ("SAMPLE_ID,change,changed_columns,before_URL,before_TEXT,before_WIDTH,before_HEIGHT,"
                        "before_similarity,after_URL,after_TEXT,after_WIDTH,after_HEIGHT,after_similarity")
    assert len(lines) == 18
    assert "1030,changed,\"TEXT,HEIGHT\"," in "\n".join(lines)
    records = [json.loads(x) for x in (tmp_path / "d.jsonl").read_text().splitlines()]
    parquet = pq.read_table(tmp_path / "d.parquet").to_pylist()
    assert len(records) == len(parquet) == 17
    assert [r["SAMPLE_ID"] for r in records] == [r["SAMPLE_ID"] for r in parquet] == sorted(
        r["SAMPLE_ID"] for r in parquet)
    by_id = {r["SAMPLE_ID"]: r for r in records}
    assert by_id[1030]["changed_columns"] == ["TEXT", "HEIGHT"]
    assert by_id[1030]["before_HEIGHT"] == 50 + 30 % 7 and by_id[1030]["after_HEIGHT"] == 999
    assert by_id[1010]["change"] == "removed" and by_id[5000]["change"] == "added"
    assert pq.read_schema(tmp_path / "d.parquet").field("changed_columns").type == pa.list_(pa.string())
    with pytest.raises(InputError, match=r"--out d.txt: unknown format '.txt'; use one of .parquet, .csv, .jsonl"):
        diff_versions(lake, "v1/", "v2/", out="d.txt")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("d.", ".d"))) == [
        "d.csv", "d.jsonl", "d.parquet"]  # no temp files left


# --- CLI ---------------------------------------------------------------------------------------------


def test_cli_exit_codes_and_json(cli: Cli, pair: tuple[list[Path], list[Path]], tmp_path: Path) -> None:
    result = cli("diff", "v1/", "v2/", "--map", "URL=url")
    assert result.exit_code == 1, result.stderr
    assert "added" in result.stdout and "changed columns" in result.stdout
    result = cli("diff", "v1/", "v2/", "--map", "URL=url", "--exit-code", "--json", "--out", "d.jsonl")
    assert result.exit_code == 1, result.stderr
    data = json.loads(result.stdout)
    assert data["rows"] == {"a": 60, "b": 58, "added": 4, "removed": 6, "changed": 7, "unchanged": 47}
    assert data["key"] == ["SAMPLE_ID"] and data["identical"] is False and data["out_rows"] == 17
    assert (tmp_path / "d.jsonl").is_file()
    result = cli("diff", "v1/", "v2/", "--key", "SAMPLE_ID", "--keyless")
    assert result.exit_code == 2
    result = cli("diff", "v1/", "v2/", "--out", "d.xlsx")
    assert result.exit_code == 2
    assert error_line(result) == "Error: --out d.xlsx: unknown format '.xlsx'; use one of .parquet, .csv, .jsonl"
    result = cli("diff", "v1/", "v2/", "--map", "URL")
    assert error_line(result) == "Error: --map 'URL': expected A_COLUMN=B_COLUMN, e.g. --map URL=url"
    result = cli("diff", "v1/", "nope")
    assert result.exit_code == 2 and error_line(result).startswith("Error: no version named 'nope' in lake")
    result = cli("diff", "v1/", "missing/")
    assert error_line(result) == "Error: missing/: no such file or folder"


def test_cli_refuses_duplicate_keys(cli: Cli, tmp_path: Path) -> None:
    rows = v1_rows(10)
    rows[1]["SAMPLE_ID"] = rows[0]["SAMPLE_ID"]
    write_table(pa.Table.from_pylist(rows, schema=V1_SCHEMA), tmp_path / "a.parquet")
    result = cli("diff", "a.parquet", "a.parquet", "--key", "SAMPLE_ID", "--exit-code")
    assert result.exit_code == 2
    assert error_line(result) == (
        "Error: cannot diff by key SAMPLE_ID: 1 duplicated key value(s) on 2 rows in A (e.g. 1000); "
        "1 duplicated key value(s) on 2 rows in B (e.g. 1000); use --keyless (rows as a multiset) or another --key")
    result = cli("diff", "a.parquet", "a.parquet", "--key", "nope")
    assert error_line(result) == "Error: --key column 'nope' is not a column of both a.parquet and a.parquet"
    result = cli("diff", "a.parquet", "a.parquet", "--json")  # default key: falls back, identical
    assert result.exit_code == 0 and json.loads(result.stdout)["key"] == ["URL", "TEXT"]


def test_cli_fingerprint(cli: Cli, lake: Lake, pair: tuple[list[Path], list[Path]]) -> None:
    a, _ = pair
    ingest_version(lake, "orig", [str(a[0].parent)])
    manifest = lake.load_version("orig").fingerprint
    result = cli("fingerprint", "orig", "--json", "--buckets")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["fingerprint"], data["rows"], data["manifest_matches"]) == (manifest.value, 60, True)
    assert {k: (v["rows"], v["value"]) for k, v in data["buckets"].items()} == manifest.buckets
    result = cli("fingerprint", "orig", "--from-manifest")
    assert result.exit_code == 0 and result.stdout.split()[:3] == [manifest.value, "60", "rows"]
    # the same rows re-ordered into other shards: the same fingerprint
    rows = read_rows(a)
    write_split(shuffled(pa.Table.from_pylist(rows, schema=V1_SCHEMA), 9), Path("copy"), 5)
    result = cli("fingerprint", "copy/", "--json")
    assert json.loads(result.stdout)["fingerprint"] == manifest.value
    assert fingerprint_target(lake, "copy/").manifest_matches is None
    result = cli("fingerprint", "copy/", "--from-manifest")
    assert error_line(result).startswith("Error: copy/: --from-manifest needs a version")


def test_version_folder_path_reads_only_its_shards(lake: Lake, tmp_path: Path) -> None:
    rows = v1_rows(10)
    write_split(pa.Table.from_pylist(rows, schema=V1_SCHEMA), tmp_path / "o", 1)
    ingest_version(lake, "orig", [str(tmp_path / "o")], copy=True)
    vdir = lake.version_dir("orig")
    pq.write_table(pa.table({"x": [1]}), vdir / "removed.parquet")
    s = diff_versions(lake, str(vdir), "orig")
    assert s.identical and s.a["kind"] == "version"
    assert len(resolve_sources([str(vdir)])) == 2  # a plain folder read would include removed.parquet


# --- properties -----------------------------------------------------------------------------------------

ROW = st.fixed_dictionaries({
    "id": st.integers(0, 30),
    "t": st.one_of(st.none(), st.sampled_from(["x", "y", "z", "ß", "a,b", '"q"'])),
    "n": st.one_of(st.none(), st.integers(-3, 3)),
    "f": st.sampled_from([0.5, 1.25, None]),
})
SCHEMA = pa.schema([("id", pa.int64()), ("t", pa.string()), ("n", pa.int32()), ("f", pa.float64())])
_PROPS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _unique(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return list({r["id"]: r for r in rows}.values())


def _write_pair(d: Path, a_rows: list[dict[str, Any]], b_rows: list[dict[str, Any]], shards: int) -> tuple[
        list[Path], list[Path]]:
    a = write_split(pa.Table.from_pylist(a_rows, schema=SCHEMA), d / "a", max(1, min(shards, len(a_rows))))
    b = write_split(pa.Table.from_pylist(b_rows, schema=SCHEMA), d / "b", max(1, min(shards + 1, len(b_rows))))
    return a, b


@_PROPS
@given(st.lists(ROW, min_size=1, max_size=25), st.lists(ROW, max_size=25), st.integers(1, 3),
       st.randoms(use_true_random=False))
def test_property_keyed_matches_model_and_mirrors(
    a_rows: list[dict[str, Any]], b_extra: list[dict[str, Any]], shards: int, rnd: random.Random
) -> None:
    a_rows = _unique(a_rows)
    b_rows = _unique([r for r in a_rows if rnd.random() < 0.7] + b_extra)
    rnd.shuffle(b_rows)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        lake = Lake.at(d / "lake")
        a, b = _write_pair(d, a_rows, b_rows, shards)
        ab = diff_versions(lake, str(d / "a"), str(d / "b"), key=["id"], out=str(d / "ab.parquet"))
        ba = diff_versions(lake, str(d / "b"), str(d / "a"), key=["id"])
        aa = diff_versions(lake, str(d / "a"), str(d / "a"), key=["id"])
        m = model_diff(a, b, key=["id"])
        assert_summary_matches(ab, m)
        assert_out_matches(d / "ab.parquet", m)
    assert (ab.added, ab.removed, ab.changed) == (ba.removed, ba.added, ba.changed)
    assert ab.column_changes == ba.column_changes
    assert aa.identical and aa.unchanged == len(a_rows)


@_PROPS
@given(st.lists(ROW, max_size=25), st.lists(ROW, max_size=25), st.integers(1, 3))
def test_property_keyless_matches_model_and_mirrors(
    a_rows: list[dict[str, Any]], b_rows: list[dict[str, Any]], shards: int
) -> None:
    b_rows = a_rows[: len(a_rows) // 2] + b_rows  # some overlap, duplicates allowed
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        lake = Lake.at(d / "lake")
        a, b = _write_pair(d, a_rows, b_rows, shards)
        ab = diff_versions(lake, str(d / "a"), str(d / "b"), keyless=True, out=str(d / "ab.parquet"))
        ba = diff_versions(lake, str(d / "b"), str(d / "a"), keyless=True)
        m = model_diff(a, b, key=[])
        assert_summary_matches(ab, m)
        assert_out_matches(d / "ab.parquet", m)
    assert (ab.added, ab.removed, ab.unchanged + ab.added) == (ba.removed, ba.added, ba.unchanged + ba.removed)


def test_awkward_column_names_and_a_key_of_every_column(lake: Lake, tmp_path: Path) -> None:
    odd = 'a/b~c "x"'
    write_table(pa.table({"id": [1, 2, 3], odd: ["p", "q", "r"], "Select": [1, 2, 3]}), tmp_path / "w1.parquet")
    write_table(pa.table({"id": [1, 2, 4], odd: ["p", "Q", "s"], "Select": [1, 2, 3]}), tmp_path / "w2.parquet")
    s = diff_versions(lake, "w1.parquet", "w2.parquet", key=["id"], out="w.csv")
    assert (s.added, s.removed, s.changed, s.column_changes) == (1, 1, 1, {odd: 1})
    assert (tmp_path / "w.csv").read_text().splitlines() == [
        'id,change,changed_columns,"before_a/b~c ""x""",before_Select,"after_a/b~c ""x""",after_Select',
        '2,changed,"a/b~c ""x""",q,2,Q,2',
        '3,removed,"",r,3,,',
        '4,added,"",,,s,3',
    ]
    s = diff_versions(lake, "w1.parquet", "w2.parquet", key=["id", odd, "Select"], out="w.jsonl")
    assert (s.added, s.removed, s.changed) == (2, 2, 0)
    assert [json.loads(x) for x in (tmp_path / "w.jsonl").read_text().splitlines()] == [
        {"id": 2, odd: "Q", "Select": 2, "change": "added", "changed_columns": []},
        {"id": 2, odd: "q", "Select": 2, "change": "removed", "changed_columns": []},
        {"id": 3, odd: "r", "Select": 3, "change": "removed", "changed_columns": []},
        {"id": 4, odd: "s", "Select": 3, "change": "added", "changed_columns": []},
    ]


def test_provenance_of_a_real_build(lake: Lake, tmp_path: Path) -> None:
    """End to end with build.py: removals by rule and category equal what the rules select."""
    from relake.build import build_version
    from relake.spec import Rule, Spec

    rows = v1_rows(60)
    write_split(pa.Table.from_pylist(rows, schema=V1_SCHEMA), tmp_path / "o", 2)
    ingest_version(lake, "orig", [str(tmp_path / "o")])
    spec = Spec(name="clean", base="orig", rules=(
        Rule(id="wide", category="quality", where="WIDTH >= 150"),
        Rule(id="no-caption", category="safety", where="TEXT IS NULL"),
    ), min_crowd=1)
    build_version(lake, spec)
    s = diff_versions(lake, "orig", "clean")
    wide = {r["SAMPLE_ID"] for r in rows if r["WIDTH"] >= 150}
    null = {r["SAMPLE_ID"] for r in rows if r["TEXT"] is None}
    assert (s.removed, s.added, s.changed) == (len(wide | null), 0, 0)
    assert s.removed_by_rule == {"wide": len(wide), "no-caption": len(null)}
    assert s.removed_by_category == {"quality": len(wide), "safety": len(null)}
    assert s.provenance_note is None
