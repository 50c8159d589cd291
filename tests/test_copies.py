"""Downstream copies: synth-copy, check and clean on img2dataset-like folders (webdataset tars and parquet).

The reference for "affected" is computed here, independently, with hashlib and ``canonical.canonical_url``
over the copy's parquet rows read by pyarrow.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from helpers import Cli, error_line, laion_rows, snapshot, snapshot_diff, write_table
from relake.canonical import CANONICAL_VERSION, canonical_url
from relake.copies import RECORD_NAME, check_copy, clean_copy, member_key
from relake.lake import Lake
from relake.synthcopy import png_bytes, sample_key, synth_copy

CANONICAL_ONLY = "HTTP://Example.COM:80/x"  # in the copy; the manifest hashes "http://example.com/x"
DUP_URL = "https://dup.example.org/same.jpg"  # six rows: lands in several shards
ELSEWHERE = "https://elsewhere.example.net/other.jpg"  # a removed URL not in the copy (its image is)
SHARD_SIZE = 100


# ------------------------------------------------------------------------------------------- fixtures


def source_table() -> pa.Table:
    rows = laion_rows(0, 594)
    rows.append({"SAMPLE_ID": 10_000, "URL": CANONICAL_ONLY, "TEXT": "planted canonical", "punsafe": 0.5})
    rows += [{"SAMPLE_ID": 10_001 + i, "URL": DUP_URL, "TEXT": f"dup {i}", "punsafe": 0.1} for i in range(6)]
    return pa.Table.from_pylist(rows)


@dataclass
class CopyRow:
    shard: str
    pos: int
    row: dict[str, Any]


def copy_rows(copy: Path) -> list[CopyRow]:
    out = []
    for p in sorted(copy.glob("*.parquet")):
        for i, r in enumerate(pq.read_table(p).to_pylist()):
            out.append(CopyRow(p.stem, i, r))
    return out


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def ref_url_hash(url: str | None) -> str | None:
    c = canonical_url(url)
    return None if c is None else sha256_hex(c)


def write_manifest(folder: Path, url_hashes: list[str], images: list[str | None], algo: str | None = "md5",
                   **meta: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    pairs = sorted(zip(url_hashes, images, strict=True))
    cols: dict[str, Any] = {"url_sha256": [u for u, _ in pairs], "category": ["safety"] * len(pairs)}
    if algo is not None:
        cols[f"image_{algo}"] = pa.array([i for _, i in pairs], type=pa.string())
    pq.write_table(pa.table(cols), folder / "removed.parquet")
    sidecar = {"format": "relake.record/1", "hash": "sha256", "canonical_url_version": CANONICAL_VERSION,
               "image_hash": algo, "rows": len(pairs), "counts": {"safety": len(pairs)},
               "files": {"removed.parquet": hashlib.sha256((folder / "removed.parquet").read_bytes()).hexdigest()}
               } | meta
    (folder / "manifest.json").write_text(json.dumps(sidecar), encoding="utf-8")
    return folder


@dataclass
class Planted:
    src: Path
    copy: Path
    manifest: Path
    rows: list[CopyRow]
    expected: dict[tuple[str, int], str]  # (shard, pos) -> how
    url_hashes: set[str]
    images: set[str]


def plant(copy: Path, manifest: Path) -> Planted:
    rows = copy_rows(copy)
    rng = random.Random(11)
    ok = [r for r in rows if r.row["status"] == "success" and r.row["url"] not in (CANONICAL_ONLY, DUP_URL)]
    failed = [r for r in rows if r.row["status"] != "success" and r.row["url"] not in (CANONICAL_ONLY, DUP_URL)]
    by_url, both, by_image = rng.sample(ok, 3), rng.choice(ok), rng.choice(ok)
    hashes: list[str] = []
    images: list[str | None] = []
    for r in by_url:
        hashes.append(sha256_hex(r.row["url"]))  # plain URLs: already canonical
        images.append(None)
    hashes.append(sha256_hex(both.row["url"]))
    images.append(both.row["md5"])
    hashes.append(sha256_hex(ELSEWHERE))
    images.append(by_image.row["md5"])
    hashes.append(sha256_hex("http://example.com/x"))
    images.append(None)
    hashes.append(sha256_hex(failed[0].row["url"]))
    images.append(None)
    hashes.append(sha256_hex(DUP_URL))
    images.append(None)
    for i in range(40):  # removed elsewhere, not in this copy
        hashes.append(sha256_hex(f"https://gone{i}.example.com/{i}.jpg"))
        images.append(hashlib.md5(str(i).encode(), usedforsecurity=False).hexdigest() if i % 2 else None)
    write_manifest(manifest, hashes, images)

    url_set, img_set = set(hashes), {i for i in images if i}
    expected = {}
    for r in rows:
        u = ref_url_hash(r.row["url"]) in url_set
        m = r.row["md5"] is not None and r.row["md5"].lower() in img_set
        if u or m:
            expected[(r.shard, r.pos)] = "both" if u and m else ("url" if u else "image")
    # the planted cases really are there
    canon = next(r for r in rows if r.row["url"] == CANONICAL_ONLY)
    assert expected[(canon.shard, canon.pos)] == "url"
    assert expected[(both.shard, both.pos)] == "both"
    assert expected[(by_image.shard, by_image.pos)] == "image"
    assert expected[(failed[0].shard, failed[0].pos)] == "url"
    dup_shards = {r.shard for r in rows if r.row["url"] == DUP_URL}
    assert len(dup_shards) >= 2
    return Planted(copy.parent / "src", copy, manifest, rows, expected, url_set, img_set)


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Planted:
    root = tmp_path_factory.mktemp("copies")
    write_table(source_table(), root / "src" / "part-00000.parquet")
    synth_copy(Lake.at(root / "no-lake"), str(root / "src"), root / "copy", shard_size=SHARD_SIZE,
               hash_algo="md5", failure_rate=0.15, seed=7)
    return plant(root / "copy", root / "manifest")


@pytest.fixture(scope="module")
def planted_parquet(tmp_path_factory: pytest.TempPathFactory) -> Planted:
    root = tmp_path_factory.mktemp("copies-parquet")
    write_table(source_table(), root / "src" / "part-00000.parquet")
    synth_copy(Lake.at(root / "no-lake"), str(root / "src"), root / "copy", shard_size=SHARD_SIZE,
               hash_algo="md5", failure_rate=0.15, seed=8, fmt="parquet")
    return plant(root / "copy", root / "manifest")


# ------------------------------------------------------------------------------------------- helpers


def raw_members(path: Path) -> dict[str, bytes]:
    """Each member's exact bytes (extended headers, header, data, padding), by name."""
    data = path.read_bytes()
    out = {}
    with tarfile.open(path) as tar:
        for m in tar:
            end = m.offset_data + -(-m.size // 512) * 512
            out[m.name] = data[m.offset:end]
    return out


def member_names(path: Path) -> list[str]:
    with tarfile.open(path) as tar:
        return tar.getnames()


# ------------------------------------------------------------------------------------------- synth-copy


def test_synth_copy_layout_and_determinism(tmp_path: Path) -> None:
    write_table(source_table(), tmp_path / "src" / "part-00000.parquet")
    lake = Lake.at(tmp_path / "no-lake")
    a = synth_copy(lake, str(tmp_path / "src"), tmp_path / "a", shard_size=250, hash_algo="sha256", seed=5)
    synth_copy(lake, str(tmp_path / "src"), tmp_path / "b", shard_size=250, hash_algo="sha256", seed=5)
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        f"{i:05d}{suffix}" for i in range(3) for suffix in (".parquet", ".tar", "_stats.json")]
    assert a.rows == 601 and a.shards == 3 and 0 < a.failures < 120
    assert not (tmp_path / "no-lake").exists()

    table = pq.read_table(tmp_path / "a" / "00001.parquet")
    assert table.column_names == ["url", "caption", "SAMPLE_ID", "punsafe", "key", "status", "error_message", "width",
                                  "height", "original_width", "original_height", "exif", "sha256"]
    rows = table.to_pylist()
    assert [r["key"] for r in rows] == [f"00001{i:03d}" for i in range(250)]
    with tarfile.open(tmp_path / "a" / "00001.tar") as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar}  # type: ignore[union-attr]
    for r in rows:
        if r["status"] == "success":
            image = members[r["key"] + ".png"]
            assert image.startswith(b"\x89PNG\r\n\x1a\n") and 500 < len(image) < 10_000
            assert hashlib.sha256(image).hexdigest() == r["sha256"]
            assert json.loads(members[r["key"] + ".json"])["url"] == r["url"]
            assert members[r["key"] + ".txt"].decode() == (r["caption"] or "")
        else:
            assert r["sha256"] is None and r["error_message"] and r["key"] + ".png" not in members
    stats = json.loads((tmp_path / "a" / "00001_stats.json").read_text())
    assert stats["count"] == 250
    assert stats["successes"] == sum(r["status"] == "success" for r in rows)
    # re-sharded and re-ordered: not the source order
    assert [r["SAMPLE_ID"] for r in rows[:20]] != sorted(r["SAMPLE_ID"] for r in rows[:20])


