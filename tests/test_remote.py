"""remote.py and ``ingest --copy`` of fsspec URIs (fsspec's in-process ``memory://`` and ``file://`` file systems)."""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest

from helpers import Cli, error_line, laion_table, sha256_of, snapshot, snapshot_diff, write_table
from relake.errors import InputError, NotFoundError
from relake.ingest import ingest_version
from relake.lake import Lake
from relake.remote import FSSPEC_HINT, is_uri, redact, redact_text, resolve_remote, scrub

MEM = fsspec.filesystem("memory")


@pytest.fixture(autouse=True)
def _memory() -> Iterator[None]:
    """An empty memory:// file system for each test (it is one process-wide store)."""
    MEM.store.clear()
    MEM.pseudo_dirs[:] = [""]
    yield
    MEM.store.clear()
    MEM.pseudo_dirs[:] = [""]


def put(paths: list[Path], folder: str) -> list[str]:
    """Upload local files to ``memory://<folder>/<name>``; their URIs."""
    uris = []
    for p in paths:
        MEM.pipe(f"/{folder}/{p.name}", p.read_bytes())
        uris.append(f"memory://{folder}/{p.name}")
    return uris


@pytest.fixture
def remote(src: list[Path]) -> list[str]:
    """The ``src`` shards (300 rows in 3) under ``memory://bucket/laion/``, plus files a folder must skip."""
    uris = put(src, "bucket/laion")
    MEM.pipe("/bucket/laion/_temporary/part-9.parquet", src[0].read_bytes())
    MEM.pipe("/bucket/laion/.cache/part-9.parquet", src[0].read_bytes())
    MEM.pipe("/bucket/laion/README.md", b"not parquet")
    return uris


def lake_files(lake: Lake) -> dict[str, Any]:
    return {k: v for k, v in snapshot(lake.root).items() if not k.startswith(("staging", "tmp"))}


# --- the version equals a local ingest of the same files ------------------------------------------------------


def test_memory_folder_equals_local_copy(lake: Lake, src: list[Path], remote: list[str]) -> None:
    v = ingest_version(lake, "remote", ["memory://bucket/laion/"], copy=True)
    local = ingest_version(lake, "local", [str(src[0].parent)], copy=True)
    assert v.rows == local.rows == 300
    assert (v.bytes, v.schema, v.roles) == (local.bytes, local.schema, local.roles)
    assert v.fingerprint == local.fingerprint
    assert v.stats == local.stats and "row_hash" in v.stats
    assert v.shards == local.shards
    assert [s.sha256 for s in v.shards] == [sha256_of(p) for p in src]
    assert [s.path for s in v.shards] == [f"data/part-{i:05d}.parquet" for i in range(3)]
    for shard, p in zip(v.shards, src, strict=True):
        assert (lake.versions_dir / "remote" / shard.path).read_bytes() == p.read_bytes()
    assert v.storage == "lake"
    assert v.sources == tuple(f"memory:///bucket/laion/{p.name}" for p in src)
    assert lake.load_version("remote") == v
    assert list(lake.staging_dir.iterdir()) == []


