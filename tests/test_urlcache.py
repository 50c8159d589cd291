"""urlcache.py and build --dry-run on genuine LAION rows (tests/data/laion-real-1000.parquet): the URL cache equals
a recomputation with the Python reference, rules through it remove exactly what they remove without it, a flipped
byte or another canonical rule is never trusted, a killed writer leaves nothing half-written; a dry run writes
nothing, counts what an independent pyarrow/Python count finds, and reads only the columns its rules need."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import relake.build as build_mod
import relake.canonical as canonical_mod
from helpers import error_line, sha256_of, snapshot, snapshot_diff
from relake.blocklist import add_blocklist
from relake.build import BuildPlan, build_version, plan_build
from relake.canonical import canonical_url
from relake.cli import app
from relake.ingest import ingest_version
from relake.kinds import BLOCKLIST_KINDS, MATCH_PARAMS
from relake.lake import Lake
from relake.spec import Rule, Spec
from relake.sql import query
from relake.synth import synth_original
from relake.urlcache import CACHE_FILE, RECORD_FILE, cache_tag, collect_garbage, shard_cache_dir

GENUINE = Path(__file__).parent / "data" / "laion-real-1000.parquet"
RELAKE = str(Path(sys.executable).parent / "relake")
_HOST = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?(\[[^\]]*\]|[^:/?#]*)")


def ref_host(canon: str | None) -> str | None:
    """The reference of url_host (build/url_host.sql) over a canonical URL."""
    if canon is None:
        return None
    m = _HOST.match(canon)
    return m.group(1) if m else ""


def ref_h32(canon: str | None) -> int | None:
    return None if canon is None else int(hashlib.sha256(canon.encode()).hexdigest()[:8], 16)


def genuine_table() -> pa.Table:
    """The genuine URLs and captions, with a WIDTH and a SAMPLE_ID column for `where` and key rules."""
    t = pq.read_table(GENUINE, columns=["URL", "TEXT"])
    n = t.num_rows
    return t.append_column("WIDTH", pa.array([(i * 37) % 1024 for i in range(n)], pa.int32())).append_column(
        "SAMPLE_ID", pa.array([10_000 + i for i in range(n)], pa.int64()))


@pytest.fixture
def genuine(tmp_path: Path, lake: Lake) -> Lake:
    """Version orig: the genuine rows in two shards of 600 and 400 rows, copied into the lake."""
    t = genuine_table()
    src = tmp_path / "src"
    src.mkdir()
    pq.write_table(t.slice(0, 600), src / "part-0.parquet", compression="zstd")
    pq.write_table(t.slice(600), src / "part-1.parquet", compression="zstd")
    ingest_version(lake, "orig", [str(src)], copy=True)
    return lake


def lake_shards(lake: Lake, name: str = "orig") -> list[Path]:
    v = lake.load_version(name)
    return [v.shard_path(lake.version_dir(name), s) for s in v.shards]


def cache_dirs(lake: Lake, name: str = "orig") -> list[Path]:
    v = lake.load_version(name)
    assert v.roles.url is not None
    return [shard_cache_dir(lake, s.sha256, v.roles.url) for s in v.shards]


# --------------------------------------------------------------------------------------------- lists and reference

def urls_of(lake: Lake) -> list[str | None]:
    return [u for p in lake_shards(lake) for u in pq.read_table(p, columns=["URL"]).column("URL").to_pylist()]


def add_lists(lake: Lake, tmp_path: Path) -> dict[str, list[str]]:
    """A URL list (raw URLs of the data, a canonical-only variant, one matching nothing), a domain list (registrable
    domains of the data's hosts, one matching nothing) and a url-sha256 list, all imported into the lake."""
    urls = [u for u in urls_of(lake) if u and canonical_url(u) is not None]
    variant = next(u for u in urls[40:] if u.startswith("http://") and "@" not in u)
    hosts = sorted({h for u in urls if (h := ref_host(canonical_url(u))) and h.count(".") >= 1 and
                    re.fullmatch(r"[a-z0-9.-]+", h)})
    domains = sorted({".".join(h.split(".")[-2:]) for h in hosts[::40]})[:6]
    lists = {
        "urls": [*urls[:25:3], "HTTP://" + variant[len("http://"):] + "#frag", "http://nothing.example.invalid/x"],
        "doms": [*domains, "no-such-domain.example"],
        "shas": [hashlib.sha256(c.encode()).hexdigest() for c in {canonical_url(u) for u in urls[100:130:4]}
                 if c is not None] + ["0" * 64],
    }
    kinds = {"urls": "url", "doms": "domain", "shas": "url-sha256"}
    for name, entries in lists.items():
        f = tmp_path / f"{name}.txt"
        f.write_text("".join(e + "\n" for e in entries), encoding="utf-8")
        add_blocklist(lake, name, f, kinds[name])
    return lists


def spec(name: str = "d") -> Spec:
    return Spec(name=name, base="orig", rules=(
        Rule(id="urls", category="c", blocklist="urls"), Rule(id="doms", category="c", blocklist="doms"),
        Rule(id="shas", category="c", blocklist="shas"), Rule(id="wide", category="q", where="WIDTH > 1000")))


def reference_plan(lake: Lake, lists: dict[str, list[str]]) -> dict[str, Any]:
    """Every count of the plan, computed independently: pyarrow reads the lake's shard files, Python matches."""
    t = pa.concat_tables(pq.read_table(p) for p in lake_shards(lake))
    canon = [canonical_url(u) if u is not None else None for u in t.column("URL").to_pylist()]
    url_canon = {canonical_url(e) for e in lists["urls"]} - {None}
    shas = set(lists["shas"])
    doms = set(lists["doms"])

    def suffixes(h: str | None) -> set[str]:
        if not h:
            return set()
        labels = h.split(".")
        return {".".join(labels[i:]) for i in range(len(labels))}

    hits = {
        "urls": [c is not None and c in url_canon for c in canon],
        "doms": [bool(suffixes(ref_host(c)) & doms) for c in canon],
        "shas": [c is not None and hashlib.sha256(c.encode()).hexdigest() in shas for c in canon],
        "wide": pc.fill_null(pc.greater(t.column("WIDTH"), 1000), False).to_pylist(),
    }
    removed = sum(any(h[i] for h in hits.values()) for i in range(t.num_rows))
    row_canon, row_sha = set(canon) - {None}, {hashlib.sha256(c.encode()).hexdigest() for c in canon if c}
    row_suffixes = set().union(*(suffixes(ref_host(c)) for c in canon))
    unmatched = {"urls": sum(canonical_url(e) not in row_canon for e in set(lists["urls"])),
                 "doms": sum(d not in row_suffixes for d in doms), "shas": sum(s not in row_sha for s in shas)}
    return {"rows": t.num_rows, "removed": removed, "by_rule": {r: sum(h) for r, h in hits.items()},
            "unmatched": unmatched}


# --------------------------------------------------------------------------------------------- the cache

def test_ingest_writes_a_cache_equal_to_recomputation_on_genuine_rows(genuine: Lake) -> None:
    tag = cache_tag()
    v = genuine.load_version("orig")
    for shard, path, folder in zip(v.shards, lake_shards(genuine), cache_dirs(genuine), strict=True):
        record = json.loads((folder / RECORD_FILE).read_text())
        assert folder.parent.name == tag and record["tag"] == tag
        assert record["shard_sha256"] == shard.sha256 and record["rows"] == shard.rows
        assert record["sha256"] == sha256_of(folder / CACHE_FILE)
        cache = pq.read_table(folder / CACHE_FILE)
        assert cache.schema.names == ["h32", "host"]
        canon = [canonical_url(u) if u is not None else None
                 for u in pq.read_table(path, columns=["URL"]).column("URL").to_pylist()]
        assert cache.column("h32").to_pylist() == [ref_h32(c) for c in canon]
        assert cache.column("host").to_pylist() == [ref_host(c) for c in canon]
    assert sum(h is None for h in pq.read_table(cache_dirs(genuine)[0] / CACHE_FILE).column("h32").to_pylist()) \
        < 600  # the comparison above is over real values, not NULLs


def test_rules_through_the_cache_remove_what_recomputation_removes(genuine: Lake, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    lists = add_lists(genuine, tmp_path)
    cached = build_version(genuine, spec("cached"))
    assert cached.url_cache == "reused"
    monkeypatch.setattr(build_mod, "_url_caches", lambda *a, **k: None)
    computed = build_version(genuine, spec("computed"))
    assert computed.url_cache == "computed"
    want = reference_plan(genuine, lists)
    for r in (cached, computed):
        assert (r.removed, r.by_rule, r.unmatched_entries) == (want["removed"], want["by_rule"],
                                                               {k: want["unmatched"][k] for k in ("urls", "doms",
                                                                                                  "shas")})
    assert all(n > 0 for n in want["by_rule"].values())  # every rule really matched
    a, b = (genuine.load_version(n) for n in ("cached", "computed"))
    assert [s.sha256 for s in a.shards] == [s.sha256 for s in b.shards]
    removed = [pq.read_table(genuine.version_dir(n) / "removed.parquet") for n in ("cached", "computed")]
    assert removed[0].equals(removed[1])


def test_a_flipped_byte_in_the_cache_is_detected_and_the_cache_rebuilt(genuine: Lake, tmp_path: Path,
                                                                       runner: CliRunner) -> None:
    lists = add_lists(genuine, tmp_path)
    target = cache_dirs(genuine)[1] / CACHE_FILE
    good = target.read_bytes()
    flipped = bytearray(good)
    flipped[len(flipped) // 3] ^= 0x01
    target.write_bytes(bytes(flipped))

    verified = runner.invoke(app, ["--lake", str(genuine.root), "verify", "orig"])
    assert verified.exit_code == 0, verified.output  # the data is intact: a note, not a problem
    assert "URL cache damaged" in verified.stderr and "differs from the recorded" in verified.stderr

    plan = plan_build(genuine, spec())  # a dry run never writes: it computes instead of trusting the cache
    assert plan.url_cache == "computed" and target.read_bytes() == bytes(flipped)
    result = build_version(genuine, spec())
    assert result.url_cache == "rebuilt"
    assert target.read_bytes() == good
    want = reference_plan(genuine, lists)
    assert (plan.removed, plan.by_rule) == (result.removed, result.by_rule) == (want["removed"], want["by_rule"])


def test_gc_removes_damaged_stale_and_orphan_caches(genuine: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    dirs = cache_dirs(genuine)
    (dirs[0] / RECORD_FILE).write_text("{}")
    orphan = dirs[0].parent / ("0" * 64)
    orphan.mkdir()
    stale = dirs[0].parent.parent / "url-v1-000000000000"
    stale.mkdir()
    removed = collect_garbage(genuine)
    assert sorted(removed) == sorted([dirs[0], orphan, stale])
    assert not dirs[0].exists() and dirs[1].is_dir() and not orphan.exists() and not stale.exists()
    assert collect_garbage(genuine) == []


def test_a_changed_canonical_rule_makes_the_cache_stale(genuine: Lake, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    add_lists(genuine, tmp_path)
    old = cache_dirs(genuine)
    monkeypatch.setattr(canonical_mod, "CANONICAL_VERSION", canonical_mod.CANONICAL_VERSION + ".1")
    assert plan_build(genuine, spec()).url_cache == "computed"  # the old tag's caches are not trusted
    result = build_version(genuine, spec())
    assert result.url_cache == "built"
    new = cache_dirs(genuine)
    assert all(n.is_dir() and n.parent != o.parent for n, o in zip(new, old, strict=True))
    assert collect_garbage(genuine) == [old[0].parent]  # the stale tag, whole
    assert all(n.is_dir() for n in new)


def test_the_cache_is_at_most_a_tenth_of_the_shards_bytes(tmp_path: Path, lake: Lake) -> None:
    synth_original(tmp_path / "src", rows=200_000, shards=2, seed=7)
    v = ingest_version(lake, "orig", [str(tmp_path / "src")])
    cache = sum((d / CACHE_FILE).stat().st_size for d in cache_dirs(lake))
    assert cache <= 0.10 * v.bytes, (cache, v.bytes)


def test_a_kill_during_the_cache_write_leaves_nothing_half_written(tmp_path: Path, lake: Lake) -> None:
    src = tmp_path / "src"
    src.mkdir()
    pq.write_table(genuine_table(), src / "part-0.parquet")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RELAKE_")},
           "RELAKE_TEST_KILL_AT": "cache:before-publish"}
    killed = subprocess.run([RELAKE, "--lake", str(lake.root), "ingest", "orig", str(src)], env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert lake.has_version("orig")  # the version was published before its cache was started
    tag_dir = cache_dirs(lake)[0].parent
    assert not tag_dir.exists() or list(tag_dir.iterdir()) == []
    assert any(p.name.startswith("cache.") for p in (lake.root / "staging").iterdir())
    swept = collect_garbage(lake)
    assert any(p.name.startswith("cache.") for p in swept)
    assert not any((lake.root / "staging").iterdir())
    f = tmp_path / "u.txt"
    f.write_text(urls_of(lake)[3] + "\n")  # type: ignore[operator]
    add_blocklist(lake, "u", f, "url")
    result = build_version(lake, Spec(name="d", base="orig", rules=(Rule(id="u", category="c", blocklist="u"),)))
    assert result.url_cache == "built" and result.removed >= 1
    assert (cache_dirs(lake)[0] / CACHE_FILE).is_file()


# --------------------------------------------------------------------------------------------- build --dry-run

def test_a_dry_run_counts_what_an_independent_count_finds_and_writes_nothing(genuine: Lake, tmp_path: Path) -> None:
    lists = add_lists(genuine, tmp_path)
    want = reference_plan(genuine, lists)
    before = snapshot(genuine.root)
    plan = plan_build(genuine, spec())
    assert snapshot_diff(before, snapshot(genuine.root)) == {}
    assert isinstance(plan, BuildPlan) and plan.url_cache == "reused"
    assert (plan.rows, plan.removed, plan.kept) == (want["rows"], want["removed"], want["rows"] - want["removed"])
    assert plan.by_rule == want["by_rule"] and list(plan.by_rule) == ["urls", "doms", "shas", "wide"]
    assert plan.unmatched_entries == want["unmatched"] and all(n >= 1 for n in plan.unmatched_entries.values())
    # without any cache (an old lake), a dry run computes the same counts and still writes nothing
    for d in cache_dirs(genuine):
        for f in d.iterdir():
            f.unlink()
        d.rmdir()
    before = snapshot(genuine.root)
    bare = plan_build(genuine, spec())
    assert snapshot_diff(before, snapshot(genuine.root)) == {}
    assert bare.url_cache == "computed"
    assert (bare.removed, bare.by_rule, bare.unmatched_entries) == (plan.removed, plan.by_rule,
                                                                    plan.unmatched_entries)


def test_a_rule_that_matches_nothing_shows_as_zero(genuine: Lake, tmp_path: Path) -> None:
    f = tmp_path / "none.txt"
    f.write_text("http://nothing.example.invalid/a\n")
    add_blocklist(genuine, "none", f, "url")
    plan = plan_build(genuine, Spec(name="d", base="orig", rules=(
        Rule(id="none", category="c", blocklist="none"), Rule(id="never", category="c", where="WIDTH < 0"))))
    assert plan.by_rule == {"none": 0, "never": 0} and plan.unmatched_entries == {"none": 1}
    assert (plan.removed, plan.kept) == (0, 1000)


def test_cli_dry_run_prints_the_plan_and_its_json_is_the_report(genuine: Lake, tmp_path: Path,
                                                               runner: CliRunner) -> None:
    lists = add_lists(genuine, tmp_path)
    want = reference_plan(genuine, lists)
    args = ["--lake", str(genuine.root), "build", "d", "--base", "orig", "--blocklist", "urls", "--blocklist", "doms",
            "--where", "WIDTH > 1000", "--dry-run"]
    before = snapshot(genuine.root)
    text = runner.invoke(app, args)
    assert text.exit_code == 0, text.output
    assert "dry run, nothing written" in text.stdout and "blocklist-doms" in text.stdout
    as_json = runner.invoke(app, [*args, "--json"])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.stdout)
    plan = plan_build(genuine, Spec(name="d", base="orig", rules=tuple(build_mod.rules_from_flags(
        ["urls", "doms"], ["WIDTH > 1000"], "removed", False))))
    assert data == {**plan.to_dict(), "seconds": data["seconds"]}
    assert data["by_rule"] == {"blocklist-urls": want["by_rule"]["urls"], "blocklist-doms": want["by_rule"]["doms"],
                               "where-1": want["by_rule"]["wide"]}
    assert snapshot_diff(before, snapshot(genuine.root)) == {}
    assert not genuine.has_version("d")


def _garble_column(path: Path, column: str) -> None:
    """Overwrite every byte of ``column``'s chunks in place (same size): reading that column fails."""
    meta = pq.ParquetFile(path).metadata
    data = bytearray(path.read_bytes())
    for g in range(meta.num_row_groups):
        for c in range(meta.num_columns):
            chunk = meta.row_group(g).column(c)
            if chunk.path_in_schema == column:
                start = chunk.dictionary_page_offset or chunk.data_page_offset
                data[start:start + chunk.total_compressed_size] = b"\xff" * chunk.total_compressed_size
    path.write_bytes(bytes(data))


def test_a_dry_run_reads_only_the_columns_its_rules_need(genuine: Lake, tmp_path: Path) -> None:
    lists = add_lists(genuine, tmp_path)
    want = reference_plan(genuine, lists)
    for p in lake_shards(genuine):
        p.chmod(0o644)
        _garble_column(p, "TEXT")  # the caption: no rule of the spec reads it
    plan = plan_build(genuine, spec())
    assert (plan.removed, plan.by_rule) == (want["removed"], want["by_rule"])
    key = tmp_path / "keys.txt"
    key.write_text("10003\n10500\n")
    add_blocklist(genuine, "keys", key, "key")
    keyed = plan_build(genuine, Spec(name="d", base="orig", rules=(Rule(id="k", category="c", blocklist="keys"),)))
    assert keyed.by_rule == {"k": 2}
    with pytest.raises(Exception, match=r"(?i)where|TEXT|parquet|failed"):  # the garbling is real: reading TEXT fails
        plan_build(genuine, Spec(name="d", base="orig", rules=(
            Rule(id="t", category="c", where="length(TEXT) > 5"),)))


def test_cli_dry_run_of_a_missing_base_is_one_error_line(lake: Lake, runner: CliRunner) -> None:
    r = runner.invoke(app, ["--lake", str(lake.root), "build", "d", "--base", "nope", "--where", "true", "--dry-run"])
    assert r.exit_code == 2
    assert error_line(r).startswith("Error: no version named 'nope'")


def test_every_cached_match_query_loads_and_declares_what_a_match_may() -> None:
    cached = {k.name: k.match_cached for k in BLOCKLIST_KINDS.values() if k.match_cached is not None}
    assert set(cached) == {"url", "url-sha256", "domain"}
    for name in cached.values():
        assert name is not None
        params = set(query(name).params)
        assert "rule" in params and params <= MATCH_PARAMS, (name, params)
