"""build.py (relake build): planted matches of every kind against an independent Python reference, shard
structure and order, byte-identical rebuilds, clear errors before any write, chained variants, failed audits."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import relake.build as build_mod
from helpers import error_line, sha256_of, snapshot, snapshot_diff, version_shard_tables, write_table
from relake.blocklist import add_blocklist
from relake.build import build_version
from relake.canonical import canonical_url
from relake.cli import app
from relake.errors import AuditError, InvalidNameError
from relake.ingest import ingest_version
from relake.lake import Lake
from relake.spec import Rule, Spec, parse_spec
from relake.sql import all_queries, parse_query

SHARD_SIZES = (1000, 1200, 800)  # 3,000 rows; unequal shards so a shard mix-up shows
THRESHOLD = 0.9
KEYWORD = "nsfw"

SCHEMA = pa.schema([("SAMPLE_ID", pa.int64()), ("URL", pa.string()), ("TEXT", pa.string()),
                    ("punsafe", pa.float32())])
SCHEMA_MD5 = SCHEMA.append(pa.field("md5", pa.string()))

# Planted URLs (global row index -> URL).
RAW_URL = "http://raw.example.net/p/1.jpg"
DUP_URL = "http://dup.example.net/same.jpg"
CANON_ENTRY = "HTTP://Example.COM:80/a%7eb#frag"
CANON_DATA = "http://example.com/a~b"
SHA_DATA = "HTTPS://Hash.Example.ORG:443/x%41y?q=%7e"
MD5_RAW_DATA = "http://Raw-MD5.example.net/Z%7e"
PLANTED_URLS: dict[int, str | None] = {
    5: RAW_URL,
    17: DUP_URL, 1500: DUP_URL, 2900: DUP_URL,     # one URL in several rows (and shards): all removed
    1111: CANON_DATA,                                # matches only after canonicalisation
    2222: SHA_DATA,                                  # url-sha256 of the canonical form
    333: MD5_RAW_DATA,                               # url-md5 of the raw form ...
    334: "http://raw-md5.example.net/Z~",            # ... same canonical URL, different raw: kept
    444: "http://img.cdn.bad.org/x.jpg",             # sub-domain of bad.org: removed
    445: "http://notbad.org/x",                      # kept
    446: "https://BAD.org:8080/y",                   # bad.org with a port: removed
    447: "http://bad.org.evil.com/z",                # kept
    700: None,                                       # NULL / empty URLs: the parquet blocklist's NULL and ""
    701: "",                                         # entries must not match them
}
KEY_ROWS = (5, 20, 1234, 2500)  # 5 is also matched by the url rule: two rules on one row
IMG_COL_ROWS = (50, 1600, 2700)  # 1600's md5 is stored upper-case in the data
IMG_SIDE_ROWS = (60, 1800)
SIDE_EVERY = 3  # the side table covers every 3rd row


def md5hex(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def sample_id(i: int) -> int:
    return 1_000_000 + (i * 7919) % 100_003  # unique, not the position


def base_rows(n: int, with_md5: bool) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        row: dict[str, Any] = {
            "SAMPLE_ID": sample_id(i),
            "URL": PLANTED_URLS.get(i, f"https://img{i % 13}.example.com/a/{i}.jpg"),
            "TEXT": None if i % 17 == 0 else (f"an {KEYWORD} caption {i}" if i % 10 == 0 else f"caption {i}"),
            "punsafe": None if i % 50 == 49 else ((i * 37) % 64) / 64,  # exact in float32
        }
        if with_md5:
            digest = md5hex(f"img{i}")
            row["md5"] = None if i % 23 == 22 else (digest.upper() if i == 1600 else digest)
        rows.append(row)
    return rows


def write_base(folder: Path, with_md5: bool) -> list[Path]:
    table = pa.Table.from_pylist(base_rows(sum(SHARD_SIZES), with_md5), schema=SCHEMA_MD5 if with_md5 else SCHEMA)
    out, start = [], 0
    for k, n in enumerate(SHARD_SIZES):
        out.append(write_table(table.slice(start, n), folder / f"part-{k:05d}.parquet"))
        start += n
    return out


def side_md5(i: int) -> str:
    return md5hex(f"side{i}")


@dataclass
class Inputs:
    """Source files and blocklist files on disk (outside any lake)."""

    root: Path
    base: list[Path]
    side: Path
    blocklists: dict[str, tuple[Path, str, str | None]] = field(default_factory=dict)  # name -> (file, kind, hash_of)

    def spec_text(self, name: str = "research", base: str = "orig") -> str:
        return f"""