def test_png_is_valid() -> None:
    import numpy as np

    data, w, h = png_bytes(np.random.default_rng(1))
    assert data[12:16] == b"IHDR"
    idat_len = int.from_bytes(data[33:37], "big")
    assert data[37:41] == b"IDAT"
    raw = zlib.decompress(data[41:41 + idat_len])
    assert len(raw) == h * (1 + 3 * w)
    assert data.endswith(b"IEND\xaeB`\x82")


def test_sample_key_and_member_key() -> None:
    assert sample_key(1, 42, 10_000) == "000010042"
    assert sample_key(3, 7, 100) == "0000307"
    assert member_key("000010042.jpg") == "000010042"
    assert member_key("./000010042.json") == "000010042"
    assert member_key("dir/abc.seg.txt") == "dir/abc"
    assert member_key("noext") == "noext"


# ------------------------------------------------------------------------------------------- check


def test_check_finds_exactly_the_planted_rows(planted: Planted) -> None:
    report = check_copy(Lake.at(planted.copy.parent / "no-lake"), planted.copy, planted.manifest)
    layout = report.copy_layout
    assert layout is not None
    found = {(layout.shards[r.shard].name, r.pos): r.how for r in report.affected_rows}
    assert found == planted.expected
    assert report.image_matching == "md5"
    by_key = {(r.shard, r.pos): r.row for r in planted.rows}
    assert report.count("failed") == sum(by_key[k]["status"] != "success" for k in planted.expected) >= 1
    assert report.count("both") == 1 and report.count("image") == 1
    dup_shards = {layout.shards[r.shard].name for r in report.affected_rows
                  if by_key[(layout.shards[r.shard].name, r.pos)]["url"] == DUP_URL}
    assert len(dup_shards) >= 2


