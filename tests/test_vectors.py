"""Derived versions stored as deletion vectors (the default) read exactly as the same build materialised
(``build --materialize``): every command's result is the same, publish writes the same bytes, and a damaged
vector is caught. Expectations come from the base files with pyarrow (``helpers.version_shard_tables``)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner, Result

from helpers import Cli, fails, found, ok, sha256_of, version_shard_tables, write_table
from relake.build import build_version
from relake.cli import app
from relake.db import connect
from relake.diff import diff_versions
from relake.ingest import ingest_version
from relake.lake import Lake
from relake.record import OwnedFile, sha256_file
from relake.spec import Rule, Spec
from relake.verify import vector_problems
from test_build import Inputs, make_inputs, make_lake, spec_of

SAFE = Rule(id="unsafe", category="nsfw", where="punsafe > 0.5")


@dataclass
class Pair:
    inp: Inputs
    lake: Lake


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Pair:
    """research (vector) and research-m (materialised) from one spec; then safe / safe-m from each (two
    generations: safe's vector composes research's drops and its own)."""
    root = tmp_path_factory.mktemp("vectors")
    inp = make_inputs(root)
    lake = make_lake(root / "lake", inp)
    spec = spec_of(inp.spec_text())
    build_version(lake, spec)
    build_version(lake, Spec(name="research-m", base="orig", rules=spec.rules, params=spec.params),
                  materialize=True)
    build_version(lake, Spec(name="safe", base="research", rules=(SAFE,)))
    build_version(lake, Spec(name="safe-m", base="research-m", rules=(SAFE,)), materialize=True)
    return Pair(inp, lake)


def test_a_vector_version_records_its_root_and_sorted_drops(pair: Pair) -> None:
    lake = pair.lake
    for name in ("research", "safe"):
        vdir = lake.version_dir(name)
        v = lake.load_version(name)
        assert v.storage == "vector" and v.vector is not None and v.vector.root == "orig"
        assert json.loads((vdir / "version.json").read_text())["format"] == "relake.version/2"
        assert {f.path for f in v.files} == {"removed.parquet", "deletes.parquet"}
        assert not (vdir / "data").exists()  # nothing of the base is copied
        drops = pq.read_table(vdir / "deletes.parquet").to_pylist()
        pairs = [(d["shard"], d["position"]) for d in drops]
        assert pairs == sorted(set(pairs)) and v.vector.dropped == len(pairs)
        orig = lake.load_version("orig")
        assert v.vector.kept == tuple(s.rows - sum(1 for sh, _ in pairs if sh == i)
                                      for i, s in enumerate(orig.shards))
        assert v.rows == sum(v.vector.kept)
    # research's drops are exactly its removed rows; safe's are research's plus its own
    removed = {(r["shard"], r["position"]) for r in pq.read_table(
        lake.version_dir("research") / "removed.parquet").to_pylist()}
    research = {(d["shard"], d["position"]) for d in pq.read_table(
        lake.version_dir("research") / "deletes.parquet").to_pylist()}
    safe = {(d["shard"], d["position"]) for d in pq.read_table(
        lake.version_dir("safe") / "deletes.parquet").to_pylist()}
    assert research == removed and research < safe
    # a materialised version's record is still format 1, as an older relake wrote it
    assert json.loads((lake.version_dir("research-m") / "version.json").read_text())["format"] == "relake.version/1"


def test_vector_rows_fingerprints_and_stats_equal_the_materialised_build(pair: Pair) -> None:
    lake = pair.lake
    for vec, mat in (("research", "research-m"), ("safe", "safe-m")):
        a, b = lake.load_version(vec), lake.load_version(mat)
        got = version_shard_tables(lake.version_dir(vec))
        want = version_shard_tables(lake.version_dir(mat))
        assert [t.to_pylist() for t in got] == [t.to_pylist() for t in want]
        assert a.fingerprint == b.fingerprint and a.rows == b.rows
        assert a.stats == b.stats and a.schema == b.schema
        assert pq.read_table(lake.version_dir(vec) / "removed.parquet").drop(["shard", "position"]).equals(
            pq.read_table(lake.version_dir(mat) / "removed.parquet").drop(["shard", "position"]))


@pytest.mark.parametrize("cmd", [("fingerprint", "{v}", "--json"), ("fingerprint", "{v}", "--from-manifest", "--json"),
                                 ("verify", "{v}", "--json"), ("show", "{v}", "--json")])
def test_commands_report_the_same_for_vector_and_materialised(pair: Pair, runner_cli: Cli, cmd: tuple[str, ...]
                                                              ) -> None:
    out = {}
    for v in ("safe", "safe-m"):
        r = ok(runner_cli(*(c.format(v=v) for c in cmd)))
        data = json.loads(r.stdout)
        out[v] = data
    if cmd[0] == "fingerprint":
        assert out["safe"]["fingerprint"] == out["safe-m"]["fingerprint"]
        assert out["safe"]["rows"] == out["safe-m"]["rows"]
        assert out["safe"].get("manifest_matches") in (True, None)
    elif cmd[0] == "verify":
        assert [r["ok"] for r in out["safe"]] == [r["ok"] for r in out["safe-m"]] == [True]
        assert out["safe"][0]["rows"] == out["safe-m"][0]["rows"]
    else:
        assert out["safe"]["rows"] == out["safe-m"]["rows"]
        assert out["safe"]["fingerprint"] == out["safe-m"]["fingerprint"]


@pytest.mark.parametrize("keyless", [False, True])
def test_diff_of_vector_versions_equals_the_materialised(pair: Pair, runner_cli: Cli, keyless: bool) -> None:
    flags = ["--keyless"] if keyless else []
    counts = {}
    for a, b in (("orig", "safe"), ("orig", "safe-m"), ("research", "safe"), ("research-m", "safe-m"),
                 ("safe", "orig"), ("safe-m", "orig")):
        r = runner_cli("diff", a, b, "--json", "--no-buckets", *flags)
        assert r.exit_code in (0, 1), r.stderr
        data = json.loads(r.stdout)
        counts[(a, b)] = {"rows": data["rows"], "mode": data["mode"],
                          "withheld": (data["withheld_a"], data["withheld_b"]),
                          **{k: data[k] for k in ("removed_by_rule", "removed_by_category", "removed_by_domain")},
                          "by_shard": [x.get("rows") for x in data["removed_by_shard"]]}
    assert counts[("orig", "safe")] == counts[("orig", "safe-m")]
    assert counts[("research", "safe")] == counts[("research-m", "safe-m")]
    assert counts[("safe", "orig")] == counts[("safe-m", "orig")]
    rows = {n: sum(t.num_rows for t in version_shard_tables(pair.lake.version_dir(n))) for n in ("orig", "safe")}
    got = counts[("orig", "safe")]
    # the rows a sensitive rule removed are withheld (counted, never compared), the rest are removed rows
    assert (got["rows"]["a"], got["rows"]["b"]) == (rows["orig"], rows["safe"]) and got["withheld"][0] > 0
    assert got["rows"]["removed"] > 0 and got["rows"]["added"] == got["rows"]["changed"] == 0
    # a vector version and its materialised twin hold the same rows
    same = json.loads(ok(runner_cli("diff", "safe", "safe-m", "--json", "--no-buckets", *flags)).stdout)
    assert same["rows"]["removed"] == same["rows"]["added"] == same["rows"]["changed"] == 0


def test_publish_of_a_vector_version_is_byte_identical_to_the_materialised(pair: Pair, runner_cli: Cli,
                                                                         tmp_path: Path) -> None:
    for v in ("research", "research-m", "safe", "safe-m"):
        ok(runner_cli("publish", v, tmp_path / v, "--min-crowd", "1"))
        ok(runner_cli("verify", tmp_path / v))

    def data(v: str) -> dict[str, str]:
        d = tmp_path / v / "data"
        return {p.name: sha256_of(p) for p in sorted(d.iterdir())}

    assert data("research") == data("research-m") and len(data("research")) == 3
    assert data("safe") == data("safe-m")
    for v, m in (("research", "research-m"), ("safe", "safe-m")):
        a = json.loads((tmp_path / v / "version.json").read_text())
        b = json.loads((tmp_path / m / "version.json").read_text())
        assert a["shards"] == b["shards"] and a["bytes"] == b["bytes"] and a["storage"] == b["storage"] == "lake"
        assert "vector" not in a and a["format"] == "relake.version/1"
    got = [pq.read_table(tmp_path / "safe" / "data" / f"part-{i:05d}.parquet") for i in range(3)]
    want = version_shard_tables(pair.lake.version_dir("safe"))
    assert [t.to_pylist() for t in got] == [t.to_pylist() for t in want]


def test_versions_show_each_versions_storage(pair: Pair, runner_cli: Cli) -> None:
    listed = {v["name"]: v["storage"] for v in json.loads(ok(runner_cli("versions", "--json")).stdout)}
    assert listed == {"orig": "reference", "research": "vector", "research-m": "lake", "safe": "vector",
                      "safe-m": "lake"}


def test_check_keep_only_a_vector_version_equals_the_materialised(pair: Pair, runner_cli: Cli,
                                                                  tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    ok(runner_cli("synth-copy", "orig", copy, "--shard-size", "200", "--failure-rate", "0"))
    out = {}
    for v in ("safe", "safe-m"):
        r = runner_cli("check", copy, "--keep-only", v, "--json")
        assert r.exit_code in (0, 1), r.stderr
        data = json.loads(r.stdout)
        out[v] = {k: data[k] for k in ("affected",) if k in data}
    assert out["safe"] == out["safe-m"] and out["safe"]["affected"] > 0


def test_synth_copy_from_a_vector_version_equals_the_materialised(pair: Pair, runner_cli: Cli,
                                                                  tmp_path: Path) -> None:
    for v in ("safe", "safe-m"):
        ok(runner_cli("synth-copy", v, tmp_path / v, "--shard-size", "200", "--failure-rate", "0"))
    tree = {v: {p.relative_to(tmp_path / v).as_posix(): sha256_of(p) for p in sorted((tmp_path / v).rglob("*"))
                if p.is_file()} for v in ("safe", "safe-m")}
    assert tree["safe"] == tree["safe-m"] and tree["safe"]


@pytest.fixture
def runner_cli(pair: Pair) -> Cli:
    runner = CliRunner()

    def invoke(*args: str | Path) -> Result:
        return runner.invoke(app, ["--lake", str(pair.lake.root), *map(str, args)])

    return invoke


def test_a_flipped_byte_in_a_vector_is_caught(pair: Pair, tmp_path: Path, runner_cli: Cli) -> None:
    lake = pair.lake
    vdir = lake.version_dir("safe")
    deletes = vdir / "deletes.parquet"
    saved = deletes.read_bytes()
    try:
        deletes.chmod(0o600)
        data = bytearray(saved)
        data[len(data) // 2] ^= 0x01
        deletes.write_bytes(bytes(data))
        bad = found(runner_cli("verify", "safe"))
        assert "deletes.parquet" in bad.stdout
        for cmd in (("fingerprint", "safe"), ("diff", "orig", "safe"),
                    ("publish", "safe", tmp_path / "rel", "--min-crowd", "1"),
                    ("build", "next", "--base", "safe", "--where", "false")):
            msg = fails(runner_cli(*cmd))
            assert "deletes.parquet" in msg and "differs from its record" in msg, (cmd, msg)
        assert not (tmp_path / "rel").exists() and not lake.has_version("next")
    finally:
        deletes.write_bytes(saved)
    ok(runner_cli("verify", "safe"))


def test_a_vector_whose_counts_disagree_with_its_record_fails_verify(tmp_path: Path) -> None:
    """A vector rewritten together with its recorded sha256 (a hand-edited record) still disagrees with the kept
    counts: verify names it."""
    inp = make_inputs(tmp_path / "in")
    lake = make_lake(tmp_path / "lake", inp)
    build_version(lake, Spec(name="v", base="orig", rules=(SAFE,)))
    vdir = lake.version_dir("v")
    t = pq.read_table(vdir / "deletes.parquet")
    pq.write_table(t.slice(1), vdir / "deletes.parquet")  # one drop fewer
    v = lake.load_version("v")
    files = tuple(OwnedFile(f.path, (vdir / f.path).stat().st_size, sha256_file(vdir / f.path)) for f in v.files)
    with connect(None) as db:
        problems = vector_problems(db, dataclasses.replace(v, files=files), vdir)
    assert any("the record says" in p for p in problems), problems


@pytest.mark.parametrize("edit", ["storage", "format", "kept"])
def test_an_edited_vector_record_is_refused(pair: Pair, runner_cli: Cli, tmp_path: Path, edit: str) -> None:
    """A vector record without its vector (or a vector without its storage or format), or with other kept counts:
    refused where it is read, or by verify."""
    lake = pair.lake
    path = lake.version_dir("safe") / "version.json"
    saved = path.read_text(encoding="utf-8")
    record = json.loads(saved)
    if edit == "storage":
        record["storage"] = "reference"
    elif edit == "format":
        record["format"] = "relake.version/1"
    else:
        record["vector"]["kept"][0] -= 1
        record["rows"] -= 1
        record["fingerprint"]["rows"] -= 1
    try:
        path.chmod(0o600)
        path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        result = runner_cli("verify", "safe")
        assert result.exit_code in (1, 2) and "safe" in result.stdout + result.stderr
        assert "version.json" in fails(runner_cli("publish", "safe", tmp_path / "rel", "--min-crowd", "1"))
    finally:
        path.write_text(saved, encoding="utf-8")


@pytest.fixture(scope="module")
def plain_pair(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """No sensitive rule (nothing withheld): v / v-m from orig, w / w-m one generation further."""
    root = tmp_path_factory.mktemp("plain-vectors")
    inp = make_inputs(root)
    lake = make_lake(root / "lake", inp)
    first = Rule(id="domains", category="spam", blocklist="bl-domain")
    build_version(lake, Spec(name="v", base="orig", rules=(first,)))
    build_version(lake, Spec(name="v-m", base="orig", rules=(first,)), materialize=True)
    build_version(lake, Spec(name="w", base="v", rules=(SAFE,)))
    build_version(lake, Spec(name="w-m", base="v-m", rules=(SAFE,)), materialize=True)
    return lake


@pytest.mark.parametrize("mode", [("--key", "SAMPLE_ID"), ("--keyless",), ()])
@pytest.mark.parametrize(("a", "b"), [("orig", "v"), ("v", "orig"), ("orig", "w"), ("v", "w"), ("w", "v")])
def test_a_diff_against_an_ancestor_reads_the_vectors_and_equals_the_materialised(
    plain_pair: Lake, tmp_path: Path, a: str, b: str, mode: tuple[str, ...]
) -> None:
    """Against its ancestor or descendant a vector version is diffed from the deletion vectors (only the rows one
    side drops are compared): the same summary and --out rows as the materialised versions' full diff."""
    runner = CliRunner()
    out = {}
    for x, y in ((a, b), (a if a == "orig" else a + "-m", b if b == "orig" else b + "-m")):
        r = runner.invoke(app, ["--lake", str(plain_pair.root), "diff", x, y, "--json", "--no-buckets", *mode,
                                "--out", str(tmp_path / f"{x}-{y}.jsonl")])
        assert r.exit_code == 1, r.stderr
        data = json.loads(r.stdout)
        rows = (tmp_path / f"{x}-{y}.jsonl").read_text(encoding="utf-8").splitlines()
        out[(x, y)] = ({k: data[k] for k in ("rows", "mode", "key", "column_changes", "removed_by_domain")},
                       [s["rows"] for s in data["removed_by_shard"]], sorted(rows))
    vec, mat = out.values()
    assert vec == mat
    assert vec[0]["rows"]["removed"] + vec[0]["rows"]["added"] > 0 and vec[0]["rows"]["changed"] == 0


