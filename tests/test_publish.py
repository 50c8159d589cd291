"""publish.py (relake manifest / publish / lookup): nothing harmful is ever published, the crowd rule, the
public manifest's format, multi-generation manifests, release folders that check with sha256sum and verify,
byte-identical re-publishing, and lookups by canonical URL.

The leak test plants rows with distinctive URLs and captions, removes them with a sensitive URL blocklist,
runs every command that can see them (and every error path it can reach), and greps every byte written under
the lake and the output folders, plus every stdout/stderr, for any trace of them."""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner, Result

from helpers import error_line, fails, found, ok, write_table
from relake.canonical import CANONICAL_VERSION
from relake.cli import app
from relake.errors import InputError
from relake.publish import load_manifest

SHARD_SIZES = (1000, 1200, 800)  # 3,000 rows
N = sum(SHARD_SIZES)
GEN1_T = 0.6  # research: punsafe > 0.6 (benign, ~1,200 rows) + the sensitive URL blocklist (3 rows)
# research's benign crowd is a key blocklist ("unsafe-keys": the ids of rows with punsafe > 0.6); its rows with
# punsafe > 0.95 are also matched by a `where` rule, which the adversary recomputes: those are no crowd
VERY_T = 0.95
GEN2_T = 0.45  # research-safe (built on research): punsafe > 0.45

SCHEMA = pa.schema([("SAMPLE_ID", pa.int64()), ("URL", pa.string()), ("TEXT", pa.string()),
                    ("punsafe", pa.float64()), ("md5", pa.string())])

# row index -> (URL as in the data, caption, canonical URL written out by hand)
PLANTED: dict[int, tuple[str, str, str]] = {
    4: ("http://Secret-Planted-XYZ.example/abc.jpg", "PLANTED-CAPTION-XYZ alpha",
        "http://secret-planted-xyz.example/abc.jpg"),
    1001: ("HTTP://secret-planted-XYZ.example:80/d%7eef.jpg", "PLANTED-CAPTION-XYZ beta",
           "http://secret-planted-xyz.example/d~ef.jpg"),
    2217: ("https://planted-two-QRS.example/x/y.png?id=42", "PLANTED-CAPTION-QRS gamma",
           "https://planted-two-qrs.example/x/y.png?id=42"),
}
# the partner's list spells them differently (matched after canonicalisation)
BLOCKLIST_ENTRIES = ["http://secret-planted-xyz.example/abc.jpg", "http://SECRET-PLANTED-XYZ.example/d~ef.jpg",
                     "https://planted-two-qrs.example:443/x/y.png?id=42"]
NEEDLES = sorted({s for url, cap, canon in PLANTED.values() for s in (url, cap, canon)}
                 | {"secret-planted-xyz.example", "planted-two-qrs.example", "PLANTED-CAPTION",
                    "d%7eef.jpg", "d~ef.jpg", "y.png?id=42"})


def punsafe(i: int) -> float:
    return (i * 37 % 1000) / 1000


def url_of(i: int) -> str:
    return PLANTED[i][0] if i in PLANTED else f"https://img{i % 13}.example.com/a/{i}.jpg"


def canon_of(i: int) -> str:
    return PLANTED[i][2] if i in PLANTED else url_of(i)  # generated URLs are already canonical