def test_check_cli_json_reports_keys_never_urls(planted: Planted, cli: Cli) -> None:
    result = cli("check", planted.copy, "--manifest", planted.manifest, "--json")
    assert result.exit_code == 1, result.stderr
    data = json.loads(result.stdout)
    by_pos = {(r.shard, r.pos): r.row for r in planted.rows}
    got = {(s["shard"], k["pos"]): (k["key"], k["how"]) for s in data["shards"] for k in s["keys"]}
    assert got == {pos: (by_pos[pos]["key"], how) for pos, how in planted.expected.items()}
    assert data["affected"] == len(planted.expected)
    text = cli("check", planted.copy, "--manifest", planted.manifest)
    assert text.exit_code == 1
    for pos in planted.expected:
        row = by_pos[pos]
        for output in (result.stdout, result.stderr, text.stdout, text.stderr):
            assert row["url"] not in output
            assert not row["caption"] or row["caption"] not in output
    assert by_pos[next(iter(planted.expected))]["key"] in text.stdout


def test_check_without_image_column_matches_by_url_only(planted: Planted, tmp_path: Path) -> None:
    manifest = tmp_path / "m"
    url_hashes = sorted(planted.url_hashes)
    write_manifest(manifest, url_hashes, [None] * len(url_hashes), algo="sha256")
    report = check_copy(Lake.at(tmp_path / "no-lake"), planted.copy, manifest)
    assert report.image_matching is None
    assert any("different algorithms" in n for n in report.notes)
    assert {r.how for r in report.affected_rows} == {"url"}