def test_the_ancestor_diff_reads_only_what_the_vectors_name(plain_pair: Lake, monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    """The lineage path is taken for a version and its ancestor, not for unrelated sides."""
    import relake.diff as diff_mod

    taken: list[bool] = []
    real = diff_mod.lineage_pair

    def spy(*args: object) -> object:
        got = real(*args)  # type: ignore[arg-type]
        taken.append(got is not None)
        return got

    monkeypatch.setattr(diff_mod, "lineage_pair", spy)
    for a, b in (("orig", "w"), ("w", "v"), ("v-m", "w"), ("v", "w-m"), ("orig", "v-m")):
        diff_mod.diff_versions(plain_pair, a, b, use_buckets=False)
    assert taken == [True, True, False, False, False]


def test_publish_of_a_vector_version_refuses_a_root_shard_whose_bytes_changed(tmp_path: Path) -> None:
    """Publish reads the root shards whole, so it re-hashes them (in the jobs that write the release): a flipped
    byte with size and times restored (what a size/mtime check cannot see) is refused, and no release is left."""
    inp = make_inputs(tmp_path)
    lake = make_lake(tmp_path / "lake", inp)
    build_version(lake, spec_of(inp.spec_text()))
    root = Path(json.loads((lake.version_dir("research") / "version.json").read_text())["shards"][1]["path"])
    root = root if root.is_absolute() else lake.version_dir("orig") / root
    st = root.stat()
    data = bytearray(root.read_bytes())
    data[len(data) // 3] ^= 0x10
    root.chmod(0o644)
    root.write_bytes(bytes(data))
    os.utime(root, ns=(st.st_atime_ns, st.st_mtime_ns))
    msg = fails(CliRunner().invoke(app, ["--lake", str(lake.root), "publish", "research", str(tmp_path / "rel"),
                                         "--min-crowd", "1"]))
    assert str(root) in msg and "differs from its record (sha256)" in msg, msg
    assert not (tmp_path / "rel").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".rel.partial")]