name = "{name}"
base = "{base}"
description = "every kind of rule"
[params]
threshold = {THRESHOLD}
kw = "{KEYWORD}"
[[rule]]
id = "urls"
blocklist = "bl-url"
category = "safety"
sensitive = true
[[rule]]
id = "url-sha"
blocklist = "bl-sha256"
category = "safety"
[[rule]]
id = "url-md5-raw"
blocklist = "bl-md5raw"
category = "safety"
[[rule]]
id = "domains"
blocklist = "bl-domain"
category = "spam"
[[rule]]
id = "keys"
blocklist = "bl-key"
category = "optout"
[[rule]]
id = "img-col"
blocklist = "bl-img"
column = "md5"
category = "safety"
sensitive = true
[[rule]]
id = "img-side"
blocklist = "bl-img-side"
side = '{self.side}'
side_key = "SAMPLE_ID"
side_hash = "md5"
category = "safety"
[[rule]]
id = "nsfw"
where = "punsafe > $threshold AND regexp_matches(TEXT, $kw)"
category = "nsfw"
"""


def make_inputs(root: Path, with_md5: bool = True) -> Inputs:
    base = write_base(root / "src", with_md5)
    n = sum(SHARD_SIZES)
    side = write_table(pa.table({
        "SAMPLE_ID": pa.array([sample_id(i) for i in range(0, n, SIDE_EVERY)], pa.int64()),
        "md5": pa.array([side_md5(i) for i in range(0, n, SIDE_EVERY)], pa.string()),
    }), root / "side" / "laion-md5.parquet")
    bl = root / "bl"
    bl.mkdir(parents=True)
    inp = Inputs(root, base, side)
    # url: a parquet blocklist with a NULL and an empty entry
    url_file = write_table(pa.table({"u": pa.array([RAW_URL, DUP_URL, CANON_ENTRY, None, ""], pa.string())}),
                           bl / "urls.parquet")
    inp.blocklists["bl-url"] = (url_file, "url", None)
    canon_sha = hashlib.sha256(str(canonical_url(SHA_DATA)).encode()).hexdigest()
    (bl / "sha.txt").write_text(canon_sha + "\n" + hashlib.sha256(b"http://nowhere.example/").hexdigest() + "\n")
    inp.blocklists["bl-sha256"] = (bl / "sha.txt", "url-sha256", None)
    (bl / "md5raw.txt").write_text(md5hex(MD5_RAW_DATA) + "\n")
    inp.blocklists["bl-md5raw"] = (bl / "md5raw.txt", "url-md5", "raw")
    (bl / "domains.txt").write_text("# bad domains\nbad.org\n")
    inp.blocklists["bl-domain"] = (bl / "domains.txt", "domain", None)
    (bl / "keys.txt").write_text("".join(f"{sample_id(i)}\n" for i in KEY_ROWS) + "999\n")
    inp.blocklists["bl-key"] = (bl / "keys.txt", "key", None)
    (bl / "img.txt").write_text("".join(md5hex(f"img{i}") + "\n" for i in IMG_COL_ROWS))
    inp.blocklists["bl-img"] = (bl / "img.txt", "image-md5", None)
    (bl / "img-side.txt").write_text("".join(side_md5(i) + "\n" for i in IMG_SIDE_ROWS)
                                     + side_md5(1) + "\n")  # row 1 is not in the side table
    inp.blocklists["bl-img-side"] = (bl / "img-side.txt", "image-md5", None)
    return inp


def make_lake(root: Path, inp: Inputs) -> Lake:
    lake = Lake.at(root)
    ingest_version(lake, "orig", [str(p) for p in inp.base])
    for name, (file, kind, hash_of) in inp.blocklists.items():
        add_blocklist(lake, name, file, kind, hash_of=hash_of)
    return lake


def spec_of(text: str) -> Spec:
    return parse_spec(text.encode())


# --- the independent reference ---------------------------------------------------------------------------


def _host(url: str | None) -> str | None:
    canon = canonical_url(url)
    if canon is None or "://" not in canon:
        return None
    return urlsplit(canon).hostname


def reference(inp: Inputs, with_md5: bool = True) -> dict[tuple[int, int], list[tuple[str, str]]]:
    """(shard, position) -> sorted (rule, how) pairs, computed in plain Python from the input files."""
    url_entries = [e.strip() for e in pq.read_table(inp.blocklists["bl-url"][0]).column("u").to_pylist() if e]
    url_canon = {canonical_url(e): e for e in url_entries}
    sha = set(inp.blocklists["bl-sha256"][0].read_text().split())
    md5raw = set(inp.blocklists["bl-md5raw"][0].read_text().split())
    domains = {ln for ln in inp.blocklists["bl-domain"][0].read_text().split("\n") if ln and not ln.startswith("#")}
    keys = set(inp.blocklists["bl-key"][0].read_text().split())
    img = set(inp.blocklists["bl-img"][0].read_text().split())
    img_side = set(inp.blocklists["bl-img-side"][0].read_text().split())
    side = dict(zip(*pq.read_table(inp.side).to_pydict().values(), strict=True))
    out: dict[tuple[int, int], list[tuple[str, str]]] = {}
    for s, path in enumerate(inp.base):
        for pos, row in enumerate(pq.read_table(path).to_pylist()):
            url = row["URL"]
            hits: set[tuple[str, str]] = set()
            canon = canonical_url(url)
            if canon is not None and canon in url_canon:
                hits.add(("urls", "url" if url.strip() == url_canon[canon] else "canonical-url"))
            if canon is not None and hashlib.sha256(canon.encode()).hexdigest() in sha:
                hits.add(("url-sha", "url-sha256:canonical"))
            if url is not None and md5hex(url.strip()) in md5raw:
                hits.add(("url-md5-raw", "url-md5:raw"))
            host = _host(url)
            if host:
                labels = host.split(".")
                if any(".".join(labels[k:]) in domains for k in range(len(labels))):
                    hits.add(("domains", "domain"))
            if str(row["SAMPLE_ID"]) in keys:
                hits.add(("keys", "key"))
            if with_md5 and row["md5"] is not None and row["md5"].lower() in img:
                hits.add(("img-col", "image-md5:column"))
            if side.get(row["SAMPLE_ID"]) in img_side:
                hits.add(("img-side", "image-md5:side"))
            p, text = row["punsafe"], row["TEXT"]
            if p is not None and p > THRESHOLD and text is not None and re.search(KEYWORD, text):
                hits.add(("nsfw", "predicate"))
            if hits:
                out[(s, pos)] = sorted(hits)
    return out


CATEGORY = {"urls": "safety", "url-sha": "safety", "url-md5-raw": "safety", "domains": "spam", "keys": "optout",
            "img-col": "safety", "img-side": "safety", "nsfw": "nsfw"}
SENSITIVE = {"urls", "img-col"}


@dataclass
class Built:
    inp: Inputs
    lake: Lake
    result: build_mod.BuildResult
    expected: dict[tuple[int, int], list[tuple[str, str]]]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("planted")
    inp = make_inputs(root)
    lake = make_lake(root / "lake", inp)
    result = build_version(lake, spec_of(inp.spec_text()), materialize=True)  # these tests read written shards
    return Built(inp, lake, result, reference(inp))


# --- planted matches of every kind -----------------------------------------------------------------------


def test_reference_covers_every_planted_kind(built: Built) -> None:
    """Guard the fixture itself: each rule and each how is exercised, and the planted traps are as intended."""
    exp = built.expected
    hows = {h for pairs in exp.values() for h in pairs}
    assert hows >= {("urls", "url"), ("urls", "canonical-url"), ("url-sha", "url-sha256:canonical"),
                    ("url-md5-raw", "url-md5:raw"), ("domains", "domain"), ("keys", "key"),
                    ("img-col", "image-md5:column"), ("img-side", "image-md5:side"), ("nsfw", "predicate")}
    glob = {sum(SHARD_SIZES[:s]) + p: v for (s, p), v in exp.items()}
    assert glob[5] == [("keys", "key"), ("urls", "url")]
    for i in (17, 1500, 2900):
        assert glob[i] == [("urls", "url")]
    assert glob[1111] == [("urls", "canonical-url")]
    assert glob[2222] == [("url-sha", "url-sha256:canonical")]
    assert glob[333] == [("url-md5-raw", "url-md5:raw")] and 334 not in glob
    assert 444 in glob and 446 in glob and 445 not in glob and 447 not in glob
    assert 700 not in glob and 701 not in glob
    assert glob[1600] == [("img-col", "image-md5:column")]
    assert all(glob[i] == [("img-side", "image-md5:side")] for i in IMG_SIDE_ROWS)
    assert sum(1 for v in exp.values() if v == [("nsfw", "predicate")]) >= 5
    assert any(len(v) >= 2 for v in exp.values())


def test_removed_set_equals_independent_reference(built: Built) -> None:
    removed = pq.read_table(built.lake.version_dir("research") / "removed.parquet").to_pylist()
    got = {(r["shard"], r["position"]): list(zip(r["rules"], r["hows"], strict=True)) for r in removed}
    assert got == built.expected
    # ordered by shard and position, one row each
    assert [(r["shard"], r["position"]) for r in removed] == sorted(built.expected)
    base_by_pos = {(s, p): row for s, path in enumerate(built.inp.base)
                   for p, row in enumerate(pq.read_table(path).to_pylist())}
    for r in removed:
        row = base_by_pos[(r["shard"], r["position"])]
        rules = r["rules"]
        assert r["key"] == str(row["SAMPLE_ID"])
        assert r["url"] == row["URL"] and r["caption"] == row["TEXT"]
        canon = canonical_url(row["URL"])
        assert r["url_sha256"] == (None if canon is None else hashlib.sha256(canon.encode()).hexdigest())
        assert r["categories"] == sorted({CATEGORY[x] for x in rules})
        assert r["sensitive"] == any(x in SENSITIVE for x in rules)
        assert r["image_hash"] == row["md5"]  # the base's own hash, as stored


def test_counts_add_up_per_shard_and_in_stats(built: Built) -> None:
    v = built.result.version
    exp = built.expected
    assert len(v.shards) == 3
    for s, (shard, n) in enumerate(zip(v.shards, SHARD_SIZES, strict=True)):
        removed_here = sum(1 for (ss, _p) in exp if ss == s)
        assert shard.rows + removed_here == n
        path = built.lake.version_dir("research") / shard.path
        assert pq.ParquetFile(path).metadata.num_rows == shard.rows
        assert sha256_of(path) == shard.sha256 and path.stat().st_size == shard.bytes
    assert v.rows == sum(SHARD_SIZES) - len(exp)
    assert built.result.removed == len(exp) == v.stats["removed_rows"]
    by_rule: dict[str, int] = {}
    by_cat: dict[str, int] = {}
    for pairs in exp.values():
        for rule in {r for r, _h in pairs}:
            by_rule[rule] = by_rule.get(rule, 0) + 1
        for cat in {CATEGORY[r] for r, _h in pairs}:
            by_cat[cat] = by_cat.get(cat, 0) + 1
    assert built.result.by_rule == by_rule == v.stats["removed_by_rule"]
    assert built.result.by_category == by_cat == v.stats["removed_by_category"]
    assert (v.kind, v.parent) == ("derived", "orig")
    assert [r["id"] for r in v.recipe["rules"]] == [r.id for r in spec_of(built.inp.spec_text()).rules]
    assert v.recipe["params"] == {"threshold": THRESHOLD, "kw": KEYWORD}


def test_shards_keep_structure_and_order(built: Built) -> None:
    v = built.result.version
    for s, path in enumerate(built.inp.base):
        base = pq.read_table(path)
        keep = [p not in {pp for (ss, pp) in built.expected if ss == s} for p in range(base.num_rows)]
        want = base.filter(pa.array(keep))
        got = pq.read_table(built.lake.version_dir("research") / v.shards[s].path)
        assert got.schema.names == want.schema.names
        assert got.cast(want.schema).equals(want), f"shard {s} differs"
        # types and nullability survive the rewrite (float32 stays float32; DuckDB's writer would declare an
        # optional column without NULLs in this shard required, and the shards would disagree on their schema)
        assert got.schema.equals(want.schema), f"shard {s}: {got.schema} vs {want.schema}"


def test_without_md5_column_image_rules_use_the_side_table(tmp_path: Path) -> None:
    """A base without an image-hash column: the column rule fails clearly, the side rule works."""
    inp = make_inputs(tmp_path, with_md5=False)
    lake = make_lake(tmp_path / "lake", inp)
    with pytest.raises(build_mod.SpecError, match=r"rule 'img-col': column 'md5' is not in the base"):
        build_version(lake, spec_of(inp.spec_text()))
    text = inp.spec_text().replace('id = "img-col"\nblocklist = "bl-img"\ncolumn = "md5"\ncategory = "safety"\n'
                                   'sensitive = true\n', 'id = "img-col-gone"\nwhere = "false"\ncategory = "x"\n')
    result = build_version(lake, spec_of(text))
    exp = {k: v for k, v in reference(inp, with_md5=False).items()}
    removed = pq.read_table(lake.version_dir("research") / "removed.parquet").to_pylist()
    assert {(r["shard"], r["position"]): list(zip(r["rules"], r["hows"], strict=True)) for r in removed} == exp
    assert result.removed == len(exp)
    side = dict(zip(*pq.read_table(inp.side).to_pydict().values(), strict=True))
    for r in removed:  # the image hash kept for removed rows comes from the side table
        assert r["image_hash"] == side.get(int(r["key"]))


# --- determinism -------------------------------------------------------------------------------------------


def _files(lake: Lake, name: str) -> dict[str, str]:
    vdir = lake.version_dir(name)
    return {p.relative_to(vdir).as_posix(): sha256_of(p) for p in sorted(vdir.rglob("*")) if p.is_file()}


def test_rebuilds_are_byte_identical_across_lakes_and_threads(built: Built, tmp_path: Path) -> None:
    spec = spec_of(built.inp.spec_text())
    lakes = []
    for k, threads in enumerate((1, 2)):
        lake = make_lake(tmp_path / f"lake{k}", built.inp)
        build_version(lake, spec, threads=threads, materialize=True)
        lakes.append(lake)
    files = [_files(lk, "research") for lk in (built.lake, *lakes)]
    assert set(files[0]) == {"version.json", "removed.parquet", *(f"data/part-{i:05d}.parquet" for i in range(3))}
    assert files[0] == files[1] == files[2]
    texts = [(lk.version_dir("research") / "version.json").read_text() for lk in (built.lake, *lakes)]
    assert texts[0] == texts[1] == texts[2]


# --- errors before anything is written -----------------------------------------------------------------------


@pytest.fixture
def small_lake(tmp_path: Path) -> tuple[Lake, Inputs]:
    inp = make_inputs(tmp_path / "in", with_md5=False)
    lake = Lake.at(tmp_path / "lake")
    ingest_version(lake, "orig", [str(p) for p in inp.base])
    add_blocklist(lake, "bl-url", *inp.blocklists["bl-url"][:2])
    return lake, inp


BAD_SPECS = {
    "missing-blocklist": ('[[rule]]\nid = "r"\nblocklist = "nope"\ncategory = "c"\n', ["'nope'", "blocklist add"]),
    "unknown-column": ('[[rule]]\nid = "r"\nwhere = "nosuch_col > 1"\ncategory = "c"\n', ["nosuch_col"]),
    "undeclared-param": ('[params]\nx = 1\n[[rule]]\nid = "r"\nwhere = "punsafe > $limit"\ncategory = "c"\n',
                         ["$limit", "[params]"]),
    "missing-base": ('[[rule]]\nid = "r"\nblocklist = "bl-url"\ncategory = "c"\n', ["'ghost'"]),
}


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
def test_bad_spec_fails_with_one_error_line_and_writes_nothing(
    small_lake: tuple[Lake, Inputs], tmp_path: Path, case: str
) -> None:
    lake, _inp = small_lake
    body, needles = BAD_SPECS[case]
    base = "ghost" if case == "missing-base" else "orig"
    spec = tmp_path / "spec.toml"
    # a valid rule first, so the failing one is not simply the first thing done
    spec.write_text(f'name = "new"\nbase = "{base}"\n[[rule]]\nid = "ok"\nwhere = "punsafe > 0.5"\ncategory = "c"\n'
                    + body)
    before = snapshot(lake.root)
    result = CliRunner().invoke(app, ["--lake", str(lake.root), "build", "new", "--spec", str(spec)])
    assert result.exit_code == 2, result.output
    line = error_line(result)
    for needle in needles:
        assert needle in line, line
    assert result.stdout == ""
    assert snapshot_diff(before, snapshot(lake.root)) == {}
    assert not lake.version_dir("new").exists()


def test_where_errors_from_data_are_withheld(small_lake: tuple[Lake, Inputs]) -> None:
    """A conversion error would quote a row value (a URL or caption); the message withholds it."""
    lake, _inp = small_lake
    spec = Spec(name="new", base="orig", rules=(Rule(id="r", category="c", where="CAST(URL AS INTEGER) > 1"),))
    with pytest.raises(build_mod.SpecError) as info:
        build_version(lake, spec)
    assert "example" not in str(info.value) and "withheld" in str(info.value)


# --- chained variants and lineage --------------------------------------------------------------------------


def test_variants_chain_and_versions_show_lineage(small_lake: tuple[Lake, Inputs], tmp_path: Path) -> None:
    lake, _inp = small_lake
    research = tmp_path / "research.toml"
    research.write_text('name = "research"\nbase = "orig"\n[[rule]]\nid = "urls"\nblocklist = "bl-url"\n'
                        'category = "safety"\nsensitive = true\n')
    safe = tmp_path / "safe.toml"
    safe.write_text('name = "research-safe"\nbase = "research"\n[params]\nt = 0.75\n'
                    '[[rule]]\nid = "unsafe"\nwhere = "punsafe > $t"\ncategory = "nsfw"\n')
    runner = CliRunner()
    for name, spec in (("research", research), ("research-safe", safe)):
        result = runner.invoke(app, ["--lake", str(lake.root), "build", name, "--spec", str(spec), "--json"])
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["name"] == name
    orig, res, rsafe = (lake.load_version(n) for n in ("orig", "research", "research-safe"))
    assert (res.parent, rsafe.parent) == ("orig", "research")
    # research-safe is research minus the rows with punsafe > 0.75, shard by shard, in order
    # (both are deletion vectors over orig: research-safe's composes research's drops and its own)
    assert (res.storage, rsafe.storage) == ("vector", "vector") and rsafe.vector and rsafe.vector.root == "orig"
    res_rows, safe_rows = (version_shard_tables(lake.version_dir(n)) for n in ("research", "research-safe"))
    for s in range(3):
        a, b = res_rows[s], safe_rows[s]
        keep = [p is None or p <= 0.75 for p in a.column("punsafe").to_pylist()]
        assert b.equals(a.filter(pa.array(keep)))
    assert orig.rows > res.rows > rsafe.rows > 0
    assert res.rows == orig.rows - 3 - 2  # RAW_URL, DUP_URL x3, CANON_DATA

    result = runner.invoke(app, ["--lake", str(lake.root), "versions"])
    assert result.exit_code == 0, result.stderr
    lines = [ln for ln in result.stdout.splitlines() if re.search(r"\b(orig|research)", ln)]
    col = {name: next(ln for ln in lines if re.search(rf"(^|\s|─ ){re.escape(name)}(\s|$)", ln)).find(name)
           for name in ("orig", "research", "research-safe")}
    order = [next(k for k, ln in enumerate(lines) if re.search(rf"(^|\s|─ ){re.escape(n)}(\s|$)", ln))
             for n in ("orig", "research", "research-safe")]
    assert order == sorted(order), result.stdout
    assert col["orig"] < col["research"] < col["research-safe"], result.stdout
    listed = json.loads(runner.invoke(app, ["--lake", str(lake.root), "versions", "--json"]).stdout)
    assert {v["name"]: v["parent"] for v in listed} == {"orig": None, "research": "orig",
                                                        "research-safe": "research"}


# --- a failed audit publishes nothing ---------------------------------------------------------------------------


AUDIT_ROWS = {
    "audit/shard_counts": "SELECT 0 AS shard, 10 AS base_rows, 9 AS kept_rows, 0 AS removed_rows",
    "audit/subset": "SELECT 0 AS shard, 10 AS base_rows, 1 AS removed_rows, 8 AS kept_rows",
    "audit/survivors_match": "SELECT 'f' AS file, 1 AS pos, 'urls' AS rule, 'url' AS how",
    "audit/matches_removed": "SELECT 'f' AS file, 1 AS pos, 'urls' AS rule",
}


def _assert_nothing_published(lake: Lake, before: dict[str, Any]) -> None:
    assert not lake.version_dir("new").exists()
    assert not lake.has_version("new")
    assert list(lake.staging_dir.iterdir()) == []
    assert list(lake.tmp_dir.iterdir()) == []
    assert snapshot_diff(before, snapshot(lake.root)) == {}


@pytest.mark.parametrize("audit", sorted(AUDIT_ROWS))
def test_an_audit_returning_rows_publishes_nothing(
    small_lake: tuple[Lake, Inputs], monkeypatch: pytest.MonkeyPatch, audit: str
) -> None:
    lake, _inp = small_lake
    monkeypatch.setitem(all_queries(), audit, parse_query(audit, f"-- params: none\n{AUDIT_ROWS[audit]}"))
    spec = Spec(name="new", base="orig", rules=(Rule(id="urls", category="safety", blocklist="bl-url"),))
    before = snapshot(lake.root)
    with pytest.raises(AuditError, match=rf"{audit.split('/')[1]} failed.*nothing was published"):
        build_version(lake, spec, full_audit=audit == "audit/survivors_match")  # the rule re-run is opt-in
    _assert_nothing_published(lake, before)


def _sabotage(keep_removed: bool) -> Callable[[tuple[Any, ...]], None]:
    original = build_mod.write_surviving

    def write(job: tuple[Any, ...]) -> None:
        src, out, rows, positions, codec, mem = job
        if keep_removed:
            positions = []  # the shard keeps the rows it should have dropped
        original((src, out, rows, positions, codec, mem))

    return write


def test_a_shard_that_kept_removed_rows_fails_the_audit(
    small_lake: tuple[Lake, Inputs], monkeypatch: pytest.MonkeyPatch
) -> None:
    lake, _inp = small_lake
    monkeypatch.setattr(build_mod, "write_surviving", _sabotage(keep_removed=True))
    spec = Spec(name="new", base="orig", rules=(Rule(id="urls", category="safety", blocklist="bl-url"),))
    before = snapshot(lake.root)
    with pytest.raises(AuditError, match="nothing was published"):
        build_version(lake, spec, materialize=True)
    _assert_nothing_published(lake, before)


def test_an_altered_row_fails_the_subset_audit(
    small_lake: tuple[Lake, Inputs], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counts add up but a kept row was changed: the fingerprint audit catches it."""
    lake, _inp = small_lake
    original = build_mod.write_surviving

    def write(job: tuple[Any, ...]) -> None:
        original(job)
        out: Path = job[1]
        t = pq.read_table(out)
        texts = t.column("TEXT").to_pylist()
        texts[1] = "tampered"
        pq.write_table(t.set_column(t.schema.get_field_index("TEXT"), "TEXT", pa.array(texts, pa.string())), out)

    monkeypatch.setattr(build_mod, "write_surviving", write)
    spec = Spec(name="new", base="orig", rules=(Rule(id="urls", category="safety", blocklist="bl-url"),))
    before = snapshot(lake.root)
    with pytest.raises(AuditError, match="subset failed"):
        build_version(lake, spec, materialize=True)
    _assert_nothing_published(lake, before)