def test_check_manifest_errors(planted: Planted, cli: Cli, tmp_path: Path) -> None:
    bad = write_manifest(tmp_path / "v2", ["a" * 64], [None], format="relake.record/2")
    result = cli("check", planted.copy, "--manifest", bad)
    assert result.exit_code == 2
    assert error_line(result) == (
        f"Error: {bad}/manifest.json: format 'relake.record/2' is not one this relake understands "
        "(relake.manifest/2, or relake.manifest/1 / relake.record/1); upgrade relake or ask for a manifest in "
        "that format")
    old_rule = write_manifest(tmp_path / "c0", ["a" * 64], [None], canonical_url_version="0")
    assert "canonical URL rule version '0'" in error_line(cli("check", planted.copy, "--manifest", old_rule))
    upper = write_manifest(tmp_path / "up", ["A" * 64], [None])
    assert error_line(cli("check", planted.copy, "--manifest", upper)) == (
        f"Error: {upper}/removed.parquet: 1 of 1 url_sha256 values are not 64 lower-case hex digits; "
        "they would never match")
    tampered = write_manifest(tmp_path / "t", ["a" * 64], [None], files={"removed.parquet": "0" * 64})
    assert "sha256 differs from the one in manifest.json" in error_line(
        cli("check", planted.copy, "--manifest", tampered))
    assert error_line(cli("check", planted.copy, "--manifest", tmp_path / "nope")) == (
        f"Error: --manifest {tmp_path / 'nope'}: no such folder")
    assert error_line(cli("check", planted.copy)) == (
        "Error: give --manifest M (a removal manifest folder), --keep-only RELEASE or --blocklist NAME (an image-pdq "
        "list), or several")


def test_check_keep_only_release(planted: Planted, cli: Cli, tmp_path: Path) -> None:
    source = source_table().to_pylist()
    dropped = {3, 10, 14, 77, 594}  # 14 has a NULL caption; 594 is the planted canonical row
    kept = [r for i, r in enumerate(source) if i not in dropped]
    kept.append({"SAMPLE_ID": 99_999, "URL": "http://example.com/x", "TEXT": "other caption", "punsafe": 0.0})
    write_table(pa.Table.from_pylist(kept), tmp_path / "release" / "part-00000.parquet")
    keep = {(canonical_url(r["URL"]), r["TEXT"]) for r in kept}
    expected = {(r.shard, r.pos) for r in planted.rows if (canonical_url(r.row["url"]), r.row["caption"]) not in keep}
    assert len(expected) == len(dropped)
    result = cli("check", planted.copy, "--keep-only", tmp_path / "release", "--json")
    assert result.exit_code == 1, result.stderr
    data = json.loads(result.stdout)
    assert {(s["shard"], k["pos"]) for s in data["shards"] for k in s["keys"]} == expected
    assert {k["how"] for s in data["shards"] for k in s["keys"]} == {"not-in-release"}
    # NULL caption equals NULL caption: the whole source as release affects nothing
    write_table(source_table(), tmp_path / "all" / "part-00000.parquet")
    assert cli("check", planted.copy, "--keep-only", tmp_path / "all").exit_code == 0


# ------------------------------------------------------------------------------------------- clean


