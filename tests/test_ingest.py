"""ingest.py (and the column roles of db.py): registering parquet files as an immutable original version."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from helpers import (
    Cli,
    Entry,
    error_line,
    laion_table,
    read_rows,
    sha256_of,
    snapshot,
    snapshot_diff,
    write_shards,
    write_table,
)
from relake.cli import app
from relake.db import connect, detect_roles
from relake.errors import InputError, InvalidNameError, InvalidPathError, NotFoundError, VersionExistsError
from relake.fingerprint import fingerprint_src
from relake.ingest import ingest_version
from relake.lake import Lake
from relake.record import Column, Roles, Version
from relake.sources import resolve_sources


def fp_value(paths: list[Path]) -> tuple[int, str]:
    with connect() as db:
        db.bind_parquet("src", paths)
        fp = fingerprint_src(db)
    return fp.rows, fp.value


# --- the manifest of an ingested version -----------------------------------------------------------------


def test_ingest_in_place_records_every_shard(lake: Lake, src: list[Path]) -> None:
    v = ingest_version(lake, "v1", [str(src[0].parent)])
    assert (v.name, v.kind, v.parent, v.storage) == ("v1", "original", None, "reference")
    assert v.rows == 300 == len(read_rows(src))
    assert v.bytes == sum(p.stat().st_size for p in src)
    assert [s.path for s in v.shards] == [str(p) for p in src]
    for shard, p in zip(v.shards, src, strict=True):
        assert shard.rows == pq.ParquetFile(p).metadata.num_rows
        assert shard.bytes == os.path.getsize(p)
        assert shard.sha256 == sha256_of(p)
    assert v.schema == (Column("SAMPLE_ID", "BIGINT"), Column("URL", "VARCHAR"), Column("TEXT", "VARCHAR"),
                        Column("punsafe", "DOUBLE"))
    assert v.roles == Roles(url="URL", caption="TEXT", id="SAMPLE_ID")
    assert v.sources == tuple(str(p) for p in src)
    assert set(v.tool) >= {"relake", "duckdb"}
    assert v.fingerprint.rows == 300
    # the published manifest is exactly what was returned, and round-trips
    text = (lake.versions_dir / "v1" / "version.json").read_text(encoding="utf-8")
    assert json.loads(text)["format"] == "relake.version/1"
    assert Version.from_json(text, "x") == v == lake.load_version("v1")
    # in place: nothing but the manifest inside the version folder
    assert sorted(snapshot(lake.versions_dir)) == ["v1", "v1/version.json"]
    assert list(lake.staging_dir.iterdir()) == [] and list(lake.tmp_dir.iterdir()) == []


def test_ingest_copy_stores_identical_bytes(lake: Lake, src: list[Path]) -> None:
    v = ingest_version(lake, "v1", [str(p) for p in src], copy=True)
    assert v.storage == "lake"
    assert [s.path for s in v.shards] == [f"data/part-{i:05d}.parquet" for i in range(3)]
    for shard, p in zip(v.shards, src, strict=True):
        stored = lake.versions_dir / "v1" / shard.path
        assert stored.read_bytes() == p.read_bytes()
        assert shard.sha256 == sha256_of(p)
    ref = ingest_version(lake, "v1-ref", [str(src[0].parent)])
    assert ref.fingerprint == v.fingerprint


def test_ingest_cli_json(cli: Cli, src: list[Path]) -> None:
    result = cli("ingest", "v1", src[0].parent, "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["name"], data["rows"], data["shards"]) == ("v1", 300, 3)
    assert (data["rows"], data["fingerprint"]) == fp_value(src)
    result = cli("ingest", "v2", *src)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("ingested v2: 300 rows, 3 shards, ")


# --- sources ---------------------------------------------------------------------------------------------------


def test_resolve_sources_files_folders_globs(tmp_path: Path) -> None:
    a = write_shards(tmp_path / "d" / "a", rows=20, shards=2)
    b = write_shards(tmp_path / "d" / "b", rows=10, shards=1)
    hidden = write_shards(tmp_path / "d" / "_temporary", rows=5, shards=1)
    dot = write_shards(tmp_path / "d" / ".cache", rows=5, shards=1)
    (tmp_path / "d" / "notes.txt").write_text("not parquet")
    found = resolve_sources([str(tmp_path / "d")])
    assert found == [*a, *b]
    assert not set(found) & {*hidden, *dot}
    # a glob is expanded by relake, duplicates are dropped, order is kept
    assert resolve_sources([str(b[0]), str(tmp_path / "d" / "a" / "*.parquet"), str(a[0])]) == [b[0], *a]
    # relative paths become absolute
    os.chdir(tmp_path)
    assert resolve_sources(["d/b"]) == b


@pytest.mark.parametrize(
    ("source", "error", "message"),
    [
        ("missing.parquet", NotFoundError, "missing.parquet: no such file or folder"),
        ("empty-dir", NotFoundError, "empty-dir: folder holds no .parquet files"),
        ("nomatch-*.parquet", NotFoundError, "nomatch-*.parquet: pattern matches no files"),
        ("s3://bucket/x.parquet", InputError,
         "s3://bucket/x.parquet: remote sources are read only by `relake ingest --copy`; "
         "ingest them into the lake first"),
        ("a\x00b", InvalidPathError, "path 'a\\x00b' contains a NUL byte"),
        ("", InvalidPathError, "empty path"),
    ],
)
def test_bad_sources(tmp_path: Path, source: str, error: type[Exception], message: str) -> None:
    (tmp_path / "empty-dir").mkdir()
    with pytest.raises(error) as info:
        resolve_sources([source])
    assert str(info.value) == message
    with pytest.raises(NotFoundError, match="no source files given"):
        resolve_sources([])


# --- names: existing and hostile --------------------------------------------------------------------------------

CHARSET = "use letters, digits, '.', '_' and '-' only, starting with a letter or digit"
HOSTILE = [
    ("../x", "Error: invalid version name '../x': '..' is not allowed"),
    ("..", "Error: invalid version name '..': '..' is not allowed"),
    ("a/b", f"Error: invalid version name 'a/b': {CHARSET}"),
    ("/tmp/abs", f"Error: invalid version name '/tmp/abs': {CHARSET}"),
    ("v[1]", f"Error: invalid version name 'v[1]': {CHARSET}"),
    ("v*", f"Error: invalid version name 'v*': {CHARSET}"),
    ("", "Error: invalid version name '': it is empty"),
    ("a" * 300, "Error: invalid version name '" + "a" * 40 + "…': it is longer than 100 bytes"),
    ("v\x00", f"Error: invalid version name 'v\\x00': {CHARSET}"),
    ("v\n1", f"Error: invalid version name 'v\\n1': {CHARSET}"),
    ("v1\n", f"Error: invalid version name 'v1\\n': {CHARSET}"),
    ("v'1", f"Error: invalid version name \"v'1\": {CHARSET}"),
    ('v"1', f"Error: invalid version name 'v\"1': {CHARSET}"),
    ("-rf", f"Error: invalid version name '-rf': {CHARSET}"),
    (".hidden", f"Error: invalid version name '.hidden': {CHARSET}"),
    ("v 1", f"Error: invalid version name 'v 1': {CHARSET}"),
    ("v\x1b[31m", f"Error: invalid version name 'v\\x1b[31m': {CHARSET}"),
]


@pytest.fixture
def populated(cli: Cli, src: list[Path], tmp_path: Path) -> dict[str, Entry]:
    """A lake holding version v1, and a snapshot of the whole test folder (lake and sources)."""
    result = cli("ingest", "v1", src[0].parent)
    assert result.exit_code == 0, result.stderr
    return snapshot(tmp_path)


def test_ingest_under_existing_name(cli: Cli, src: list[Path], tmp_path: Path, populated: dict[str, Entry],
                                    lake: Lake) -> None:
    other = write_shards(tmp_path / "other", rows=10, shards=1)
    before = snapshot(tmp_path)
    result = cli("ingest", "v1", other[0])
    assert result.exit_code == 2
    assert error_line(result) == "Error: version 'v1' already exists; versions are immutable, choose another name"
    assert result.stdout == ""
    assert snapshot_diff(before, snapshot(tmp_path)) == {}
    assert lake.load_version("v1").rows == 300
    with pytest.raises(VersionExistsError):
        ingest_version(lake, "v1", [str(other[0])], copy=True)
    assert snapshot_diff(before, snapshot(tmp_path)) == {}


@pytest.mark.parametrize(("name", "line"), HOSTILE, ids=[repr(n)[:24] for n, _ in HOSTILE])
def test_ingest_under_hostile_name(cli: Cli, src: list[Path], tmp_path: Path, populated: dict[str, Entry],
                                   name: str, line: str) -> None:
    result = cli("ingest", "--copy", "--", name, src[0].parent)
    assert result.exit_code == 2, result.output
    assert error_line(result) == line
    assert result.stdout == ""
    assert snapshot_diff(populated, snapshot(tmp_path)) == {}
    with pytest.raises(InvalidNameError):
        ingest_version(Lake.at(tmp_path / "lake"), name, [str(src[0])])
    assert snapshot_diff(populated, snapshot(tmp_path)) == {}


# --- glob characters in real paths ---------------------------------------------------------------------------


def test_source_path_with_glob_characters_reads_exactly_that_file(lake: Lake, tmp_path: Path, cli: Cli) -> None:
    # DuckDB (2.0) given "data[1]/x.parquet" reads data1/x.parquet: it globs every path it is handed
    exact = write_table(laion_table(0, 50), tmp_path / "data[1]" / "x.parquet")
    decoy = write_table(laion_table(1000, 70), tmp_path / "data1" / "x.parquet")
    result = cli("ingest", "via-cli", "data[1]/x.parquet", "--json")  # relative to tmp_path, the cwd
    assert result.exit_code == 0, result.stderr
    assert (json.loads(result.stdout)["rows"], json.loads(result.stdout)["fingerprint"]) == fp_value([exact])
    v = ingest_version(lake, "exact", [str(exact)])
    assert v.rows == 50
    assert [s.path for s in v.shards] == [str(exact)]
    assert v.shards[0].sha256 == sha256_of(exact) != sha256_of(decoy)
    assert (v.fingerprint.rows, v.fingerprint.value) == fp_value([exact])
    assert v.fingerprint.value != fp_value([decoy])[1]
    # the folder itself, and a copy into the lake
    v2 = ingest_version(lake, "folder", [str(tmp_path / "data[1]")], copy=True)
    assert (v2.rows, v2.fingerprint.value) == (50, v.fingerprint.value)
    from relake.verify import verify_target

    assert all(r.ok for r in verify_target(lake, None).reports)


@pytest.mark.parametrize("fname", ["x*.parquet", "x?.parquet", "x{a,b}.parquet", "x[ab].parquet"])
def test_file_names_with_glob_characters(lake: Lake, tmp_path: Path, fname: str) -> None:
    exact = write_table(laion_table(0, 30), tmp_path / "src" / fname)
    write_table(laion_table(500, 40), tmp_path / "src" / "xa.parquet")
    write_table(laion_table(900, 45), tmp_path / "src" / "xb.parquet")
    v = ingest_version(lake, "v", [str(exact)])
    assert (v.rows, v.fingerprint.value) == (30, fp_value([exact])[1])


def test_lake_under_a_folder_with_glob_characters(tmp_path: Path, runner: CliRunner) -> None:
    src = write_shards(tmp_path / "src[0]", rows=120, shards=2)
    decoy = write_shards(tmp_path / "src0", rows=999, shards=1)
    root = tmp_path / "lake[1]"
    for args in (["ingest", "ref", str(src[0].parent)], ["ingest", "--copy", "copy", *map(str, src)],
                 ["verify"], ["show", "copy", "--json"]):
        result = runner.invoke(app, ["--lake", str(root), *args])
        assert result.exit_code == 0, (args, result.stderr, result.stdout)
    shown = json.loads(result.stdout)
    assert shown["rows"] == 120 and len(shown["shards"]) == 2
    lake = Lake.at(root)
    assert lake.load_version("ref").fingerprint == lake.load_version("copy").fingerprint
    assert lake.load_version("ref").fingerprint.value == fp_value(src)[1] != fp_value(decoy)[1]
    assert (root / "versions" / "copy" / "data" / "part-00001.parquet").read_bytes() == src[1].read_bytes()
    assert list(lake.tmp_dir.iterdir()) == [] and list(lake.staging_dir.iterdir()) == []
    assert not (tmp_path / "lake1").exists()


# --- schema drift -------------------------------------------------------------------------------------------


def _drifted(kind: str) -> pa.Table:
    t = laion_table(100, 100)
    if kind == "missing":
        return t.drop_columns(["punsafe"])
    if kind == "extra":
        return t.append_column("NSFW", pa.array(["UNLIKELY"] * 100))
    if kind == "retyped":
        return t.set_column(3, "punsafe", t.column("punsafe").cast(pa.float32()))
    if kind == "recased":
        return t.rename_columns(["SAMPLE_ID", "URL", "text", "punsafe"])
    if kind == "reordered":
        return t.select(["URL", "SAMPLE_ID", "TEXT", "punsafe"])
    raise AssertionError(kind)


DRIFT = {
    "missing": "column 'punsafe' (DOUBLE) missing (expected as in {first})",
    "extra": "unexpected column 'NSFW' (VARCHAR)",
    "retyped": "column 'punsafe' is FLOAT, expected DOUBLE (as in {first})",
    "recased": "column 'TEXT' (VARCHAR) missing, found 'text' (names differ in case) (expected as in {first})",
    "reordered": "columns in another order than in {first}",
}


@pytest.mark.parametrize("kind", sorted(DRIFT))
def test_schema_drift_names_shard_column_expected_and_actual(
    cli: Cli, tmp_path: Path, populated: dict[str, Entry], lake: Lake, kind: str
) -> None:
    first = write_table(laion_table(0, 100), tmp_path / "drift" / "part-00000.parquet")
    second = write_table(_drifted(kind), tmp_path / "drift" / "part-00001.parquet")
    write_table(laion_table(200, 100), tmp_path / "drift" / "part-00002.parquet")
    before = snapshot(tmp_path)
    expected = f"{second}: schema drift: " + DRIFT[kind].format(first=first)
    with pytest.raises(InputError) as info:
        ingest_version(lake, "drift", [str(tmp_path / "drift")])
    assert str(info.value) == expected
    result = cli("ingest", "drift", tmp_path / "drift")
    assert result.exit_code == 2
    assert error_line(result) == "Error: " + expected
    assert snapshot_diff(before, snapshot(tmp_path)) == {}


# --- unreadable shards ------------------------------------------------------------------------------------------


def _footer_flipped(data: bytes) -> bytes:
    footer_len = struct.unpack("<I", data[-8:-4])[0]
    mid = len(data) - 8 - footer_len // 2
    return data[: mid - 32] + bytes(b ^ 0xFF for b in data[mid - 32 : mid + 32]) + data[mid + 32 :]


BROKEN = {
    "zero-bytes": lambda data: b"",
    "text-file": lambda data: b"URL,TEXT\nhttps://example.com/a.jpg,a cat\n" * 20,
    "footer-flipped": _footer_flipped,
    "footer-length": lambda data: data[:-8] + struct.pack("<I", len(data) * 3) + b"PAR1",
    "no-tail-magic": lambda data: data[:-4] + b"PAR0",
    "truncated": lambda data: data[: len(data) // 2],
    "magic-only": lambda data: b"PAR1PAR1",
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_unreadable_shard_is_named_and_lake_unchanged(
    cli: Cli, tmp_path: Path, populated: dict[str, Entry], lake: Lake, kind: str
) -> None:
    shards = write_shards(tmp_path / "in", rows=300, shards=3)
    bad = shards[1]
    bad.write_bytes(BROKEN[kind](bad.read_bytes()))
    before = snapshot(tmp_path)
    with pytest.raises(InputError) as info:
        ingest_version(lake, "broken", [str(tmp_path / "in")], copy=True)
    message = str(info.value)
    if kind == "zero-bytes":
        assert message == f"{bad}: file is empty (0 bytes), not parquet; remove it or restore it"
    else:
        assert message.startswith(f"{bad}: not a readable parquet file (")
    assert "\n" not in message
    result = cli("ingest", "broken", tmp_path / "in")
    assert result.exit_code == 2
    assert error_line(result) == "Error: " + message
    assert snapshot_diff(before, snapshot(tmp_path)) == {}
    assert lake.version_names() == ["v1"]


def test_non_parquet_file_given_explicitly(cli: Cli, tmp_path: Path, populated: dict[str, Entry]) -> None:
    txt = tmp_path / "readme.txt"
    txt.write_text("hello\n")
    before = snapshot(tmp_path)
    result = cli("ingest", "v2", txt)
    assert result.exit_code == 2
    assert error_line(result).startswith(f"Error: {txt}: not a readable parquet file (")
    assert snapshot_diff(before, snapshot(tmp_path)) == {}


def test_corrupt_data_page_fails_the_scan(cli: Cli, tmp_path: Path, populated: dict[str, Entry]) -> None:
    """Footer intact, a data page garbled: the footer check passes, the fingerprint scan fails, nothing is
    published, and DuckDB's message names the file."""
    path = write_table(laion_table(0, 500), tmp_path / "pages" / "part-00000.parquet", compression="snappy")
    meta = pq.ParquetFile(path).metadata
    url_chunk = meta.row_group(0).column(1)
    assert url_chunk.path_in_schema == "URL"
    mid = url_chunk.data_page_offset + url_chunk.total_compressed_size // 2
    data = bytearray(path.read_bytes())
    for i in range(mid - 32, mid + 32):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    before = snapshot(tmp_path)
    result = cli("ingest", "pages", path)
    assert result.exit_code == 2
    line = error_line(result)
    assert line.startswith("Error: cannot read the sources (")
    assert str(path) in line
    assert snapshot_diff(before, snapshot(tmp_path)) == {}