def test_a_matched_row_lost_before_the_write_fails_the_default_audit(
    small_lake: tuple[Lake, Inputs], monkeypatch: pytest.MonkeyPatch
) -> None:
    """build/removed drops one matched row, so the writer keeps it: counts and hash sums still add up (kept one
    more, removed one less), and only matched-vs-removed (or the --full-audit re-run) can catch it."""
    lake, _inp = small_lake
    real = all_queries()["build/removed"]
    broken = real.text.replace("ORDER BY sf.shard, m.pos", "WHERE m.pos > (SELECT min(pos) FROM matches)\n"
                                                            "ORDER BY sf.shard, m.pos")
    assert broken != real.text
    monkeypatch.setitem(all_queries(), "build/removed", parse_query("build/removed", f"-- params: none\n{broken}"))
    spec = Spec(name="new", base="orig", rules=(Rule(id="urls", category="safety", blocklist="bl-url"),))
    before = snapshot(lake.root)
    with pytest.raises(AuditError, match=r"matches_removed failed: 1\+ matched row.*'urls'"):
        build_version(lake, spec)
    _assert_nothing_published(lake, before)


# --- hostile names ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../x", "v*", "a/b", ".hidden", ""])
def test_hostile_version_names_are_rejected(small_lake: tuple[Lake, Inputs], tmp_path: Path, name: str) -> None:
    lake, _inp = small_lake
    before = snapshot(lake.root)
    outside = snapshot(tmp_path)
    with pytest.raises(InvalidNameError):
        build_version(lake, Spec(name=name, base="orig", rules=(Rule(id="r", category="c", where="true"),)))
    result = CliRunner().invoke(app, ["--lake", str(lake.root), "build", name, "--base", "orig",
                                      "--where", "punsafe > 0.5"])
    assert result.exit_code == 2, result.output
    assert "invalid version name" in error_line(result)
    spec = tmp_path / "hostile.toml"
    spec.write_text(f'name = {json.dumps(name)}\nbase = "orig"\n[[rule]]\nid = "r"\nwhere = "true"\ncategory = "c"\n')
    result = CliRunner().invoke(app, ["--lake", str(lake.root), "build", name, "--spec", str(spec)])
    assert result.exit_code == 2, result.output
    assert "invalid version name" in error_line(result)
    spec.unlink()
    assert snapshot_diff(before, snapshot(lake.root)) == {}
    assert snapshot_diff(outside, snapshot(tmp_path)) == {}