def test_downloaded_files_are_read_once_for_their_sha256(lake: Lake, src: list[Path], remote: list[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The digest taken while a file streams in is its sha256; the local copy is not hashed again."""
    import relake.ingest

    hashed: list[Path] = []
    real = relake.ingest.sha256_file

    def counting(path: Path) -> str:
        hashed.append(Path(path))
        return real(path)

    monkeypatch.setattr(relake.ingest, "sha256_file", counting)
    v = ingest_version(lake, "remote", ["memory://bucket/laion/"], copy=True)
    assert hashed == []
    assert [s.sha256 for s in v.shards] == [sha256_of(p) for p in src]


def test_memory_glob_and_file_uri(lake: Lake, src: list[Path], remote: list[str], tmp_path: Path) -> None:
    v = ingest_version(lake, "glob", ["memory://bucket/laion/part-0000[02].parquet"], copy=True)
    assert [s.sha256 for s in v.shards] == [sha256_of(src[0]), sha256_of(src[2])]
    assert v.sources == (f"memory:///bucket/laion/{src[0].name}", f"memory:///bucket/laion/{src[2].name}")
    f = ingest_version(lake, "file", [f"file://{src[1]}", f"file://{src[0].parent}"], copy=True)
    # a folder after one of its files: duplicates dropped, order kept
    assert [s.sha256 for s in f.shards] == [sha256_of(p) for p in (src[1], src[0], src[2])]
    assert f.sources == tuple(f"file://{p}" for p in (src[1], src[0], src[2]))
    assert f.fingerprint == ingest_version(lake, "local", [str(src[0].parent)]).fingerprint


def test_local_and_remote_mixed_keep_order(lake: Lake, src: list[Path], remote: list[str], cli: Cli) -> None:
    result = cli("ingest", "mixed", "--copy", "--json", remote[2], src[0], remote[1])
    assert result.exit_code == 0, result.output
    v = lake.load_version("mixed")
    assert json.loads(result.stdout)["fingerprint"] == v.fingerprint.value
    assert [s.sha256 for s in v.shards] == [sha256_of(p) for p in (src[2], src[0], src[1])]
    assert [s.path for s in v.shards] == [f"data/part-{i:05d}.parquet" for i in range(3)]
    assert v.sources == (f"memory:///bucket/laion/{src[2].name}", str(src[0]), f"memory:///bucket/laion/{src[1].name}")
    assert v.fingerprint == ingest_version(lake, "local", [str(src[0].parent)]).fingerprint
    assert cli("verify", "mixed").exit_code == 0


# --- refusals leave the lake unchanged ------------------------------------------------------------------------


def test_remote_without_copy_is_refused_before_anything(cli: Cli, lake: Lake, src: list[Path],
                                                        remote: list[str], tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    result = cli("ingest", "v1", src[0], "memory://k:s3cret@bucket/laion")
    assert result.exit_code == 2
    assert error_line(result) == ("Error: memory://bucket/laion: a remote source must be copied into the lake; "
                                  "add --copy")
    assert "s3cret" not in result.output
    assert snapshot_diff(before, snapshot(tmp_path)) == {}


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("memory://bucket/none.parquet", "memory://bucket/none.parquet: no such file or folder"),
        ("memory://bucket/laion/*.csv", "memory://bucket/laion/*.csv: pattern matches no files"),
        ("memory://bucket/empty", "memory://bucket/empty: folder holds no .parquet files"),
        ("nosuchproto://bucket/x.parquet", "nosuchproto://bucket/x.parquet: fsspec knows no file system for "
         "nosuchproto://; install the package that provides it (s3fs for s3://, gcsfs for gs://, huggingface_hub "
         "for hf://)"),
    ],
)
def test_no_match(cli: Cli, lake: Lake, remote: list[str], tmp_path: Path, uri: str, message: str) -> None:
    MEM.pipe("/bucket/empty/_SUCCESS", b"")
    MEM.pipe("/bucket/empty/notes.txt", b"x")
    before = snapshot(tmp_path)
    result = cli("ingest", "v1", "--copy", uri)
    assert result.exit_code == 2
    assert error_line(result) == f"Error: {message}"
    assert snapshot_diff(before, snapshot(tmp_path)) == {}


def test_remote_file_not_parquet_is_named(cli: Cli, lake: Lake, src: list[Path], remote: list[str]) -> None:
    MEM.pipe("/bucket/laion/part-00001.parquet", b"URL,TEXT\nhttps://example.com/a.jpg,a cat\n" * 20)
    assert ingest_version(lake, "v0", [str(src[0])]).rows == 100
    before = lake_files(lake)
    result = cli("ingest", "v1", "--copy", "memory://bucket/laion")
    assert result.exit_code == 2
    assert error_line(result).startswith(
        "Error: memory:///bucket/laion/part-00001.parquet: not a readable parquet file (")
    assert str(lake.staging_dir) not in result.output
    assert lake_files(lake) == before
    assert list(lake.staging_dir.iterdir()) == [] and list(lake.tmp_dir.iterdir()) == []
    assert lake.version_names() == ["v0"]


def test_remote_schema_drift_names_the_uri(lake: Lake, src: list[Path], tmp_path: Path) -> None:
    other = write_table(laion_table(0, 10).drop_columns(["punsafe"]), tmp_path / "other" / "x.parquet")
    put([src[0]], "b")
    put([other], "b/z")
    with pytest.raises(InputError) as info:
        ingest_version(lake, "v1", ["memory://b"], copy=True)
    assert str(info.value) == ("memory:///b/z/x.parquet: schema drift: column 'punsafe' (DOUBLE) missing "
                               f"(expected as in memory:///b/{src[0].name})")
    assert lake.version_names() == []


def test_size_mismatch_means_changed_while_copying(lake: Lake, src: list[Path], remote: list[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    real = resolve_remote

    def stale(uri: str) -> Any:
        found = real(uri)
        MEM.pipe(found[0].path, src[0].read_bytes()[:-10])  # shrinks after it was listed
        return found

    monkeypatch.setattr("relake.ingest.resolve_remote", stale)
    with pytest.raises(InputError, match=r"^memory:///bucket/laion/part-00000\.parquet: changed while it was "
                                         r"being copied; try again$"):
        ingest_version(lake, "v1", ["memory://bucket/laion"], copy=True)
    assert lake.version_names() == [] and list(lake.staging_dir.iterdir()) == []


def test_read_error_is_one_line_naming_the_uri(cli: Cli, lake: Lake, src: list[Path],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    put(src, "user:hunter22@bucket/laion")
    def refuse(self: Any, path: str, *args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Access Denied", f"/{path}")

    monkeypatch.setattr(type(MEM), "_open", refuse)
    result = cli("ingest", "v1", "--copy", "memory://user:hunter22@bucket/laion")
    assert result.exit_code == 2
    line = error_line(result)
    assert line.startswith(f"Error: memory:///bucket/laion/{src[0].name}: cannot read (PermissionError: ")
    assert "hunter22" not in result.output and "user:" not in result.output
    assert not lake.version_names() and list(lake.staging_dir.iterdir()) == []


# --- credentials ----------------------------------------------------------------------------------------------


def test_credentials_never_recorded_or_printed(cli: Cli, lake: Lake, src: list[Path]) -> None:
    put(src, "user:pa55word@bucket/laion")  # memory:// takes the userinfo as part of the path
    result = cli("ingest", "v1", "--copy", "memory://user:pa55word@bucket/laion")
    assert result.exit_code == 0, result.output
    text = (lake.versions_dir / "v1" / "version.json").read_text(encoding="utf-8")
    assert "pa55word" not in text + result.output and "user:" not in text
    assert lake.load_version("v1").sources == tuple(f"memory:///bucket/laion/{p.name}" for p in src)
    shown = cli("show", "v1", "--json")
    assert shown.exit_code == 0 and "pa55word" not in shown.output


@pytest.mark.parametrize(
    ("uri", "redacted"),
    [
        ("s3://AKIA:secret@bucket/x.parquet", "s3://bucket/x.parquet"),
        ("gs://tok@bucket", "gs://bucket"),
        ("https://u:p@host:8443/a/b.parquet?sig=1", "https://host:8443/a/b.parquet"),
        ("simplecache::s3://AKIA:secret@bucket/x", "simplecache::s3://bucket/x"),
        ("hf://datasets/org/repo@main/data", "hf://datasets/org/repo@main/data"),  # a revision, not userinfo
        ("memory://bucket/x", "memory://bucket/x"),
        ("/local/path@x", "/local/path@x"),
    ],
)
def test_redact(uri: str, redacted: str) -> None:
    assert redact(uri) == redacted
    assert scrub(f"{uri} failed", uri) == f"{redacted} failed"


def test_scrub_takes_secrets_out_of_messages() -> None:
    uri = "s3://AKIA:secret@bucket/x.parquet"
    assert scrub("no access to AKIA:secret@bucket/x with secret", uri) == "no access to bucket/x with ***"
    assert scrub("plain message", "s3://bucket/x") == "plain message"


def test_short_userinfo_is_not_scrubbed_from_ordinary_words() -> None:
    assert scrub("no bucket named abfs here", "abfs://u@account/x") == "no bucket named abfs here"


def test_userinfo_is_taken_out_of_any_text() -> None:
    assert redact_text("simplecache::s3://AKIA:secret@bucket/x and gs://t@b/y") == "simplecache::s3://bucket/x and gs://b/y"


def test_a_signed_url_is_refused_without_printing_its_signature(cli: Cli, lake: Lake) -> None:
    result = cli("ingest", "v1", "https://host.example/x.parquet?X-Amz-Signature=SECRETSIG", "--copy")
    assert result.exit_code == 2
    assert "SECRETSIG" not in result.output and "query string is not accepted" in error_line(result)
    assert not lake.has_version("v1")


def test_is_uri() -> None:
    assert is_uri("s3://b/x") and is_uri("hf://datasets/a/b") and is_uri("git+ssh://h/x")
    assert not is_uri("/a/b://c") and not is_uri("1s3://b") and not is_uri("relative/x.parquet")
    assert is_uri("simplecache::s3://b/x")


# --- optional dependency ---------------------------------------------------------------------------------------


def test_fsspec_missing_gives_the_install_hint(cli: Cli, lake: Lake, src: list[Path], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_fsspec(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "fsspec" or name.startswith("fsspec."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_fsspec)
    before = snapshot(tmp_path)
    result = cli("ingest", "v1", "--copy", "s3://key:sekrit@bucket/laion")
    assert result.exit_code == 2
    assert error_line(result) == f"Error: s3://bucket/laion: {FSSPEC_HINT}"
    assert "pip install 'relake[remote]'" in FSSPEC_HINT and "s3fs for s3://" in FSSPEC_HINT
    assert snapshot_diff(before, snapshot(tmp_path)) == {}
    # local sources never need it
    assert ingest_version(lake, "local", [str(src[0])]).rows == 100


def test_missing_file_system_package_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_package(*args: Any, **kwargs: Any) -> Any:
        raise ImportError("Install s3fs to access S3")

    monkeypatch.setattr("fsspec.core.url_to_fs", no_package)
    with pytest.raises(InputError) as info:
        resolve_remote("s3://k:v@bucket/x.parquet")
    assert str(info.value) == "s3://bucket/x.parquet: reading s3:// needs s3fs: pip install s3fs"


def test_resolve_remote_folder_skips_hidden(src: list[Path], remote: list[str]) -> None:
    found = resolve_remote("memory://bucket/laion")
    assert [f.uri for f in found] == [f"memory:///bucket/laion/{p.name}" for p in src]
    assert [f.size for f in found] == [p.stat().st_size for p in src]
    with pytest.raises(NotFoundError, match=r"^memory://bucket/nothing: no such file or folder$"):
        resolve_remote("memory://bucket/nothing")