@pytest.mark.parametrize("dups_removed", [False, True])
@pytest.mark.parametrize("order", [("orig", "v"), ("v", "orig")])
def test_an_ancestor_diff_refuses_a_key_the_larger_side_repeats(tmp_path: Path, order: tuple[str, str],
                                                                  dups_removed: bool) -> None:
    """The lineage path scans only the larger side's key (the smaller holds a subset of its rows): a key repeated
    there is refused whichever way round, also when the build removed the repeats (as the full diff would)."""
    rows = [{"SAMPLE_ID": i if i not in (7, 8) else 6, "URL": f"http://h{i % 5}.example/{i}.jpg", "TEXT": f"c{i}"}
            for i in range(40)]
    write_table(pa.Table.from_pylist(rows), tmp_path / "src" / "part-00000.parquet")
    lake = Lake.at(tmp_path / "lake")
    ingest_version(lake, "orig", [str(tmp_path / "src")])
    where = "TEXT IN ('c7', 'c8', 'c20')" if dups_removed else "TEXT = 'c20'"
    build_version(lake, Spec(name="v", base="orig", rules=(Rule(id="r", category="c", where=where),)))
    r = CliRunner().invoke(app, ["--lake", str(lake.root), "diff", *order, "--key", "SAMPLE_ID"])
    assert r.exit_code == 2, (r.stdout, r.stderr)
    assert ("SAMPLE_ID" in r.stderr and "not unique" in r.stderr.lower()) or "duplicate" in r.stderr.lower(), r.stderr