# --- column roles ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("columns", "roles"),
    [
        (["SAMPLE_ID", "URL", "TEXT", "punsafe"], ("URL", "TEXT", "SAMPLE_ID")),
        (["key", "url", "caption", "md5"], ("url", "caption", "key")),
        (["Url", "Caption", "Key"], ("Url", "Caption", "Key")),
        (["sample_id", "uRl", "text"], ("uRl", "text", "sample_id")),
        (["TEXT", "caption", "URL"], ("URL", "TEXT", None)),  # TEXT is preferred over caption
        (["SAMPLE_ID", "key", "URL"], ("URL", None, "SAMPLE_ID")),  # SAMPLE_ID over key
        (["width", "height"], (None, None, None)),
        (["url_hash", "texts", "sample"], (None, None, None)),  # near-misses are not roles
    ],
)
def test_detect_roles(columns: list[str], roles: tuple[str | None, str | None, str | None]) -> None:
    assert detect_roles(columns) == Roles(*roles)


def test_detect_roles_explicit_and_errors() -> None:
    cols = ["id", "link", "alt", "TEXT", "url"]
    assert detect_roles(cols, url="link", caption="alt", id="id") == Roles("link", "alt", "id")
    assert detect_roles(cols, caption="alt") == Roles("url", "alt", None)
    with pytest.raises(InputError) as info:
        detect_roles(cols, caption="nope", where="f.parquet")
    assert str(info.value) == (
        "f.parquet: column 'nope' given for caption does not exist (columns: id, link, alt, TEXT, url)"
    )
    with pytest.raises(InputError, match="column 'URL' given for url does not exist"):
        detect_roles(cols, url="URL")  # explicit names are exact, not case-insensitive
    with pytest.raises(InputError) as info:
        detect_roles(["url", "Url"], where="f.parquet")
    assert str(info.value) == (
        "f.parquet: columns ['url', 'Url'] differ only by case; name the url column with --url-col"
    )
    assert detect_roles(["url", "Url"], url="Url").url == "Url"


