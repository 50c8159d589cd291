"""verify.py and `relake verify`: intact versions pass; truncated, bit-flipped, deleted, swapped shards and
tampered manifests fail with exit 1, naming what differs."""

from __future__ import annotations

import dataclasses
import json
import os
import struct
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import Result

from helpers import Cli, error_line, laion_table, snapshot, write_shards, write_split, write_table
from relake.lake import Lake
from relake.verify import verify_target


def ingest(cli: Cli, name: str, *args: str | Path) -> None:
    result = cli("ingest", name, *args)
    assert result.exit_code == 0, result.stderr


def flip(path: Path, offset: int, n: int = 64) -> None:
    data = bytearray(path.read_bytes())
    for i in range(offset, offset + n):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def footer_start(path: Path) -> int:
    data = path.read_bytes()
    return len(data) - 8 - struct.unpack("<I", data[-8:-4])[0]


def assert_bad(result: Result, name: str, problem_lines: list[str]) -> None:
    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines() == [f"BAD {name}:", *("    " + p for p in problem_lines)]
    assert error_line(result) == f"Error: {len(problem_lines)} problem(s) in {name}"


def test_intact_versions_pass(cli: Cli, src: list[Path], lake: Lake) -> None:
    ingest(cli, "ref", src[0].parent)
    ingest(cli, "copy", "--copy", *src)
    before = snapshot(lake.root)
    for args in (["verify", "ref"], ["verify", "copy"]):
        result = cli(*args)
        assert result.exit_code == 0, result.output
        assert result.stdout == f"ok  {args[1]}: 3 shards, 300 rows\n"
    result = cli("verify")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == ["ok  copy: 3 shards, 300 rows", "ok  ref: 3 shards, 300 rows"]
    result = cli("verify", lake.versions_dir / "copy")  # a folder, by path
    assert result.exit_code == 0 and result.stdout == "ok  copy: 3 shards, 300 rows\n"
    result = cli("verify", "--json")
    assert result.exit_code == 0
    assert [(r["target"], r["ok"], r["problems"]) for r in json.loads(result.stdout)] == [
        ("copy", True, []), ("ref", True, [])]
    assert snapshot(lake.root) == before  # verify writes nothing into versions/


def test_truncated_shard(cli: Cli, src: list[Path]) -> None:
    ingest(cli, "v1", src[0].parent)
    size = src[1].stat().st_size
    with open(src[1], "r+b") as fh:
        fh.truncate(size - 100)
    assert_bad(cli("verify", "v1"), "v1",
               [f"{src[1]}: size {size - 100} bytes, manifest says {size} (truncated or replaced)"])


def test_flipped_bytes_in_a_data_page(cli: Cli, tmp_path: Path) -> None:
    """64 bytes flipped in the middle of a data page (not the footer): DuckDB reads the file without any
    error and returns other values, because it does not check page checksums. verify catches it."""
    paths = write_split(laion_table(0, 600), tmp_path / "src", 3, compression="none", use_dictionary=False)
    target = paths[1]
    con = duckdb.connect()
    try:
        def read() -> list[tuple[object, ...]]:
            return con.execute("SELECT * FROM read_parquet($p)", {"p": str(target)}).fetchall()

        good_rows = read()
        ingest(cli, "v1", tmp_path / "src")
        chunk = pq.ParquetFile(target).metadata.row_group(0).column(3)
        assert chunk.path_in_schema == "punsafe"
        mid = chunk.data_page_offset + chunk.total_compressed_size // 2
        end = chunk.data_page_offset + chunk.total_compressed_size
        assert chunk.data_page_offset + 64 < mid - 32 and mid + 32 < end
        assert mid + 32 < footer_start(target)  # nowhere near the footer
        size = target.stat().st_size
        flip(target, mid - 32)
        assert target.stat().st_size == size

        bad_rows = read()  # no error at all...
    finally:
        con.close()
    assert len(bad_rows) == len(good_rows) == 200
    assert bad_rows != good_rows  # ...but other values
    changed = [i for i, (a, b) in enumerate(zip(good_rows, bad_rows, strict=True)) if a != b]
    assert 1 <= len(changed) <= 9
    assert all(good_rows[i][:3] == bad_rows[i][:3] for i in changed)  # only punsafe differs

    result = cli("verify", "v1")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "BAD v1:" and len(lines) == 2
    assert lines[1].startswith(f"    {target}: sha256 ")
    assert lines[1].endswith("(bytes changed)")
    assert error_line(result) == "Error: 1 problem(s) in v1"


def test_flipped_bytes_in_the_middle_of_a_compressed_shard(cli: Cli, lake: Lake, src: list[Path]) -> None:
    ingest(cli, "v1", "--copy", src[0].parent)
    shard = lake.versions_dir / "v1" / "data" / "part-00002.parquet"
    middle = shard.stat().st_size // 2
    assert middle + 64 < footer_start(shard)
    flip(shard, middle)
    result = cli("verify", "v1")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[1].startswith(f"    {shard}: sha256 ")
    assert error_line(result) == "Error: 1 problem(s) in v1"