def md5hex(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def base_md5(i: int) -> str:
    return md5hex(f"img{i}")


def rows() -> list[dict[str, Any]]:
    return [{"SAMPLE_ID": 10_000 + i, "URL": url_of(i),
             "TEXT": PLANTED[i][1] if i in PLANTED else f"caption {i}",
             "punsafe": punsafe(i), "md5": base_md5(i)} for i in range(N)]


GEN1 = set(PLANTED) | {i for i in range(N) if punsafe(i) > GEN1_T}
GEN2 = {i for i in range(N) if i not in GEN1 and punsafe(i) > GEN2_T}
BENIGN_GEN1 = {i for i in range(N) if punsafe(i) > GEN1_T} - set(PLANTED)
assert not set(PLANTED) & BENIGN_GEN1 and 1100 < len(BENIGN_GEN1) < 1300 and GEN2

SPEC_RESEARCH = f"""
name = "research"
base = "orig"
[params]
t = {VERY_T}
[[rule]]
id = "partner-urls"
blocklist = "secret-urls"
category = "safety"
sensitive = true
[[rule]]
id = "unsafe"
blocklist = "unsafe-keys"
category = "safety"
[[rule]]
id = "very-unsafe"
where = "punsafe > $t"
category = "safety"
"""
SPEC_SAFE = f"""
name = "research-safe"
base = "research"
[[rule]]
id = "borderline"
where = "punsafe > {GEN2_T}"
category = "nsfw"
"""


def write_base(folder: Path) -> list[Path]:
    table = pa.Table.from_pylist(rows(), schema=SCHEMA)
    out, start = [], 0
    for k, n in enumerate(SHARD_SIZES):
        out.append(write_table(table.slice(start, n), folder / f"part-{k:05d}.parquet"))
        start += n
    return out


def run(lake: Path, *args: str | Path) -> Result:
    return CliRunner().invoke(app, ["--lake", str(lake), *map(str, args)])





def partials(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*.partial-*"))


def write_spec(root: Path, text: str, name: str) -> Path:
    p = root / "specs" / f"{name}.toml"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p


def unsafe_keys(root: Path) -> Path:
    """The benign key blocklist: the ids of the rows with punsafe > GEN1_T (a crowd no public rule explains)."""
    path = root / "bl" / "unsafe-keys.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{10_000 + i}\n" for i in range(N) if punsafe(i) > GEN1_T), encoding="utf-8")
    return path


def make_lake(root: Path, record: list[tuple[str, Result]] | None = None) -> Path:
    """A lake with ``orig`` (the sources, by reference), the sensitive URL blocklist ``secret-urls`` and the
    benign key blocklist ``unsafe-keys``."""
    lake = root / "lake"
    src = write_base(root / "src")
    bl = root / "bl" / "secret.txt"
    bl.parent.mkdir(parents=True, exist_ok=True)
    bl.write_text("".join(e + "\n" for e in BLOCKLIST_ENTRIES), encoding="utf-8")
    for label, args in (("ingest", ("ingest", "orig", *src)),
                        ("blocklist", ("blocklist", "add", "secret-urls", bl, "--kind", "url")),
                        ("blocklist", ("blocklist", "add", "unsafe-keys", unsafe_keys(root), "--kind", "key")),
                        ("blocklist", ("blocklist", "list"))):
        r = ok(run(lake, *args))
        if record is not None:
            record.append((label, r))
    return lake