def test_hostile_base_name_is_rejected(small_lake: tuple[Lake, Inputs]) -> None:
    lake, _inp = small_lake
    with pytest.raises(InvalidNameError):
        build_version(lake, Spec(name="new", base="../orig", rules=(Rule(id="r", category="c", where="true"),)))


@pytest.mark.parametrize("column", ["relake_url", "Relake_Removed"])
def test_a_base_column_named_like_a_build_helper_is_refused_clearly(tmp_path: Path, column: str) -> None:
    lake = Lake(tmp_path / "lake")
    src = write_table(pa.table({"URL": ["http://a.example/x.jpg", "http://b.example/y.jpg"], "TEXT": ["a", "b"],
                                column: ["1", "2"]}), tmp_path / "src" / "part-0.parquet")
    ingest_version(lake, "orig", [str(src)])
    before = snapshot(lake.root)
    result = CliRunner().invoke(app, ["--lake", str(lake.root), "build", "new", "--base", "orig", "--where", "true"])
    assert result.exit_code == 2, result.output
    assert f"column '{column}' has a name relake uses" in error_line(result)
    assert snapshot_diff(before, snapshot(lake.root)) == {}


# --- the base's row-hash sums, kept in its manifest, spare the build a full rehash of the base -------------------


def _duckdb_row_hash_sums(paths: list[Path]) -> list[int]:
    """Per file: sum of DuckDB's hash() of every whole row, computed here (the oracle for the manifest's sums)."""
    con = duckdb.connect()
    return [int(con.execute("SELECT coalesce(sum(CAST(hash(*COLUMNS(*)) AS HUGEINT)), 0) FROM read_parquet(?)",
                            [str(p)]).fetchone()[0]) for p in paths]  # type: ignore[index]


