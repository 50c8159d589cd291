"""Every byte relake trusts is checked (issue #20): a version record's own fields, the shards of a version or
release folder read as rows, a downloaded release used as an allowlist or ingested, a removal manifest's
hashes and counts, and the staging folders a killed publish leaves beside its output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from helpers import Cli, fails, ok, write_shards

SPEC = """
name = "v1"
base = "orig"
[[rule]]
id = "unsafe"
where = "punsafe > 0.9"
category = "safety"
"""
RELAKE = str(Path(sys.executable).parent / "relake")




def flip(path: Path, at: int = 200) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 1
    path.write_bytes(bytes(data))


@pytest.fixture
def world(cli: Cli, tmp_path: Path) -> Path:
    """orig (300 rows, 3 shards, copied into the lake), v1 built from it (materialised), and its release
    ``tmp_path/rel``."""
    write_shards(tmp_path / "src", rows=300, shards=3)
    ok(cli("ingest", "orig", tmp_path / "src", "--copy"))
    (tmp_path / "spec.toml").write_text(SPEC, encoding="utf-8")
    ok(cli("build", "v1", "--spec", tmp_path / "spec.toml", "--materialize"))  # its own shards, flipped below
    ok(cli("publish", "v1", tmp_path / "rel"))
    return tmp_path


# ----------------------------------------------------------------------------- 1. the record itself


EDITS: dict[str, Any] = {
    "rows": lambda v: {**v, "rows": v["rows"] + 1},
    "schema": lambda v: {**v, "schema": [{**c, "type": "VARCHAR"} if c["name"] == "punsafe" else c
                                         for c in v["schema"]]},
    "roles": lambda v: {**v, "roles": {**v["roles"], "caption": None}},
    "storage": lambda v: {**v, "storage": "reference"},
    "stats": lambda v: {**v, "stats": {**v["stats"], "removed_rows": 0}},
    "parent": lambda v: {**v, "parent": None},
}


@pytest.mark.parametrize("field", sorted(EDITS))
def test_an_edited_version_record_fails_verify_and_is_not_published(
    cli: Cli, world: Path, lake_root: Path, field: str
) -> None:
    path = lake_root / "versions" / "v1" / "version.json"
    record = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps(EDITS[field](record), indent=2) + "\n", encoding="utf-8")
    result = cli("verify", "v1")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert "version.json" in result.stdout + result.stderr
    if field in ("rows", "schema"):  # recomputed from the data: the field is named
        assert field in result.stdout + result.stderr
    assert "version.json" in fails(cli("publish", "v1", world / "rel2"))
    assert not (world / "rel2").exists()


def test_an_unedited_record_verifies_and_publishes(cli: Cli, world: Path) -> None:
    ok(cli("verify"))
    ok(cli("publish", "v1", world / "rel2"))
    ok(cli("verify", world / "rel2"))


def test_a_release_version_json_is_covered_by_its_sums(cli: Cli, world: Path) -> None:
    assert "version.json" in (world / "rel" / "SHA256SUMS").read_text(encoding="utf-8")
    path = world / "rel" / "version.json"
    record = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**record, "parent": None}, indent=2) + "\n", encoding="utf-8")
    result = cli("verify", world / "rel")
    assert result.exit_code == 1
    assert "version.json" in result.stdout


# --------------------------------------------------------------- 2. shards read as rows, unchecked


def test_diff_of_an_unhashed_version_folder_says_so_and_verify_flag_hashes(cli: Cli, world: Path,
                                                                           lake_root: Path) -> None:
    import shutil
    shutil.copytree(lake_root / "versions" / "v1", world / "v1b")
    ok(cli("diff", "v1", "v1"))
    result = cli("diff", "v1", "./v1b")
    assert "not re-hashed" in result.stdout + result.stderr
    assert "relake verify" in result.stdout + result.stderr
    flip(world / "v1b" / "data" / "part-00000.parquet")
    assert "part-00000.parquet" in fails(cli("diff", "orig", "./v1b", "--verify"))
    result = cli("synth-copy", "./v1b", world / "sc", "--format", "parquet")
    assert "not re-hashed" in result.stdout + result.stderr
    assert "part-00000.parquet" in fails(cli("synth-copy", "./v1b", world / "sc2", "--format", "parquet",
                                             "--verify"))
    # a version of the lake, its identities noted by ingest/build: no note
    result = cli("diff", "orig", "v1")
    assert "not re-hashed" not in result.stdout + result.stderr


# ------------------------------------------------------------------------ 3. downloaded releases


def test_check_keep_only_refuses_a_damaged_release(cli: Cli, world: Path) -> None:
    ok(cli("synth-copy", "v1", world / "copy", "--format", "parquet", "--failure-rate", "0"))
    ok(cli("check", world / "copy", "--keep-only", world / "rel"))
    flip(world / "rel" / "data" / "part-00000.parquet")
    assert "part-00000.parquet" in fails(cli("check", world / "copy", "--keep-only", world / "rel"))
    assert "part-00000.parquet" in fails(cli("clean", world / "copy", "--keep-only", world / "rel",
                                             "--out", world / "cleaned"))


@pytest.mark.parametrize("how", ["emptied", "cut", "added"])
def test_a_release_whose_sums_leave_a_file_out_is_fails(cli: Cli, world: Path, how: str) -> None:
    """SHA256SUMS vouches only for what it lists: an emptied or shortened list, or a file added beside it, must not
    let unchecked bytes be used (the listed files are otherwise intact here)."""
    sums = world / "rel" / "SHA256SUMS"
    lines = sums.read_text(encoding="utf-8").splitlines(keepends=True)
    if how == "emptied":
        sums.write_text("", encoding="utf-8")
    elif how == "cut":
        sums.write_text("".join(line for line in lines if "data/part-00000" not in line), encoding="utf-8")
    else:
        (world / "rel" / "data" / "part-00009.parquet").write_bytes(
            (world / "rel" / "data" / "part-00000.parquet").read_bytes())
    ok(cli("synth-copy", "v1", world / "copy", "--format", "parquet", "--failure-rate", "0"))
    assert "not listed in SHA256SUMS" in fails(cli("check", world / "copy", "--keep-only", world / "rel"))
    assert "not listed in SHA256SUMS" in fails(cli("ingest", "got", world / "rel"))
    result = cli("verify", world / "rel")
    assert result.exit_code == 1 and "not listed in SHA256SUMS" in result.stdout


def test_a_release_folder_is_ingested_as_what_it_is(cli: Cli, world: Path, lake_root: Path) -> None:
    ok(cli("ingest", "got", world / "rel"))
    got = json.loads((lake_root / "versions" / "got" / "version.json").read_text(encoding="utf-8"))
    v1 = json.loads((lake_root / "versions" / "v1" / "version.json").read_text(encoding="utf-8"))
    assert got["fingerprint"]["value"] == v1["fingerprint"]["value"]
    assert all("/data/" in s["path"] for s in got["shards"])
    ok(cli("ingest", "got2", world / "rel" / "data"))
    flip(world / "rel" / "data" / "part-00001.parquet")
    assert "part-00001.parquet" in fails(cli("ingest", "bad", world / "rel"))
    assert "part-00001.parquet" in fails(cli("ingest", "bad", world / "rel" / "data"))
    assert not (lake_root / "versions" / "bad").exists()


# --------------------------------------------------------------------------------- 4. manifests


def _rewrite_manifest(folder: Path, edit_table: Any = None, edit_meta: Any = None) -> None:
    removed, meta_path = folder / "removed.parquet", folder / "manifest.json"
    if edit_table is not None:
        pq.write_table(edit_table(pq.read_table(removed)), removed)
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    import hashlib
    meta["files"]["removed.parquet"] = hashlib.sha256(removed.read_bytes()).hexdigest()
    if edit_meta is not None:
        meta = edit_meta(meta)
    meta_path.write_text(json.dumps(meta), encoding="utf-8")


def _upper(t: pa.Table) -> pa.Table:
    i = t.schema.get_field_index("url_sha256")
    return t.set_column(i, "url_sha256", pa.array([s.upper() for s in t.column(i).to_pylist()]))


def test_a_manifest_with_upper_case_hashes_is_refused_by_lookup_too(cli: Cli, world: Path) -> None:
    m = world / "rel" / "manifest"
    listed = pq.read_table(m / "removed.parquet").column("url_sha256").to_pylist()
    assert listed
    _rewrite_manifest(m, edit_table=_upper)
    assert "lower-case" in fails(cli("lookup", "https://img1.example.com/a/1.jpg", "--manifest", m))


def test_a_manifest_with_a_non_integer_count_is_refused_clearly(cli: Cli, world: Path) -> None:
    m = world / "rel" / "manifest"
    _rewrite_manifest(m, edit_meta=lambda meta: {**meta, "counts": {"safety": "many"}})
    assert "counts" in fails(cli("lookup", "https://img1.example.com/a/1.jpg", "--manifest", m))


def test_a_manifest_without_the_sha256_of_its_file_is_fails(cli: Cli, world: Path) -> None:
    m = world / "rel" / "manifest"
    _rewrite_manifest(m, edit_meta=lambda meta: {k: v for k, v in meta.items() if k != "files"})
    assert "sha256" in fails(cli("lookup", "https://img1.example.com/a/1.jpg", "--manifest", m))


# --------------------------------------------------------------------- 5. a killed publish's staging


def test_gc_and_the_next_publish_remove_a_killed_publish_staging(cli: Cli, world: Path, lake_root: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAKE_")}
    for out in ("rel3", "rel4"):
        killed = subprocess.run([RELAKE, "--lake", str(lake_root), "publish", "v1", str(world / out)],
                                env={**env, "RELAKE_TEST_KILL_AT": "publish:before-rename"}, capture_output=True,
                                text=True, check=False)
        assert killed.returncode < 0, killed.stderr
    assert len(list(world.glob(".rel3.partial-*"))) == 1
    ok(cli("publish", "v1", world / "rel3"))
    assert not list(world.glob(".rel3.partial-*"))
    assert len(list(world.glob(".rel4.partial-*"))) == 1
    result = ok(cli("gc", "--dry-run"))
    assert ".rel4.partial-" in result.stdout
    assert list(world.glob(".rel4.partial-*"))
    ok(cli("gc"))
    assert not list(world.glob(".rel4.partial-*"))
    ok(cli("verify", world / "rel3"))


def test_a_record_whose_sources_are_not_a_list_is_fails(tmp_path: Path) -> None:
    """A string where the list of sources goes used to become a tuple of characters, silently."""
    from relake.errors import InputError
    from relake.record import Version

    good = {"format": "relake.version/1", "name": "v", "kind": "original", "parent": None, "rows": 0, "bytes": 0,
            "shards": [], "schema": [], "roles": {"url": None, "caption": None, "id": None},
            "fingerprint": {"algorithm": "a", "rows": 0, "value": "0"}, "tool": {}, "sources": "abc"}
    with pytest.raises(InputError, match="'sources' must be a list"):
        Version.from_json(json.dumps(good), "v/version.json")


def test_a_record_changed_on_disk_is_read_anew(tmp_path: Path) -> None:
    """Records are parsed once per process for each text read (``lake._parsed``): a record edited on disk
    between two loads in one process loads as edited, and a broken one is refused, not served from before."""
    from relake.ingest import ingest_version
    from relake.lake import Lake

    write_shards(tmp_path / "src", rows=20, shards=1)
    lake = Lake.at(tmp_path / "lake")
    ingest_version(lake, "orig", [str(tmp_path / "src")])
    path = lake.version_dir("orig") / "version.json"
    first = lake.load_version("orig")
    data = json.loads(path.read_text(encoding="utf-8"))
    data["sources"] = ["elsewhere"]
    path.chmod(0o644)
    path.write_text(json.dumps(data), encoding="utf-8")
    assert lake.load_version("orig").sources == ("elsewhere",) != first.sources
    data["rows"] = "many"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(Exception, match="rows"):
        lake.load_version("orig")