@pytest.mark.parametrize("limit", ["0", "2", "5", "1000", "1001"])
@pytest.mark.parametrize("mode", [("--key", "SAMPLE_ID"), (), ("--key", "URL,TEXT")])
@pytest.mark.parametrize(("a", "b"), [("orig", "v"), ("v", "orig"), ("v", "w")])
def test_an_ancestor_diff_without_out_shows_the_same_examples_as_the_materialised(
    plain_pair: Lake, a: str, b: str, mode: tuple[str, ...], limit: str
) -> None:
    """Without --out the ancestor diff reads the key and URL of the rows one side drops and the whole row of the
    examples only: the same counts, domains, shards and example rows (every column) as the materialised
    versions' full diff, on screen and in --json."""
    runner = CliRunner()
    got = []
    for x, y in ((a, b), (a if a == "orig" else a + "-m", b if b == "orig" else b + "-m")):
        args = ["--lake", str(plain_pair.root), "diff", x, y, "--no-buckets", "--limit", limit, *mode]
        r = runner.invoke(app, [*args, "--json"])
        assert r.exit_code == 1, r.stderr
        data = json.loads(r.stdout)
        screen = runner.invoke(app, args, terminal_width=200)
        assert screen.exit_code == 1, screen.stderr
        got.append(({k: data[k] for k in ("rows", "mode", "key", "removed_by_domain", "examples")},
                    [s["rows"] for s in data["removed_by_shard"]],
                    _example_lines(screen.stdout)))
    vec, mat = got
    assert vec == mat
    shown = vec[0]["examples"]
    assert len(shown) == min(int(limit), vec[0]["rows"]["removed"] + vec[0]["rows"]["added"])