def assert_clean_output(p: Planted, out: Path) -> None:
    """Exactly the expected rows and members are gone; everything else is identical."""
    removed_by_shard: dict[str, set[int]] = {}
    for shard, pos in p.expected:
        removed_by_shard.setdefault(shard, set()).add(pos)
    for parquet in sorted(p.copy.glob("*.parquet")):
        shard = parquet.stem
        gone = removed_by_shard.get(shard, set())
        rows = pq.read_table(parquet).to_pylist()
        kept = pq.read_table(out / parquet.name)
        assert kept.to_pylist() == [r for i, r in enumerate(rows) if i not in gone]
        assert kept.schema.names == pq.read_schema(parquet).names
        stats_in = json.loads((p.copy / f"{shard}_stats.json").read_text())
        stats = json.loads((out / f"{shard}_stats.json").read_text())
        statuses = [r["status"] for r in kept.to_pylist()]
        assert stats["count"] == len(statuses)
        assert stats["successes"] == statuses.count("success")
        assert stats["failed_to_download"] == statuses.count("failed_to_download")
        assert stats["status_dict"].get("success", 0) == statuses.count("success")
        assert stats["duration"] == stats_in["duration"]
        tar = p.copy / f"{shard}.tar"
        if not tar.exists():
            continue
        if not gone:
            assert (out / tar.name).read_bytes() == tar.read_bytes()
            assert (out / parquet.name).read_bytes() == parquet.read_bytes()
            continue
        gone_keys = {rows[i]["key"] for i in gone}
        before, after = raw_members(tar), raw_members(out / tar.name)
        assert list(after) == [n for n in member_names(tar) if member_key(n) not in gone_keys]
        assert all(after[n] == before[n] for n in after)  # byte-identical headers and data
        assert len(before) - len(after) == 3 * sum(rows[i]["status"] == "success" for i in gone)
        assert (out / tar.name).stat().st_size % tarfile.RECORDSIZE == 0
        if shutil.which("tar"):
            listed = subprocess.run(["tar", "-tf", str(out / tar.name)], capture_output=True, text=True, check=True)
            assert listed.stdout.split() == list(after)


def test_clean_removes_exactly_the_planted_samples(planted: Planted, cli: Cli, tmp_path: Path) -> None:
    before = snapshot(planted.copy)
    out = tmp_path / "cleaned"
    result = cli("clean", planted.copy, "--manifest", planted.manifest, "--out", out, "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["removed_rows"] == len(planted.expected)
    assert data["rewritten"] == len({s for s, _ in planted.expected})
    assert snapshot_diff(before, snapshot(planted.copy)) == {}
    assert_clean_output(planted, out)
    assert (out / RECORD_NAME).is_file()
    again = cli("check", out, "--manifest", planted.manifest)
    assert again.exit_code == 0, again.stdout + again.stderr


def test_clean_resumes_after_interruption(planted: Planted, tmp_path: Path) -> None:
    lake = Lake.at(tmp_path / "no-lake")
    out = tmp_path / "cleaned"
    first = clean_copy(lake, planted.copy, planted.manifest, out)
    assert first.resumed == 0
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.iterdir() if p.name != RECORD_NAME}
    affected_shard = sorted({s for s, _ in planted.expected})[0]
    clean_shard = next(f"{i:05d}" for i in range(10) if f"{i:05d}" not in {s for s, _ in planted.expected})
    (out / f"{affected_shard}.tar").unlink()  # interrupted before this shard was written
    with open(out / f"{clean_shard}.parquet", "r+b") as fh:  # torn write
        fh.seek(100)
        fh.write(b"garbage")
    untouched = {p.name: p.stat().st_mtime_ns for p in out.iterdir()
                 if p.name.split(".")[0].split("_")[0] not in (affected_shard, clean_shard) and p.name != RECORD_NAME}
    (out / f".{affected_shard}.parquet.relake-tmp").write_bytes(b"half a file")  # a crash's leftover
    second = clean_copy(lake, planted.copy, planted.manifest, out)
    assert second.resumed == first.rewritten + first.copied - 2
    assert second.rewritten == 1 and second.copied == 1
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in out.iterdir() if p.name != RECORD_NAME} == digests
    assert {n: (out / n).stat().st_mtime_ns for n in untouched} == untouched
    assert_clean_output(planted, out)
    third = clean_copy(lake, planted.copy, planted.manifest, out)
    assert third.resumed == first.rewritten + first.copied
    assert third.rewritten == third.copied == 0