def _set_row_hash(lake: Lake, name: str, entry: dict[str, Any] | None) -> None:
    """Rewrite a version's stats.row_hash (as an older relake, another DuckDB or a corrupt cache would leave it)."""
    path = lake.version_dir(name) / "version.json"
    data = json.loads(path.read_text())
    data["stats"].pop("row_hash", None)
    if entry is not None:
        data["stats"]["row_hash"] = entry
    path.chmod(0o644)
    path.write_text(json.dumps(data, indent=2))


def _release_bytes(lake: Lake, name: str) -> dict[str, str]:
    vdir = lake.version_dir(name)
    return {str(p.relative_to(vdir)): sha256_of(p) for p in sorted(vdir.rglob("*.parquet"))}


def test_row_hash_sums_are_recorded_and_reused_with_the_same_result(small_lake: tuple[Lake, Inputs]) -> None:
    lake, inp = small_lake
    orig = lake.load_version("orig")
    assert orig.stats["row_hash"]["shards"] == [str(x) for x in _duckdb_row_hash_sums(inp.base)]
    assert duckdb.__version__ in orig.stats["row_hash"]["algorithm"]
    spec = Spec(name="new", base="orig", rules=(Rule(id="urls", category="safety", blocklist="bl-url"),))
    with_cache = build_version(lake, spec, materialize=True).version
    vdir = lake.version_dir("new")
    assert with_cache.stats["row_hash"]["shards"] == [
        str(x) for x in _duckdb_row_hash_sums([vdir / s.path for s in with_cache.shards])]
    cached_bytes = _release_bytes(lake, "new")
    # the same build from a base without sums (an older relake), and with sums of another DuckDB version
    for i, entry in enumerate([None, {"algorithm": "sum of DuckDB hash(row values) as HUGEINT, DuckDB 0.1",
                                      "shards": ["1"] * len(orig.shards)}]):
        _set_row_hash(lake, "orig", entry)
        again = build_version(lake, replace(spec, name=f"new{i}"), materialize=True).version
        assert _release_bytes(lake, f"new{i}") == cached_bytes
        assert again.fingerprint == with_cache.fingerprint and again.stats == with_cache.stats