@dataclass
class World:
    root: Path
    lake: Path
    out: Path
    results: list[tuple[str, Result]] = field(default_factory=list)  # (label, result) of every command

    def cmd(self, label: str, *args: str | Path) -> Result:
        r = run(self.lake, *args)
        self.results.append((label, r))
        return r


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """Every command that sees the planted rows, and every error path, run once; results kept for greps."""
    root = tmp_path_factory.mktemp("world")
    record: list[tuple[str, Result]] = []
    w = World(root, make_lake(root, record), root / "out", record)
    w.out.mkdir()
    c = w.cmd
    ok(c("build", "build", "research", "--spec", write_spec(root, SPEC_RESEARCH, "research")))
    ok(c("build", "build", "research-safe", "--spec", write_spec(root, SPEC_SAFE, "research-safe")))
    ok(c("versions", "versions"))
    ok(c("show", "show", "research"))
    ok(c("show", "show", "research", "--json"))
    found(c("diff", "diff", "orig", "research"))
    found(c("diff", "diff", "orig", "research", "--json"))
    (w.out / "diff").mkdir()
    found(c("diff-top", "diff", "orig", "research", "--top", "50", "--out", w.out / "diff" / "d.parquet"))
    for ext in ("csv", "jsonl"):
        found(c("diff", "diff", "orig", "research-safe", "--json", "--top", "50", "--out", w.out / "diff" / f"d.{ext}"))
    ok(c("manifest", "manifest", "orig", "research", "--out", w.out / "pub"))
    ok(c("manifest", "manifest", "orig", "research", "--out", w.out / "pub-json", "--json"))
    ok(c("manifest", "manifest", "orig", "research", "--out", w.out / "pub-img", "--image-hashes"))
    ok(c("manifest", "manifest", "orig", "research-safe", "--out", w.out / "pub-multi"))
    ok(c("manifest-private", "manifest", "orig", "research", "--out", w.out / "private", "--private"))
    ok(c("publish", "publish", "research", w.out / "release"))
    ok(c("publish", "publish", "research", w.out / "release-again"))
    ok(c("publish", "publish", "research-safe", w.out / "release-safe"))
    ok(c("verify", "verify", w.out / "release"))
    ok(c("verify", "verify", w.out / "release-safe"))
    ok(c("verify", "verify"))
    ok(c("verify", "verify", "research", "--json"))
    # lookups: the user's own URL on the command line (stdout echoes it back: excluded from the grep)
    assert c("lookup-stdout", "lookup", "HTTP://SECRET-PLANTED-XYZ.EXAMPLE:80/abc.jpg#frag",
             "--manifest", w.out / "pub").exit_code == 1
    assert c("lookup-stdout", "lookup", PLANTED[2217][0], "https://unrelated.example/none.jpg",
             "--manifest", w.out / "release" / "manifest", "--json").exit_code == 1
    ok(c("lookup-stdout", "lookup", "https://unrelated.example/none.jpg", "--manifest", w.out / "pub"))
    # error paths
    fails(c("crowd", "manifest", "orig", "research", "--out", w.out / "crowd", "--min-crowd", "5000"))
    fails(c("crowd", "publish", "research", w.out / "crowd-release", "--min-crowd", "5000"))
    fails(c("exists", "manifest", "orig", "research", "--out", w.out / "pub"))
    fails(c("exists", "manifest", "orig", "research", "--out", w.out / "private", "--private"))
    fails(c("exists", "publish", "research", w.out / "release"))
    fails(c("missing", "manifest", "orig", "no-such-version", "--out", w.out / "missing"))
    fails(c("missing", "manifest", "research", "orig", "--out", w.out / "backwards"))
    fails(c("missing", "publish", "no-such-version", w.out / "missing-release"))
    fails(c("missing", "verify", "no-such-version"))
    for bad in (w.out / "private", w.out / "release", w.out / "nowhere"):
        fails(c("bad-manifest", "lookup", PLANTED[4][0], "--manifest", bad))
    fails(c("missing", "verify", w.out / "nowhere"))
    corrupt = w.out / "release-corrupt"
    shutil.copytree(w.out / "release", corrupt)
    flip_byte(corrupt / "data" / "part-00001.parquet")
    assert found(c("verify-bad", "verify", corrupt)).stderr.startswith("Error: ")  # a failed verification: 1
    assert c("verify-bad", "verify", corrupt, "--json").exit_code == 1
    return w


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def parquet_text(path: Path) -> str:
    """The decoded content of a parquet file (values, schema metadata, statistics), as text."""
    try:
        f = pq.ParquetFile(path)
        parts = [repr(f.schema_arrow), repr(f.metadata.metadata)]
        for rg in range(f.metadata.num_row_groups):
            for col in range(f.metadata.num_columns):
                st = f.metadata.row_group(rg).column(col).statistics
                if st is not None and st.has_min_max:
                    parts.append(f"{st.min!r} {st.max!r}")
        parts.append(repr(f.read().to_pylist()))
    except (pa.ArrowException, OSError, ValueError):
        return ""  # the deliberately corrupted copy; its raw bytes are still grepped
    return "\n".join(parts)


def leaks(data: bytes) -> list[str]:
    low = data.lower()
    return [n for n in NEEDLES if n.lower().encode() in low]


def public_files(w: World) -> list[Path]:
    """Every file under the lake and the output folders except the private audit copy, the versions'
    private provenance and the blocklist store (the maintainer's input)."""
    files = []
    for top in (w.lake, w.out):
        for p in sorted(top.rglob("*")):
            rel = p.relative_to(top).parts
            if not p.is_file() or p.is_symlink():
                continue
            if top == w.out and rel[0] == "private":
                continue
            if top == w.lake and (rel[0] == "blocklists" or (rel[0] == "versions" and rel[-1] == "removed.parquet")):
                continue
            if top == w.lake and rel[0] == "url-cache":  # the original's hosts, every row's: owner-only (urlcache.py)
                assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
                continue
            files.append(p)
    return files


# --- nothing harmful is published -----------------------------------------------------------------