def test_clean_refuses_foreign_out_and_out_inside_copy(planted: Planted, cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "cleaned"
    assert cli("clean", planted.copy, "--manifest", planted.manifest, "--out", out).exit_code == 0
    other = write_manifest(tmp_path / "m2", [sha256_hex(DUP_URL)], [None])
    assert error_line(cli("clean", planted.copy, "--manifest", other, "--out", out)) == (
        f"Error: --out {out} holds a clean of another copy or with other matches (another manifest or release); "
        "choose another folder, or remove it to start over")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x.txt").write_text("mine")
    assert "is not empty and holds no .relake-clean.json" in error_line(
        cli("clean", planted.copy, "--manifest", planted.manifest, "--out", busy))
    inside = planted.copy / "cleaned"
    assert error_line(cli("clean", planted.copy, "--manifest", planted.manifest, "--out", inside)) == (
        f"Error: --out {inside} is inside the copy {planted.copy}; write the cleaned copy elsewhere")
    assert not inside.exists()


def test_clean_dry_run_writes_nothing(planted: Planted, cli: Cli, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    copy_before = snapshot(planted.copy)
    result = cli("clean", planted.copy, "--manifest", planted.manifest, "--out", tmp_path / "cleaned", "--dry-run",
                 "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["dry_run"] and data["removed_rows"] == len(planted.expected)
    assert snapshot(tmp_path) == before
    assert snapshot(planted.copy) == copy_before
    text = cli("clean", planted.copy, "--manifest", planted.manifest, "--out", tmp_path / "cleaned", "--dry-run")
    assert text.exit_code == 0 and "would remove" in text.stdout
    assert snapshot(tmp_path) == before


def test_clean_copies_other_files_and_drops_stale_indexes(planted: Planted, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(planted.copy, copy)
    affected_shard = sorted({s for s, _ in planted.expected})[0]
    (copy / f"{affected_shard}.idx").write_text("stale index")
    unaffected = next(f"{i:05d}" for i in range(10) if f"{i:05d}" not in {s for s, _ in planted.expected})
    (copy / f"{unaffected}.idx").write_text("index")
    (copy / "README.md").write_text("my download")
    (copy / "logs").mkdir()
    (copy / "logs" / "run.log").write_text("log")
    report = clean_copy(Lake.at(tmp_path / "no-lake"), copy, planted.manifest, tmp_path / "out")
    assert report.stale == [f"{affected_shard}.idx"]
    assert not (tmp_path / "out" / f"{affected_shard}.idx").exists()
    assert (tmp_path / "out" / f"{unaffected}.idx").read_text() == "index"
    assert (tmp_path / "out" / "README.md").read_text() == "my download"
    assert (tmp_path / "out" / "logs" / "run.log").read_text() == "log"
    assert report.files == 2


def test_parquet_layout(planted_parquet: Planted, cli: Cli, tmp_path: Path) -> None:
    p = planted_parquet
    assert not list(p.copy.glob("*.tar"))
    result = cli("check", p.copy, "--manifest", p.manifest, "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["layout"] == "parquet"
    assert {(s["shard"], k["pos"]): k["how"] for s in data["shards"] for k in s["keys"]} == p.expected
    out = tmp_path / "cleaned"
    assert cli("clean", p.copy, "--manifest", p.manifest, "--out", out).exit_code == 0
    assert_clean_output(p, out)
    kept = pq.read_table(out / "00000.parquet").to_pylist()
    assert all(r["jpg"] is None or hashlib.md5(r["jpg"], usedforsecurity=False).hexdigest() == r["md5"]
               for r in kept)
    assert cli("check", out, "--manifest", p.manifest).exit_code == 0


def test_copy_with_relative_path_and_upper_case_columns(planted: Planted, tmp_path: Path, cli: Cli) -> None:
    copy = tmp_path / "upper"
    copy.mkdir()
    for f in planted.copy.iterdir():
        if f.suffix == ".parquet":
            t = pq.read_table(f)
            pq.write_table(t.rename_columns([c.upper() if c in ("url", "md5") else c for c in t.column_names]),
                           copy / f.name)
        else:
            shutil.copy(f, copy / f.name)
    os.chdir(tmp_path)
    result = cli("check", "upper", "--manifest", planted.manifest, "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["columns"]["url"] == "URL" and data["image_matching"] == "md5"
    assert data["affected"] == len(planted.expected)


# ------------------------------------------------------------------------------------------- tar scanning


def write_tar(path: Path, fmt: int, entries: list[tuple[str, bytes | None]], pax_global: bool = False) -> None:
    """entries: (name, data) files, (name/, None) folders, (name@, None) symlinks."""
    import io

    kwargs: dict[str, Any] = {"pax_headers": {"comment": "global"}} if pax_global else {}
    with tarfile.open(path, "w", format=fmt, **kwargs) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name.rstrip("/@"))
            info.mtime = 1_600_000_000
            if name.endswith("/"):
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif name.endswith("@"):
                info.type, info.linkname = tarfile.SYMTYPE, "target/" + "t" * 120
                tar.addfile(info)
            else:
                assert data is not None
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


LONG = "d" * 90 + "/" + "e" * 80  # needs a ustar prefix, a pax path or a GNU long name
ENTRIES: list[tuple[str, bytes | None]] = [
    ("dir/", None),
    ("000000001.jpg", b"\xff" * 700),
    ("000000001.txt", "café ✓".encode()),
    (LONG + "/000000002.jpg", b"x" * 1024),
    (LONG + "/000000002.json", b"{}"),
    ("link@", None),
    ("x" * 150 + ".jpg", b""),
    ("000000003.jpg", b"y" * 513),
]


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_scan_tar_agrees_with_tarfile(tmp_path: Path, fmt: int) -> None:
    from relake.copies import scan_tar

    entries = [e for e in ENTRIES if fmt != tarfile.USTAR_FORMAT or (len(e[0]) < 250 and "x" * 150 not in e[0])]
    if fmt == tarfile.USTAR_FORMAT:
        entries = [e for e in entries if not e[0].endswith("@")]
    path = tmp_path / "t.tar"
    write_tar(path, fmt, entries, pax_global=fmt == tarfile.PAX_FORMAT)
    with tarfile.open(path) as tar:
        ref = [(m.name, m.offset) for m in tar]
    got = [(m.name, m.start) for m in scan_tar(path) if m.name is not None]
    assert got == ref
    if fmt == tarfile.PAX_FORMAT:
        assert scan_tar(path)[0].name is None  # the global header, kept as its own range


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_filter_tar_drops_by_key_and_keeps_bytes(tmp_path: Path, fmt: int) -> None:
    from relake.copies import filter_tar

    src, dst = tmp_path / "in.tar", tmp_path / "out.tar"
    write_tar(src, fmt, ENTRIES, pax_global=fmt == tarfile.PAX_FORMAT)
    digest, size_in, size_out, dropped = filter_tar(src, dst, {"000000001", LONG + "/000000002"})
    assert dropped == 4 and size_in == src.stat().st_size and size_out == dst.stat().st_size
    assert digest == hashlib.sha256(dst.read_bytes()).hexdigest()
    before, after = raw_members(src), raw_members(dst)
    assert list(after) == ["dir", "link", "x" * 150 + ".jpg", "000000003.jpg"]
    assert all(after[n] == before[n] for n in after)
    with tarfile.open(dst) as tar:
        assert tar.extractfile("000000003.jpg").read() == b"y" * 513  # type: ignore[union-attr]


def _short(tmp_path: Path) -> Path:
    p = tmp_path / "short.tar"
    p.write_bytes(b"not a tar")
    return p


def test_scan_tar_rejects_what_is_not_a_plain_tar(tmp_path: Path) -> None:
    from relake.copies import scan_tar
    from relake.errors import InputError

    path = tmp_path / "t.tar"
    write_tar(path, tarfile.PAX_FORMAT, ENTRIES)
    data = path.read_bytes()
    gz = tmp_path / "t.tar.gz"
    gz.write_bytes(__import__("gzip").compress(data) + random.Random(1).randbytes(1000))
    with pytest.raises(InputError, match="bad tar header checksum at byte 0"):
        scan_tar(gz)
    with pytest.raises(InputError, match="not a tar"):
        scan_tar(_short(tmp_path))
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[:3000])
    with pytest.raises(InputError, match="truncated tar"):
        scan_tar(cut)
    with tarfile.open(path) as tar:
        third = tar.getmembers()[2].offset
    flipped = bytearray(data)
    flipped[third + 5] ^= 1  # a name byte of the third member's header
    bad = tmp_path / "bad.tar"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(InputError, match="bad tar header checksum"):
        scan_tar(bad)
    empty = tmp_path / "empty.tar"
    empty.write_bytes(b"")
    assert scan_tar(empty) == []


def test_synth_copy_cli_from_a_version_and_keep_only(cli: Cli, tmp_path: Path) -> None:
    write_table(source_table(), tmp_path / "src" / "part-00000.parquet")
    assert cli("ingest", "v1", tmp_path / "src").exit_code == 0
    result = cli("synth-copy", "v1", tmp_path / "copy", "--shard-size", "200", "--format", "parquet",
                 "--hash", "sha256", "--failure-rate", "0.2", "--seed", "3", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["rows"] == 601 and data["shards"] == 4 and data["format"] == "parquet"
    assert sorted(p.name for p in (tmp_path / "copy").iterdir())[:2] == ["00000.parquet", "00000_stats.json"]
    assert "jpg" in pq.read_schema(tmp_path / "copy" / "00000.parquet").names
    again = cli("synth-copy", "v1", tmp_path / "copy")
    assert error_line(again) == (f"Error: {tmp_path / 'copy'} already holds copy shards (e.g. 00000.parquet); "
                                 "synth-copy never overwrites, choose an empty folder")
    assert error_line(cli("synth-copy", "v1", tmp_path / "c2", "--hash", "crc32")) == (
        "Error: image hash must be one of md5, sha256, got 'crc32'")
    # the copy holds exactly the release's rows: allowlist mode finds nothing
    kept = cli("check", tmp_path / "copy", "--keep-only", "v1")
    assert kept.exit_code == 0, kept.stdout + kept.stderr
    assert "nothing affected" in kept.stderr


def test_clean_interrupted_midway_then_resumed(planted: Planted, tmp_path: Path) -> None:
    lake = Lake.at(tmp_path / "no-lake")
    reference = tmp_path / "reference"
    clean_copy(lake, planted.copy, planted.manifest, reference)
    calls = []

    def interrupt(n: int) -> None:
        calls.append(n)
        if len(calls) == 3:
            raise KeyboardInterrupt

    out = tmp_path / "cleaned"
    with pytest.raises(KeyboardInterrupt):
        clean_copy(lake, planted.copy, planted.manifest, out, workers=1, progress=interrupt)
    record = json.loads((out / RECORD_NAME).read_text())
    assert not record["complete"] and len(record["units"]) >= 3
    resumed = clean_copy(lake, planted.copy, planted.manifest, out)
    assert resumed.resumed == len(record["units"])
    assert set(snapshot_diff(snapshot(reference), snapshot(out))) <= {RECORD_NAME}  # same bytes as a clean run
    assert json.loads((out / RECORD_NAME).read_text())["complete"]


def test_copy_folder_with_glob_characters(planted: Planted, tmp_path: Path) -> None:
    copy = tmp_path / "my[copy]*"
    shutil.copytree(planted.copy, copy)
    lake = Lake.at(tmp_path / "no-lake")
    report = check_copy(lake, copy, planted.manifest)
    layout = report.copy_layout
    assert layout is not None
    assert {(layout.shards[r.shard].name, r.pos) for r in report.affected_rows} == set(planted.expected)
    out = tmp_path / "out[1]"
    clean_copy(lake, copy, planted.manifest, out)
    assert_clean_output(planted, out)