def _example_lines(screen: str) -> list[str]:
    """The example rows of a diff's screen output (from the first 'removed N' or 'added N' heading on)."""
    lines = [line.rstrip() for line in screen.splitlines()]
    start = next((i for i, line in enumerate(lines) if re.fullmatch(r"(removed|added) \d+", line)), len(lines))
    return lines[start:]


def test_ingest_records_whether_the_id_column_is_a_key(tmp_path: Path) -> None:
    """Ingest records, for the id column, its rows, repeated values and NULLs (counted here with a Counter): for
    genuine LAION rows (their pandas index as the id), and for the same rows with repeats and NULLs put in."""
    real = pq.read_table(Path(__file__).parent / "data" / "laion-real-1000.parquet")
    col = "__index_level_0__"
    ids = real.column(col).to_pylist()
    spoilt = ids[:]
    spoilt[10] = spoilt[11] = spoilt[12] = spoilt[500]
    spoilt[20] = spoilt[21]
    spoilt[30] = spoilt[31] = None
    for name, values in (("clean", ids), ("spoilt", spoilt)):
        table = real.set_column(real.schema.get_field_index(col), col, pa.array(values, real.schema.field(col).type))
        write_table(table, tmp_path / name / "part-00000.parquet")
        lake = Lake.at(tmp_path / f"lake-{name}")
        version = ingest_version(lake, "orig", [str(tmp_path / name)], id_col=col)
        counts = Counter(v for v in values if v is not None)
        want = {"columns": [col], "rows": len(values), "dup_keys": sum(1 for n in counts.values() if n > 1),
                "null_rows": sum(1 for v in values if v is None)}
        assert version.stats["keys"] == [want]
        assert json.loads((lake.version_dir("orig") / "version.json").read_text())["stats"]["keys"] == [want]
    assert want["dup_keys"] == 2 and want["null_rows"] == 2
    assert "keys" not in ingest_version(Lake.at(tmp_path / "lake-none"), "orig", [str(tmp_path / "clean")]).stats