def test_planted_rows_leave_no_trace_anywhere_public(world: World) -> None:
    files = public_files(world)
    names = {p.relative_to(world.root).as_posix() for p in files}
    assert {"out/pub/removed.parquet", "out/release/manifest/removed.parquet", "out/release/CHANGELOG.md",
            "out/pub-multi/manifest.json", "lake/versions/research/version.json"} <= names
    found = {}
    for p in files:
        data = p.read_bytes()
        hit = leaks(data) + (leaks(parquet_text(p).encode()) if p.suffix == ".parquet" else [])
        if hit:
            found[p.relative_to(world.root).as_posix()] = sorted(set(hit))
    for label, r in world.results:
        streams = {"stderr": r.stderr_bytes} | ({} if label == "lookup-stdout" else {"stdout": r.stdout_bytes})
        for s, data in streams.items():
            if leaks(data):
                found[f"{label} {s}"] = leaks(data)
    assert not found, found
    # ... and the test can fail for the right reason: the hashes are there, the private copy holds the URLs
    public = pq.read_table(world.out / "pub" / "removed.parquet").column("url_sha256").to_pylist()
    assert {sha(canon) for _, _, canon in PLANTED.values()} <= set(public)
    assert leaks(parquet_text(world.out / "private" / "removed-private.parquet").encode())
    assert leaks(parquet_text(world.lake / "versions" / "research" / "removed.parquet").encode())
    assert not partials(world.root)


def test_error_paths_were_reached_with_their_messages(world: World) -> None:
    by = {}
    for label, r in world.results:
        by.setdefault(label, []).append(r)
    assert all("'safety'" in error_line(r) and "crowd" in error_line(r) for r in by["crowd"])
    assert all("already exists" in error_line(r) for r in by["exists"])
    assert len(by["missing"]) == 5 and len(by["bad-manifest"]) == 3
    assert not (world.out / "crowd").exists() and not (world.out / "crowd-release").exists()
    assert not (world.out / "missing").exists() and not (world.out / "missing-release").exists()


def test_diff_withholds_sensitive_removals_from_rows_and_domains(world: World) -> None:
    """(Was a finding: ``diff --out`` listed the sensitive rows with URL and caption, and ``--top`` named their
    hosts; now they are counted as withheld. The files and output are also in the leak grep above.)"""
    table = pq.read_table(world.out / "diff" / "d.parquet")
    assert table.num_rows == len(BENIGN_GEN1)
    assert set(table.column("SAMPLE_ID").to_pylist()) == {10_000 + i for i in BENIGN_GEN1}
    for ext in ("csv", "jsonl"):
        text = (world.out / "diff" / f"d.{ext}").read_text(encoding="utf-8")
        assert url_of(min(BENIGN_GEN1)) in text and not leaks(text.encode())
    r = next(r for label, r in world.results if label == "diff-top")
    assert "withheld" in r.stdout and "img0.example.com" in r.stdout


# --- the public manifest --------------------------------------------------------------------------


def test_public_manifest_format_and_counts(world: World) -> None:
    folder = world.out / "pub"
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "removed.parquet"]
    table = pq.read_table(folder / "removed.parquet")
    assert table.column_names == ["match", "url_sha256", "caption_sha256", "key_sha256", "category"]
    assert set(table.column("match").to_pylist()) == {"url"}  # no row of a removed URL is kept
    assert table.column("caption_sha256").null_count == table.column("key_sha256").null_count == table.num_rows
    got = list(zip(table.column("url_sha256").to_pylist(), table.column("category").to_pylist(), strict=True))
    assert got == sorted(got) and len(set(got)) == len(got)
    assert got == sorted((sha(canon_of(i)), "safety") for i in GEN1)
    meta = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert meta["format"] == "relake.manifest/2" and meta["hash"] == "sha256"
    assert meta["entries"] == {"url": len(GEN1), "caption": 0, "key": 0} and meta["kept_rows_also_matched"] == 0
    assert meta["canonical_url_version"] == CANONICAL_VERSION
    for side, name in (("from", "orig"), ("to", "research")):
        version = json.loads((world.lake / "versions" / name / "version.json").read_text(encoding="utf-8"))
        assert meta[side]["name"] == name
        assert meta[side]["fingerprint"] == version["fingerprint"]["value"]
    assert meta["counts"] == dict(Counter(c for _, c in got)) == {"safety": len(GEN1)}
    assert meta["files"]["removed.parquet"] == hashlib.sha256((folder / "removed.parquet").read_bytes()).hexdigest()
    # the copy inside the release is the same manifest
    assert (world.out / "release" / "manifest" / "removed.parquet").read_bytes() == \
        (folder / "removed.parquet").read_bytes()