def test_deleted_shard(cli: Cli, src: list[Path], lake: Lake) -> None:
    ingest(cli, "v1", src[0].parent)
    ingest(cli, "v2", "--copy", src[0].parent)
    src[0].unlink()
    copied = lake.versions_dir / "v2" / "data" / "part-00001.parquet"
    copied.unlink()
    assert_bad(cli("verify", "v1"), "v1", [f"{src[0]}: shard is missing"])
    assert_bad(cli("verify", "v2"), "v2", [f"{copied}: shard is missing"])
    result = cli("verify")
    assert result.exit_code == 1
    assert error_line(result) == "Error: 2 problem(s) in v1, v2"
    result = cli("verify", "--json")
    assert result.exit_code == 1
    reports = json.loads(result.stdout)
    assert [(r["target"], r["ok"], r["problems"]) for r in reports] == [
        ("v1", False, [f"{src[0]}: shard is missing"]), ("v2", False, [f"{copied}: shard is missing"])]


def test_only_the_damaged_version_is_named(cli: Cli, tmp_path: Path, src: list[Path]) -> None:
    other = write_shards(tmp_path / "other", rows=50, shards=2, start=1000)
    ingest(cli, "good", *other)
    ingest(cli, "bad", *src)
    os.truncate(src[2], 10)
    result = cli("verify")
    assert result.exit_code == 1
    assert "ok  good: 2 shards, 50 rows" in result.stdout.splitlines()
    assert "BAD bad:" in result.stdout.splitlines()
    assert error_line(result) == "Error: 1 problem(s) in bad"


def test_shard_replaced_by_same_size_file(cli: Cli, tmp_path: Path) -> None:
    """Another valid parquet file of exactly the same size and row count: only the hash can tell."""
    plain = {"compression": "none", "use_dictionary": False, "write_statistics": False}
    table = laion_table(0, 100)
    path = write_table(table, tmp_path / "src" / "part-00000.parquet", **plain)
    ingest(cli, "v1", path)
    captions = table.column("TEXT").to_pylist()
    captions[1] = captions[1].upper()  # same length, other bytes
    other = write_table(table.set_column(2, "TEXT", pa.array(captions)), tmp_path / "other.parquet", **plain)
    assert other.stat().st_size == path.stat().st_size and other.read_bytes() != path.read_bytes()
    os.replace(other, path)
    result = cli("verify", "v1")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and lines[1].startswith(f"    {path}: sha256 ") and lines[1].endswith("(bytes changed)")


def test_symlinked_shard_inside_a_lake_version(cli: Cli, lake: Lake, src: list[Path]) -> None:
    ingest(cli, "v1", "--copy", *src)
    shard = lake.versions_dir / "v1" / "data" / "part-00000.parquet"
    shard.unlink()
    shard.symlink_to(src[0])  # same bytes, but outside the version
    assert_bad(cli("verify", "v1"), "v1",
               [f"{shard}: is a symlink; shards of a lake version must be plain files inside it"])


def _rewrite_manifest(lake: Lake, name: str, **changes: object) -> None:
    path = lake.versions_dir / name / "version.json"
    v = lake.load_version(name)
    path.write_text(dataclasses.replace(v, **changes).to_json(), encoding="utf-8")  # type: ignore[arg-type]


def test_tampered_manifest_fingerprint_and_rows(cli: Cli, lake: Lake, src: list[Path]) -> None:
    ingest(cli, "v1", *src)
    v = lake.load_version("v1")
    wrong = dataclasses.replace(v.fingerprint, value="0" * 32)
    _rewrite_manifest(lake, "v1", fingerprint=wrong)
    result = cli("verify", "v1")
    assert result.exit_code == 1
    line = result.stdout.splitlines()[1]
    assert line.startswith(f"    {lake.versions_dir / 'v1'}: content fingerprint differs ({v.fingerprint.value} != ")
    assert error_line(result) == "Error: 1 problem(s) in v1"

    shards = (dataclasses.replace(v.shards[0], rows=99), *v.shards[1:])
    _rewrite_manifest(lake, "v1", fingerprint=v.fingerprint, shards=shards)
    assert_bad(cli("verify", "v1"), "v1", [f"{src[0]}: footer says 100 rows, manifest says 99"])


def test_verify_unknown_and_library_reports(cli: Cli, lake: Lake, src: list[Path]) -> None:
    ingest(cli, "v1", *src)
    result = cli("verify", "nope")
    assert result.exit_code == 2
    assert error_line(result) == f"Error: no version named 'nope' in lake {lake.root} (versions: v1)"
    [report] = verify_target(lake, "v1").reports
    assert (report.target, report.shards, report.rows, report.ok) == ("v1", 3, 300, True)
    os.truncate(src[0], 0)
    [report] = verify_target(lake, "v1").reports
    assert not report.ok and len(report.problems) == 1 and str(src[0]) in report.problems[0]