def test_an_ancestor_diff_trusts_the_roots_recorded_key_and_scans_any_other(
    plain_pair: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The root's ingest found SAMPLE_ID a key of all its rows, so the ancestor diff by it scans no key; by any
    other key (or for unrelated sides) the key is scanned as before."""
    import relake.diff as diff_mod

    scans: list[int] = []
    real = diff_mod.check_key

    def spy(*args: object) -> object:
        scans.append(1)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(diff_mod, "check_key", spy)
    counts = []
    for a, b, key in (("orig", "w", ["SAMPLE_ID"]), ("w", "v", ["SAMPLE_ID"]), ("orig", "v", ["URL", "TEXT"]),
                      ("v-m", "w", ["SAMPLE_ID"])):
        before = len(scans)
        diff_mod.diff_versions(plain_pair, a, b, key=key, use_buckets=False)
        counts.append(len(scans) - before)
    assert counts == [0, 0, 1, 1]


def test_an_ancestor_diff_takes_the_dropped_rows_urls_from_the_builds_records_or_else_reads_them(
    plain_pair: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The URLs of the rows one side drops come from the builds' removed.parquet when they name exactly those
    rows (no read of the shards' URL column); refused, the URLs are read from the shards: the same summary."""
    import relake.diff.local as local_mod

    taken: list[bool] = []
    real = local_mod._light_from_records

    def spy(*args: Any) -> bool:
        got = real(*args)
        taken.append(got)
        return got

    def summary(a: str, b: str) -> dict[str, Any]:
        s = diff_versions(plain_pair, a, b, key=["SAMPLE_ID"], use_buckets=False, limit=3)
        return {"rows": (s.rows_a, s.rows_b, s.added, s.removed), "domains": s.removed_by_domain,
                "shards": [(x["shard"], x["rows"]) for x in s.removed_by_shard], "examples": s.examples}

    monkeypatch.setattr(local_mod, "_light_from_records", spy)
    pairs = (("orig", "v"), ("v", "orig"), ("orig", "w"), ("v", "w"))
    through_records = [summary(a, b) for a, b in pairs]
    assert taken.count(True) == len(pairs)  # (once per diff: the side holding the differing rows)
    monkeypatch.setattr(local_mod, "_light_from_records", lambda *args: False)
    assert [summary(a, b) for a, b in pairs] == through_records
    assert [summary(a + "-m" if a != "orig" else a, b + "-m" if b != "orig" else b) for a, b in pairs] == \
        through_records
    assert all(bool(s["domains"]) == (s["rows"][3] > 0) for s in through_records)


def test_an_edited_root_record_claiming_a_key_is_not_believed(tmp_path: Path) -> None:
    """The ancestor diff of two versions over a root trusts the root's recorded key only while that record is
    the one the lake noted: a record edited to call a repeated id a key is ignored, the key is scanned, and the
    diff is refused as without the edit."""
    rows = [{"SAMPLE_ID": i if i not in (7, 8) else 6, "URL": f"http://h{i % 5}.example/{i}.jpg", "TEXT": f"c{i}"}
            for i in range(40)]
    write_table(pa.Table.from_pylist(rows), tmp_path / "src" / "part-00000.parquet")
    lake = Lake.at(tmp_path / "lake")
    ingest_version(lake, "orig", [str(tmp_path / "src")])
    build_version(lake, Spec(name="v", base="orig", rules=(Rule(id="r", category="c", where="TEXT = 'c20'"),)))
    build_version(lake, Spec(name="w", base="v", rules=(Rule(id="s", category="c", where="TEXT = 'c30'"),)))
    path = lake.version_dir("orig") / "version.json"
    record = json.loads(path.read_text(encoding="utf-8"))
    assert record["stats"]["keys"] == [{"columns": ["SAMPLE_ID"], "rows": 40, "dup_keys": 1, "null_rows": 0}]
    record["stats"]["keys"][0]["dup_keys"] = 0
    path.chmod(0o644)
    path.write_text(json.dumps(record, indent=2), encoding="utf-8")
    r = CliRunner().invoke(app, ["--lake", str(lake.root), "diff", "v", "w", "--key", "SAMPLE_ID"])
    assert r.exit_code == 2, (r.stdout, r.stderr)
    assert "SAMPLE_ID" in r.stderr and ("not unique" in r.stderr.lower() or "duplicate" in r.stderr.lower()), r.stderr


def test_dropped_rows_urls_are_read_from_the_shards_when_a_record_between_was_edited(
    plain_pair: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """orig → w goes through v's build: with v's record changed since the lake noted it (it vouches for v's
    removed.parquet), the URLs are read from the shards, not from the records; the summary is the same."""
    import relake.diff.local as local_mod

    def summary() -> dict[str, Any]:
        s = diff_versions(plain_pair, "orig", "w", key=["SAMPLE_ID"], use_buckets=False, limit=2)
        return {"rows": (s.rows_a, s.rows_b, s.removed), "domains": s.removed_by_domain, "examples": s.examples}

    before = summary()
    calls: list[bool] = []
    real = local_mod._light_from_records
    monkeypatch.setattr(local_mod, "_light_from_records", lambda *args: calls.append(True) or real(*args))
    path = plain_pair.version_dir("v") / "version.json"
    saved = path.read_text(encoding="utf-8")
    try:
        path.chmod(0o644)
        path.write_text(json.dumps(json.loads(saved)), encoding="utf-8")  # the same fields, other bytes
        assert summary() == before
        assert calls == []
    finally:
        path.write_text(saved, encoding="utf-8")
    assert summary() == before and calls