@pytest.mark.parametrize(("version", "advice"), [
    ("1", ". Make the manifest again with this relake (relake manifest / relake publish) or ask its publisher "
          f"for one of version {CANONICAL_VERSION}"),
    ("99", "; upgrade relake"),
    (None, "; upgrade relake"),
])
def test_manifest_of_another_canonical_rule_is_fails(world: World, tmp_path: Path, version: str | None,
                                                      advice: str) -> None:
    """URL hashes taken under another rule (v1 hashed 'a b' and 'a%20b' apart) would silently match nothing."""
    folder = tmp_path / "m"
    shutil.copytree(world.out / "pub", folder)
    meta = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert load_manifest(folder).rows == meta["rows"]
    meta["canonical_url_version"] = version
    (folder / "manifest.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(InputError) as exc:
        load_manifest(folder)
    assert str(exc.value) == (
        f"{folder / 'manifest.json'}: URL hashes use canonical URL rule version {version!r}, this relake "
        f"implements version {CANONICAL_VERSION}; they would not match (URLs would be missed silently){advice}")


def test_manifest_over_two_generations_holds_both(world: World) -> None:
    table = pq.read_table(world.out / "pub-multi" / "removed.parquet")
    got = list(zip(table.column("url_sha256").to_pylist(), table.column("category").to_pylist(), strict=True))
    expected = sorted([(sha(canon_of(i)), "safety") for i in GEN1] + [(sha(canon_of(i)), "nsfw") for i in GEN2])
    assert got == expected
    meta = json.loads((world.out / "pub-multi" / "manifest.json").read_text(encoding="utf-8"))
    assert meta["from"]["name"] == "orig" and meta["to"]["name"] == "research-safe"
    assert meta["counts"] == {"safety": len(GEN1), "nsfw": len(GEN2)}
    # the release of research-safe lists everything since the original (issue #14, item 3): a holder of `orig`
    # cleans a copy with it; its CHANGELOG says which copies it cleans
    release = world.out / "release-safe"
    assert (release / "manifest" / "removed.parquet").read_bytes() == \
        (world.out / "pub-multi" / "removed.parquet").read_bytes()
    changelog = (release / "CHANGELOG.md").read_text(encoding="utf-8")
    assert ("The manifest lists every row removed from `orig` to `research-safe` (over 2 generations): it cleans "
            "copies of `orig` or of any version between it and this one (`research`).") in changelog


def test_publish_since_chooses_the_ancestor(world: World, tmp_path: Path) -> None:
    ok(run(world.lake, "publish", "research-safe", tmp_path / "rel", "--since", "research"))
    own = pq.read_table(tmp_path / "rel" / "manifest" / "removed.parquet")
    assert sorted(own.column("url_sha256").to_pylist()) == sorted(sha(canon_of(i)) for i in GEN2)
    assert "it cleans copies of `research`." in (tmp_path / "rel" / "CHANGELOG.md").read_text(encoding="utf-8")
    assert fails(run(world.lake, "publish", "research", tmp_path / "rel2", "--since", "research-safe")) == (
        "Error: 'research-safe' is not an ancestor of 'research'; a removal manifest goes from a version to one "
        "built from it (`relake versions` shows the lineage)")
    assert not (tmp_path / "rel2").exists()


def test_private_manifest_is_owner_only_and_warns(world: World) -> None:
    folder = world.out / "private"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = list(folder.iterdir())
    assert {p.name for p in files} >= {"manifest.json", "removed-private.parquet"}
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)
    r = next(r for label, r in world.results if label == "manifest-private")
    assert "Warning:" in r.stderr and "--private" in r.stderr
    urls = set(pq.read_table(folder / "removed-private.parquet").column("url").to_pylist())
    assert {PLANTED[i][0] for i in PLANTED} <= urls


def test_image_hashes_come_from_the_base_data_only(world: World) -> None:
    table = pq.read_table(world.out / "pub-img" / "removed.parquet")
    assert table.column_names == ["match", "url_sha256", "caption_sha256", "key_sha256", "category", "image_md5"]
    got = list(zip(*(table.column(c).to_pylist() for c in ("url_sha256", "category", "image_md5")), strict=True))
    assert got == sorted((sha(canon_of(i)), "safety", base_md5(i)) for i in GEN1)
    assert json.loads((world.out / "pub-img" / "manifest.json").read_text())["image_hash"] == "md5"


