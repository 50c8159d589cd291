"""Integrity before trust (issue #14, items 5 and 6): a command that uses what ``version.json`` says about a
file instead of reading it (fingerprint buckets, row counts, row-hash sums) first checks that the file is
the one hashed (size; mtime, ctime, inode and device, noted by the lake); every file a version owns (its shards and
``removed.parquet``) has a sha256 that ``verify`` re-hashes, and a removal manifest is written only from a
``removed.parquet`` whose sha256 matches its record. The expected digests here come from hashlib, not relake."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from helpers import Cli, error_line, laion_table, ok, snapshot, write_table

SPEC = """
name = "clean"
base = "orig"
[[rule]]
id = "unsafe"
where = "punsafe > 0.9"
category = "safety"
"""



def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def plain(tmp_path: Path) -> list[Path]:
    """Two uncompressed, dictionary-free shards, so a caption's bytes can be found and edited in place."""
    return [write_table(laion_table(k * 50, 50), tmp_path / "src" / f"part-{k:05d}.parquet", compression="none",
                        use_dictionary=False) for k in range(2)]


def edit_caption(path: Path, *, keep_mtime: bool = False) -> None:
    """Change one byte of one caption, same size; optionally put the mtime back as it was."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    at = data.index(b"caption number 6")
    data[at] = ord("C")
    path.write_bytes(bytes(data))
    assert path.stat().st_size == st.st_size
    if keep_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_the_lake_notes_each_hashed_file_identity_and_the_record_stays_portable(
    cli: Cli, plain: list[Path], lake_root: Path
) -> None:
    ok(cli("ingest", "a", plain[0].parent))
    ok(cli("ingest", "b", plain[0].parent))
    a, b = ((lake_root / "versions" / n / "version.json").read_text() for n in ("a", "b"))
    assert a.replace('"name": "a"', '"name": "b"') == b  # nothing machine-local in the record
    record = json.loads(a)
    assert [s["sha256"] for s in record["shards"]] == [sha256(p) for p in plain]
    noted = {e["path"]: e for e in (json.loads(f.read_text()) for f in (lake_root / "identities").iterdir())}
    for path in plain:
        st = path.stat()
        e = noted[str(path.resolve())]
        assert (e["sha256"], e["mtime_ns"], e["ctime_ns"], e["inode"], e["device"]) == (
            sha256(path), st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


@pytest.mark.parametrize("keep_mtime", [False, True])
def test_an_edited_in_place_original_is_refused_not_called_identical(
    cli: Cli, plain: list[Path], keep_mtime: bool
) -> None:
    ok(cli("ingest", "a", plain[0].parent))
    ok(cli("ingest", "b", plain[0].parent))
    result = cli("diff", "a", "b", "--exit-code")
    ok(result)
    assert "no row read" in result.stdout  # the shortcut this test is about
    edit_caption(plain[1], keep_mtime=keep_mtime)  # same size; with keep_mtime only the ctime tells
    for args in (("diff", "a", "b", "--exit-code"), ("fingerprint", "a", "--from-manifest"),
                 ("fingerprint", "a"), ("diff", "a", "b", "--keyless")):
        result = cli(*args)
        assert result.exit_code == 2, (args, result.stdout, result.stderr)
        line = error_line(result)
        assert str(plain[1]) in line and "changed since it was recorded" in line
        assert "run `relake verify a`" in line
    result = cli("verify", "a")
    assert result.exit_code == 1
    assert f"{plain[1]}: sha256 " in result.stdout  # verify re-hashes: the bytes did change


def test_a_touched_original_is_refused_until_verify_confirms_its_bytes(
    cli: Cli, plain: list[Path], lake_root: Path
) -> None:
    ok(cli("ingest", "a", plain[0].parent))
    ok(cli("ingest", "b", plain[0].parent))
    st = plain[0].stat()
    os.utime(plain[0], ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # same bytes, new mtime
    record_before = (lake_root / "versions" / "a" / "version.json").read_bytes()
    result = cli("diff", "a", "b")
    assert result.exit_code == 2
    assert error_line(result) == (
        f"Error: {plain[0]}: shard of a changed since it was recorded (mtime, ctime); the bytes may differ: "
        "run `relake verify a`")
    result = cli("verify", "a")
    ok(result)
    assert result.stdout.startswith("ok  a: 2 shards, 100 rows")
    # versions are immutable: verify does not rewrite the record, it notes the re-hashed identity beside it
    assert (lake_root / "versions" / "a" / "version.json").read_bytes() == record_before
    result = cli("diff", "a", "b", "--exit-code")
    ok(result)
    assert "no row read" in result.stdout
    ok(cli("fingerprint", "a", "--from-manifest"))


def test_files_without_a_noted_identity_are_read_not_trusted(cli: Cli, plain: list[Path], lake_root: Path) -> None:
    ok(cli("ingest", "a", plain[0].parent))
    ok(cli("ingest", "b", plain[0].parent))
    for f in (lake_root / "identities").iterdir():  # as an older relake left the lake, or a lake copied without
        f.unlink()
    result = cli("diff", "a", "b", "--exit-code")
    ok(result)
    assert "no row read" not in result.stdout  # the rows were compared instead of the recorded buckets
    result = cli("fingerprint", "a", "--from-manifest")
    assert result.exit_code == 2
    assert "run `relake verify a`" in error_line(result)
    ok(cli("verify", "a"))
    ok(cli("fingerprint", "a", "--from-manifest"))
    edit_caption(plain[1], keep_mtime=True)  # noted again by verify, so a change is seen again
    result = cli("fingerprint", "a", "--from-manifest")
    assert result.exit_code == 2 and "changed since it was recorded (ctime)" in error_line(result)


def flip_url_sha256_bit(path: Path) -> None:
    """Flip one bit in the middle of the url_sha256 column chunk (same size)."""
    meta = pq.ParquetFile(path).metadata
    names = [meta.schema.column(i).name for i in range(meta.num_columns)]
    chunk = meta.row_group(0).column(names.index("url_sha256"))
    start = chunk.dictionary_page_offset or chunk.data_page_offset
    at = start + chunk.total_compressed_size // 2
    data = bytearray(path.read_bytes())
    data[at] ^= 0x04
    path.write_bytes(bytes(data))


def test_removed_parquet_is_checksummed_verified_and_checked_before_a_manifest(
    cli: Cli, plain: list[Path], lake_root: Path, tmp_path: Path
) -> None:
    ok(cli("ingest", "orig", "--copy", plain[0].parent))
    (tmp_path / "spec.toml").write_text(SPEC)
    ok(cli("build", "clean", "--spec", tmp_path / "spec.toml"))
    vdir = lake_root / "versions" / "clean"
    removed = vdir / "removed.parquet"
    record = json.loads((vdir / "version.json").read_text())
    assert record["files"][0] == {"path": "removed.parquet", "bytes": removed.stat().st_size,
                                  "sha256": sha256(removed)}
    assert [f["path"] for f in record["files"]] == ["removed.parquet", "deletes.parquet"]  # a vector version
    ok(cli("verify", "clean"))
    flip_url_sha256_bit(removed)
    result = cli("verify", "clean")
    assert result.exit_code == 1
    assert any(line.strip().startswith(f"{removed}: sha256 ") for line in result.stdout.splitlines()), result.stdout
    out = tmp_path / "out"
    out.mkdir()
    before = snapshot(out)
    for args in (("manifest", "orig", "clean", "--out", out / "m"), ("publish", "clean", out / "rel"),
                 ("check", plain[0].parent, "--manifest", "orig..clean")):
        result = cli(*args)
        assert result.exit_code == 2, (args, result.stdout, result.stderr)
        assert error_line(result) == (f"Error: {removed}: removed.parquet of clean differs from its record "
                                      "(sha256); run `relake verify clean`")
    assert snapshot(out) == before  # nothing written
    assert not (lake_root / "private" / "pairs").exists() or not any((lake_root / "private" / "pairs").iterdir())
    result = cli("diff", "orig", "clean")  # the provenance of a diff is checked too
    assert result.exit_code == 2 and "removed.parquet of clean differs from its record" in error_line(result)


def test_removed_parquet_without_a_recorded_digest_is_not_published(
    cli: Cli, plain: list[Path], lake_root: Path, tmp_path: Path
) -> None:
    ok(cli("ingest", "orig", "--copy", plain[0].parent))
    (tmp_path / "spec.toml").write_text(SPEC)
    ok(cli("build", "clean", "--spec", tmp_path / "spec.toml", "--materialize"))  # as an older relake built it
    path = lake_root / "versions" / "clean" / "version.json"
    record = json.loads(path.read_text())
    del record["files"]  # as an older relake wrote it
    path.write_text(json.dumps(record))
    for f in (lake_root / "identities").iterdir():  # an older relake noted no digest of the record either
        if json.loads(f.read_text())["path"] == str(path.resolve()):
            f.unlink()
    result = cli("verify", "clean")
    ok(result)
    assert "removed.parquet has no recorded sha256" in result.stderr + result.stdout
    result = cli("manifest", "orig", "clean", "--out", tmp_path / "m")
    assert result.exit_code == 2
    assert "removed.parquet of clean has no recorded sha256" in error_line(result)
    assert "rebuild" in error_line(result)
    assert not (tmp_path / "m").exists()
    result = cli("diff", "orig", "clean", "--json")  # a local diff still runs, saying its provenance is unchecked
    assert result.exit_code == 1
    assert "no recorded sha256" in json.loads(result.stdout)["provenance_note"]