def test_wrong_row_hash_sums_in_the_base_manifest_fail_the_subset_audit(small_lake: tuple[Lake, Inputs]) -> None:
    """The sums are trusted only as far as the audit goes: wrong ones publish nothing (the base's bytes are
    sha256-checked beside the build, so right ones stay right)."""
    lake, _inp = small_lake
    entry = lake.load_version("orig").stats["row_hash"]
    _set_row_hash(lake, "orig", {**entry, "shards": [str(int(entry["shards"][0]) + 1), *entry["shards"][1:]]})
    before = snapshot(lake.root)
    spec = Spec(name="new", base="orig", rules=(Rule(id="urls", category="safety", blocklist="bl-url"),))
    with pytest.raises(AuditError, match="audit subset failed"):
        build_version(lake, spec, materialize=True)
    _assert_nothing_published(lake, before)


def test_base_files_in_hive_style_folders_are_rewritten_with_their_own_columns_only(tmp_path: Path) -> None:
    """DuckDB's SQL read_parquet would add a column x for a folder x=1/; the shard writer must not."""
    lake = Lake(tmp_path / "lake")
    rows = {"URL": ["http://a.example/1.jpg", "http://b.example/2.jpg"], "TEXT": ["a", "b"], "SAMPLE_ID": [1, 2]}
    plain = write_table(pa.table(rows), tmp_path / "src" / "part-0.parquet")
    hive = write_table(pa.table(rows), tmp_path / "src" / "x=1" / "part-1.parquet")
    ingest_version(lake, "orig", [str(plain), str(hive)])
    result = build_version(lake, Spec(name="new", base="orig",
                                      rules=(Rule(id="r", category="c", where="SAMPLE_ID = 2"),)),
                           materialize=True)
    for shard in result.version.shards:
        got = pq.read_table(lake.version_dir("new") / shard.path)
        assert got.schema.names == ["URL", "TEXT", "SAMPLE_ID"]
        assert got.column("SAMPLE_ID").to_pylist() == [1]