def test_roles_detected_on_ingest_of_img2dataset_style_copy(lake: Lake, tmp_path: Path) -> None:
    t = laion_table(0, 60).rename_columns(["key", "url", "caption", "punsafe"])
    t = t.append_column("md5", pa.array([f"{i:032x}" for i in range(60)]))
    write_table(t, tmp_path / "copy" / "00000.parquet")
    v = ingest_version(lake, "copy", [str(tmp_path / "copy")])
    assert v.roles == Roles(url="url", caption="caption", id="key")


def test_roles_from_explicit_flags(cli: Cli, lake: Lake, tmp_path: Path) -> None:
    t = laion_table(0, 40).rename_columns(["row", "link", "alt_text", "punsafe"])
    path = write_table(t, tmp_path / "odd" / "x.parquet")
    result = cli("ingest", "odd", path, "--url-col", "link", "--caption-col", "alt_text", "--id-col", "row")
    assert result.exit_code == 0, result.stderr
    assert lake.load_version("odd").roles == Roles("link", "alt_text", "row")

    result = cli("ingest", "plain", path)
    assert result.exit_code == 0, result.stderr
    assert lake.load_version("plain").roles == Roles(None, None, None)

    before = snapshot(tmp_path)
    result = cli("ingest", "bad", path, "--caption-col", "TEXT")
    assert result.exit_code == 2
    assert error_line(result) == (
        f"Error: {path}: column 'TEXT' given for caption does not exist (columns: row, link, alt_text, punsafe)"
    )
    assert snapshot_diff(before, snapshot(tmp_path)) == {}