def test_partner_only_image_hashes_never_reach_the_public_file(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    src = write_base(tmp_path / "src")
    ok(run(lake, "ingest", "orig", *src))
    side_md5 = {i: md5hex(f"side{i}") for i in range(0, N, 2)}  # LAION-style side table, other hashes
    side = write_table(pa.table({"SAMPLE_ID": pa.array([10_000 + i for i in side_md5], pa.int64()),
                                 "md5": pa.array(list(side_md5.values()), pa.string())}), tmp_path / "side.parquet")
    partner_only = md5hex("never in the data")
    (tmp_path / "col.txt").write_text(f"{base_md5(20).upper()}\n{partner_only}\n", encoding="utf-8")
    (tmp_path / "side.txt").write_text(f"{side_md5[10]}\n", encoding="utf-8")
    ok(run(lake, "blocklist", "add", "partner-col", tmp_path / "col.txt", "--kind", "image-md5"))
    ok(run(lake, "blocklist", "add", "partner-side", tmp_path / "side.txt", "--kind", "image-md5"))
    ok(run(lake, "blocklist", "add", "unsafe-keys", unsafe_keys(tmp_path), "--kind", "key"))
    spec = write_spec(tmp_path, f"""
name = "img"
base = "orig"
[[rule]]
id = "col"
blocklist = "partner-col"
column = "md5"
category = "safety"
sensitive = true
[[rule]]
id = "side"
blocklist = "partner-side"
side = '{side}'
side_key = "SAMPLE_ID"
side_hash = "md5"
category = "safety"
sensitive = true
[[rule]]
id = "benign"
blocklist = "unsafe-keys"
category = "safety"
""", "img")
    ok(run(lake, "build", "img", "--spec", spec))
    ok(run(lake, "manifest", "orig", "img", "--out", tmp_path / "m", "--image-hashes"))
    table = pq.read_table(tmp_path / "m" / "removed.parquet")
    removed = {10, 20} | BENIGN_GEN1
    assert table.column("image_md5").to_pylist() == [h for _, h in sorted((sha(canon_of(i)), base_md5(i))
                                                                          for i in removed)]
    data = (tmp_path / "m" / "removed.parquet").read_bytes() + parquet_text(tmp_path / "m" / "removed.parquet").encode()
    for h in (partner_only, side_md5[10]):
        assert h.encode() not in data.lower()


# --- the crowd rule -------------------------------------------------------------------------------

SPEC_LONE = """
name = "{name}"
base = "orig"
{top}
[[rule]]
id = "partner-urls"
blocklist = "secret-urls"
category = "csam"
sensitive = true
[[rule]]
id = "unsafe"
blocklist = "unsafe-keys"
category = "{benign}"
"""


def test_crowd_rule_refuses_a_lone_sensitive_category_and_writes_nothing(tmp_path: Path) -> None:
    lake = make_lake(tmp_path)
    ok(run(lake, "build", "lone", "--spec", write_spec(tmp_path, SPEC_LONE.format(name="lone", top="",
                                                                                    benign="safety"), "lone")))
    out = tmp_path / "out"
    out.mkdir()
    for args in (("manifest", "orig", "lone", "--out", out / "m"), ("publish", "lone", out / "rel")):
        line = fails(run(lake, *args))
        assert "'csam'" in line
        for hint in ("Merge", "benign filter", "crowd", "--min-crowd"):
            assert hint in line, line
        assert sorted(p.name for p in out.iterdir()) == []
    assert not partials(tmp_path)
    # K = 0 lets it through (the maintainer accepted the exposure); the private copy is never refused
    ok(run(lake, "manifest", "orig", "lone", "--out", out / "k0", "--min-crowd", "0"))
    ok(run(lake, "manifest", "orig", "lone", "--out", out / "private", "--private"))
    # the same rules with the benign filter in the sensitive rule's category publish
    ok(run(lake, "build", "merged", "--spec", write_spec(tmp_path, SPEC_LONE.format(name="merged", top="",
                                                                                      benign="csam"), "merged")))
    ok(run(lake, "manifest", "orig", "merged", "--out", out / "merged"))
    ok(run(lake, "publish", "merged", out / "merged-rel"))
    meta = json.loads((out / "merged" / "manifest.json").read_text(encoding="utf-8"))
    assert meta["counts"] == {"csam": len(GEN1)} and meta["min_crowd"] == 1000
    assert not partials(tmp_path)


def test_min_crowd_override_works_both_ways(tmp_path: Path) -> None:
    lake = make_lake(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    benign = len(BENIGN_GEN1)
    ok(run(lake, "build", "strict", "--spec", write_spec(tmp_path, SPEC_LONE.format(
        name="strict", top="min_crowd = 5000", benign="csam"), "strict")))
    assert "5000" in fails(run(lake, "manifest", "orig", "strict", "--out", out / "a"))  # the spec's K
    fails(run(lake, "publish", "strict", out / "a-rel"))
    assert "'csam'" in fails(run(lake, "manifest", "orig", "strict", "--out", out / "b", "--min-crowd",
                                 str(benign + 1)))
    ok(run(lake, "manifest", "orig", "strict", "--out", out / "c", "--min-crowd", str(benign)))
    ok(run(lake, "publish", "strict", out / "c-rel", "--min-crowd", str(benign)))
    assert json.loads((out / "c" / "manifest.json").read_text(encoding="utf-8"))["min_crowd"] == benign
    assert sorted(p.name for p in out.iterdir()) == ["c", "c-rel"]
    assert not partials(tmp_path)


# --- release folders ------------------------------------------------------------------------------


def test_release_checks_with_sha256sum_and_verify(world: World) -> None:
    release = world.out / "release"
    assert sorted(p.name for p in release.iterdir()) == ["CHANGELOG.md", "SHA256SUMS", "data", "manifest",
                                                        "report.html", "version.json"]
    listed = {ln.split("  ", 1)[1] for ln in (release / "SHA256SUMS").read_text().splitlines()}
    assert listed == {p.relative_to(release).as_posix() for p in release.rglob("*")
                      if p.is_file() and p.name != "SHA256SUMS"}
    done = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=release, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    version = json.loads((release / "version.json").read_text(encoding="utf-8"))
    assert version["rows"] == N - len(GEN1)
    assert sum(pq.read_metadata(release / s["path"]).num_rows for s in version["shards"]) == N - len(GEN1)


def test_verify_names_a_shard_with_one_changed_byte(world: World, tmp_path: Path) -> None:
    copy = tmp_path / "release"
    shutil.copytree(world.out / "release", copy)
    ok(run(world.lake, "verify", copy))
    flip_byte(copy / "data" / "part-00001.parquet")
    r = run(world.lake, "verify", copy)
    found(r)  # a failed verification exits 1
    assert "part-00001.parquet" in r.stdout and "part-00000" not in r.stdout
    done = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=copy, capture_output=True, text=True, check=False)
    assert done.returncode != 0
    # a changed public manifest is caught too (through SHA256SUMS)
    copy2 = tmp_path / "release2"
    shutil.copytree(world.out / "release", copy2)
    flip_byte(copy2 / "manifest" / "removed.parquet")
    r = run(world.lake, "verify", copy2)
    found(r)
    assert "manifest/removed.parquet" in r.stdout and "data/" not in r.stdout


def test_republishing_gives_byte_identical_files(world: World) -> None:
    def digests(folder: Path) -> dict[str, str]:
        return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in folder.rglob("*") if p.is_file()}

    first, again = digests(world.out / "release"), digests(world.out / "release-again")
    assert first == again and len(first) == 9  # 3 shards, version.json, CHANGELOG, SHA256SUMS, 2 manifest files,
    # report.html