def _two_equal_shards(tmp_path: Path) -> Lake:
    lake = Lake(tmp_path / "lake")
    paths = [write_table(pa.table({"URL": [f"http://h{s}.example/{i}.jpg" for i in range(3)],
                                   "TEXT": [f"t{s}{i}" for i in range(3)],
                                   "SAMPLE_ID": pa.array([10 * s + i for i in range(3)], pa.int64())}),
                         tmp_path / "src" / f"part-{s}.parquet") for s in range(2)]
    ingest_version(lake, "orig", [str(p) for p in paths])
    return lake


def test_shards_written_into_each_others_place_fail_the_subset_audit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Equal row counts, nothing removed: totals over all shards agree, only the per-shard sums can tell."""
    lake = _two_equal_shards(tmp_path)
    original = build_mod.write_surviving
    sources: list[str] = []

    def swapped(job: tuple[Any, ...]) -> None:
        src, out, rows, positions, codec, mem = job
        if not sources:
            sources.extend(sorted(str(p) for p in (tmp_path / "src").glob("*.parquet")))
        other = sources[1] if src == sources[0] else sources[0]
        original((other, out, rows, positions, codec, mem))

    monkeypatch.setattr(build_mod, "write_surviving", swapped)
    before = snapshot(lake.root)
    with pytest.raises(AuditError, match=r"audit subset failed: written shard 0 .*another shard"):
        build_version(lake, Spec(name="new", base="orig", rules=(Rule(id="r", category="c", where="SAMPLE_ID < 0"),)),
                      materialize=True)
    _assert_nothing_published(lake, before)


def test_a_shard_written_with_other_column_types_fails_the_schema_audit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SAMPLE_ID written as INTEGER instead of BIGINT: same values, same hash() sums; the schema audit catches it."""
    lake = _two_equal_shards(tmp_path)
    original = build_mod.write_surviving

    def narrowed(job: tuple[Any, ...]) -> None:
        original(job)
        out: Path = job[1]
        t = pq.read_table(out)
        i = t.schema.get_field_index("SAMPLE_ID")
        pq.write_table(t.set_column(i, "SAMPLE_ID", t.column(i).cast(pa.int32())), out)

    monkeypatch.setattr(build_mod, "write_surviving", narrowed)
    before = snapshot(lake.root)
    with pytest.raises(AuditError, match=r"audit schema failed: written shard 0 .*SAMPLE_ID INTEGER.*SAMPLE_ID BIGINT"):
        build_version(lake, Spec(name="new", base="orig", rules=(Rule(id="r", category="c", where="SAMPLE_ID < 0"),)),
                      materialize=True)
    _assert_nothing_published(lake, before)


def test_every_rule_is_counted_zero_included_and_unmatched_list_entries_are_reported(
    tmp_path: Path, lake: Lake
) -> None:
    """Issue #9 item 8: a rule that matches nothing is listed with 0 (not dropped), and a blocklist rule says how many
    of its entries matched no row, so a list imported the wrong way (e.g. wrong --hash-of) is visible."""
    rows = [{"SAMPLE_ID": i, "URL": f"http://img{i % 7}.example/p/{i}.jpg", "TEXT": f"caption {i}"} for i in range(50)]
    write_table(pa.Table.from_pylist(rows), tmp_path / "src" / "part-00000.parquet")
    ingest_version(lake, "orig", [str(tmp_path / "src")])
    listed = [rows[3]["URL"], rows[10]["URL"], "http://nowhere.example/never.jpg"]
    (tmp_path / "urls.txt").write_text("".join(u + "\n" for u in listed), encoding="utf-8")
    add_blocklist(lake, "urls", tmp_path / "urls.txt", "url")
    raw_hashes = [hashlib.sha256(u.upper().encode()).hexdigest() for u in listed]  # hashes of nothing in the data
    (tmp_path / "hashes.txt").write_text("".join(h + "\n" for h in raw_hashes), encoding="utf-8")
    add_blocklist(lake, "hashes", tmp_path / "hashes.txt", "url-sha256", hash_of="raw")
    spec = parse_spec(
        b'name = "v1"\nbase = "orig"\n'
        b'[[rule]]\nid = "nothing"\nwhere = "SAMPLE_ID < 0"\ncategory = "quality"\n'
        b'[[rule]]\nid = "urls"\nblocklist = "urls"\ncategory = "safety"\n'
        b'[[rule]]\nid = "hashes"\nblocklist = "hashes"\ncategory = "safety"\n'
        b'[[rule]]\nid = "even"\nwhere = "SAMPLE_ID % 2 = 0"\ncategory = "quality"\n',
    )
    result = build_version(lake, spec)
    removed_by_urls = sum(1 for r in rows if r["URL"] in listed)
    assert result.by_rule == {"nothing": 0, "urls": removed_by_urls, "hashes": 0, "even": 25}
    assert list(result.by_rule) == ["nothing", "urls", "hashes", "even"]  # spec order
    assert result.unmatched_entries == {"urls": 1, "hashes": 3}
    assert lake.load_version("v1").stats["removed_by_rule"] == result.by_rule

    out = CliRunner().invoke(app, ["--lake", str(lake.root), "build", "v2", "--base", "orig", "--blocklist",
                                   "hashes", "--where", "SAMPLE_ID = 1", "--json"])
    assert out.exit_code == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["by_rule"] == {"blocklist-hashes": 0, "where-1": 1}
    assert data["unmatched_entries"] == {"blocklist-hashes": 3}
    text = CliRunner().invoke(app, ["--lake", str(lake.root), "build", "v3", "--base", "orig", "--blocklist", "hashes"])
    assert text.exit_code == 0, text.stderr
    assert "rule 'blocklist-hashes' matched no rows (check the list's --kind and --hash-of)" in text.stderr


@pytest.mark.parametrize(("column", "arrow_type", "value", "said"), [
    ("h", pa.float16(), None, "is halffloat, which a derived version would store as float32"),
    ("tz", pa.timestamp("us", tz="Europe/Paris"), None, "time zone Europe/Paris is lost"),
    ("d", pa.duration("s"), 5, "the unit is lost"),
    ("f", pa.binary(3), b"abc", "the size is lost"),
    ("l", pa.list_(pa.duration("ms")), [1], "a list of int64"),
])
def test_a_base_whose_types_a_derived_version_would_change_is_refused_before_any_row_is_read(
    tmp_path: Path, lake: Lake, column: str, arrow_type: pa.DataType, value: Any, said: str
) -> None:
    """Issue #15 (lesser): DuckDB's writer would store these columns as other types and the schema audit (DuckDB's
    types) cannot see it; the base is refused naming the column, and no version is made."""
    cells = pa.array(np.array([1.5], dtype=np.float16)) if pa.types.is_float16(arrow_type) else (
        pa.array([value], arrow_type) if value is not None else pa.array([0], pa.int64()).cast(arrow_type))
    table = pa.table({"SAMPLE_ID": [1], "URL": ["http://a.example/x.jpg"], "TEXT": ["t"], column: cells})
    write_table(table, tmp_path / "src" / "part-00000.parquet")
    ingest_version(lake, "orig", [str(tmp_path / "src")])
    r = CliRunner().invoke(app, ["--lake", str(lake.root), "build", "v1", "--base", "orig", "--where", "TRUE"])
    assert r.exit_code == 2, r.stderr
    assert r.stderr.startswith(f"Error: orig: column {column!r} is ") and said in r.stderr, r.stderr
    assert len(r.stderr.splitlines()) == 1
    assert not lake.has_version("v1")


def test_a_base_with_names_differing_only_by_case_is_refused(tmp_path: Path, lake: Lake) -> None:
    table = pa.table({"SAMPLE_ID": [1], "URL": ["http://a.example/x.jpg"], "url": ["x"], "TEXT": ["t"]})
    write_table(table, tmp_path / "src" / "part-00000.parquet")
    ingest_version(lake, "orig", [str(tmp_path / "src")], url_col="URL")
    r = CliRunner().invoke(app, ["--lake", str(lake.root), "build", "v1", "--base", "orig", "--where", "TRUE"])
    assert r.exit_code == 2, r.stderr
    assert "columns 'URL' and 'url' differ only by case" in r.stderr
    assert not lake.has_version("v1")


def test_a_derived_version_keeps_the_base_files_key_value_metadata(tmp_path: Path, lake: Lake) -> None:
    """Issue #15 (lesser): a pandas- or Spark-written base carries key-value metadata (pandas' column/index
    description, a producer's own keys); each derived shard keeps its base shard's pairs, except ``ARROW:schema``
    (DuckDB's types, not the base's arrow schema, describe the written file)."""
    pandas_meta = json.dumps({"index_columns": [{"kind": "range", "start": 0, "stop": 3, "step": 1}],
                              "columns": [], "creator": {"library": "pyarrow"}})
    kept: dict[str, dict[bytes, bytes]] = {}
    for i in range(2):
        table = pa.table({"SAMPLE_ID": [3 * i, 3 * i + 1, 3 * i + 2],
                          "URL": [f"http://a.example/{3 * i + j}.jpg" for j in range(3)],
                          "TEXT": ["a", "b", "c"]})
        meta = {"pandas": pandas_meta, "producer": f"shard {i} ✓"}
        write_table(table.replace_schema_metadata(meta), tmp_path / "src" / f"part-0000{i}.parquet")
        kept[f"part-0000{i}"] = {k.encode(): v.encode() for k, v in meta.items()}
    ingest_version(lake, "orig", [str(tmp_path / "src")])
    r = CliRunner().invoke(app, ["--lake", str(lake.root), "build", "v1", "--base", "orig",
                                 "--where", "SAMPLE_ID = 1", "--materialize"])  # (publish writes with the same writer)
    assert r.exit_code == 0, r.stderr
    outs = sorted(lake.version_dir("v1").rglob("*.parquet"))
    shards = [p for p in outs if p.name not in ("removed.parquet", "deletes.parquet")]
    assert len(shards) == 2
    for p in shards:
        got = dict(pq.read_metadata(p).metadata or {})
        got.pop(b"ARROW:schema", None)
        stem = next(s for s in kept if p.name.startswith(s))
        assert got == kept[stem], p.name