def test_original_release_has_no_manifest(world: World, tmp_path: Path) -> None:
    release = tmp_path / "release-orig"  # the original's own data: outside the grepped folders
    ok(run(world.lake, "publish", "orig", release))
    assert sorted(p.name for p in release.iterdir()) == ["CHANGELOG.md", "SHA256SUMS", "data", "version.json"]


# --- lookup ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["HTTP://SECRET-PLANTED-XYZ.EXAMPLE:80/abc.jpg#frag",
                                      "  http://secret-planted-xyz.example/%61bc.jpg"])
@pytest.mark.parametrize("folder", ["pub", "pub-img", "pub-multi", "release/manifest"])
def test_lookup_finds_a_removed_url_in_another_spelling(world: World, spelling: str, folder: str) -> None:
    r = run(world.lake, "lookup", spelling, "--manifest", world.out / folder)
    assert r.exit_code == 1, (r.stdout, r.stderr)
    assert "LISTED safety" in r.stdout and "Error" not in r.stderr
    listed = json.loads(run(world.lake, "lookup", spelling, "--manifest", world.out / folder, "--json").stdout)
    assert listed == [{"url": spelling, "url_sha256": sha(PLANTED[4][2]), "listed": True, "category": "safety",
                       "some_rows_only": False}]


def test_lookup_of_unrelated_or_kept_urls_is_not_listed(world: World) -> None:
    kept = next(i for i in range(N) if i not in GEN1)
    r = ok(run(world.lake, "lookup", "https://unrelated.example/none.jpg", url_of(kept),
               "--manifest", world.out / "pub"))
    assert r.stdout.count("not listed") == 2 and "LISTED" not in r.stdout


def test_crowd_counts_only_hashes_no_sensitive_rule_matched(tmp_path: Path) -> None:
    """A URL removed from one row by the sensitive rule and from another row by the benign rule is not part of
    the crowd that hides it: K counts hashes matched only by non-sensitive rules."""
    dup = "http://dup-secret.example/x.jpg"
    table = pa.table({"SAMPLE_ID": pa.array(range(100), pa.int64()),
                      "URL": [dup if i in (5, 50) else f"https://h.example/{i}.jpg" for i in range(100)],
                      "TEXT": [f"caption {i}" for i in range(100)],
                      "punsafe": [0.99 if i == 50 else i / 100 for i in range(100)]})
    lake = tmp_path / "lake"
    ok(run(lake, "ingest", "orig", write_table(table, tmp_path / "src" / "part-00000.parquet")))
    (tmp_path / "keys.txt").write_text("5\n", encoding="utf-8")
    ok(run(lake, "blocklist", "add", "partner-keys", tmp_path / "keys.txt", "--kind", "key"))
    (tmp_path / "benign.txt").write_text("".join(f"{i}\n" for i in (50, *range(91, 100))), encoding="utf-8")
    ok(run(lake, "blocklist", "add", "benign-keys", tmp_path / "benign.txt", "--kind", "key"))
    ok(run(lake, "build", "v", "--spec", write_spec(tmp_path, """
name = "v"
base = "orig"
[[rule]]
id = "partner"
blocklist = "partner-keys"
category = "safety"
sensitive = true
[[rule]]
id = "benign"
blocklist = "benign-keys"
category = "safety"
""", "v")))
    benign_only = {f"https://h.example/{i}.jpg" for i in range(91, 100)}  # row 50's hash is also row 5's
    assert "only 9 removal(s)" in fails(run(lake, "manifest", "orig", "v", "--out", tmp_path / "a",
                                            "--min-crowd", str(len(benign_only) + 1)))
    ok(run(lake, "manifest", "orig", "v", "--out", tmp_path / "b", "--min-crowd", str(len(benign_only))))
    got = pq.read_table(tmp_path / "b" / "removed.parquet").column("url_sha256").to_pylist()
    assert got == sorted(sha(u) for u in benign_only | {dup})


def test_released_version_json_does_not_single_out_sensitive_rules(world: World) -> None:
    """The lake's version.json keeps the whole recipe; the released one keeps hashes and categories only."""
    lake_text = (world.lake / "versions" / "research" / "version.json").read_text(encoding="utf-8")
    assert "partner-urls" in lake_text and "secret-urls" in lake_text  # so the test can fail for the right reason
    released = json.loads((world.out / "release" / "version.json").read_text(encoding="utf-8"))
    text = json.dumps(released)
    for word in ("partner-urls", "secret-urls", "punsafe > $t"):
        assert word not in text
    assert [{k: v for k, v in r.items() if k != "blocklist"} for r in released["recipe"]["rules"]] == [
        {"category": "safety", "sensitive": True}, {"id": "unsafe", "category": "safety", "sensitive": False},
        {"id": "very-unsafe", "category": "safety", "sensitive": False}]
    assert set(released["stats"]) == {"removed_rows", "removed_by_category", "removed_by_public_category"}
    assert released["recipe"]["spec_sha256"] == json.loads(lake_text)["recipe"]["spec_sha256"]
