"""check and clean of img2dataset copies that drifted from what img2dataset wrote (issue #14, item 4): tars
re-packed with a folder prefix (``00000/000002.jpg``, ``./000002.jpg``; by tarfile and by GNU tar), a parquet key
column re-typed to int64 or to unpadded text, renamed sample files, and samples without a parquet row (orphans).

Each copy starts from genuine img2dataset output (tests/data/img2dataset). The test itself picks the affected rows
(by SAMPLE_ID), writes a manifest of their URLs' sha256, and computes what must be gone with pyarrow, tarfile and
os.listdir: a member's key is its basename up to the first '.', compared as an integer. Never relake's output.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from helpers import Cli, error_line
from relake.copies import LAYOUTS, RECORD_NAME, Written, check_copy, clean_copy
from relake.copies.write import copy_file
from relake.errors import AuditError, InputError
from relake.lake import Lake
from test_copies import sha256_hex, write_manifest

DATA = Path(__file__).parent / "data" / "img2dataset"
AFFECTED = frozenset({1002, 1003, 1005, 1007, 1011, 1013, 1018})  # 1005 failed: a parquet row only
Rows = dict[str, list[dict[str, Any]]]


def read_rows(copy: Path) -> Rows:
    return {p.stem: pq.read_table(p).to_pylist() for p in sorted(copy.glob("*.parquet"))}


def int_key(name: str) -> int:
    """The test's own reading of a member or file name: its basename up to the first '.', as an integer."""
    return int(os.path.basename(name).split(".", 1)[0])


def affected_keys(rows: Rows) -> dict[str, set[int]]:
    """shard -> keys (as integers) of the rows the test selected as affected."""
    return {s: {int(r["key"]) for r in rs if r["SAMPLE_ID"] in AFFECTED} for s, rs in rows.items()}


def tar_names(path: Path) -> list[str]:
    with tarfile.open(path) as tar:
        return [m.name for m in tar if not m.isdir()]


def tar_data(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake.at(tmp_path / "no-lake")


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    rows = read_rows(DATA / "webdataset")
    urls = [r["url"] for rs in rows.values() for r in rs if r["SAMPLE_ID"] in AFFECTED]
    assert len(urls) == len(AFFECTED) and not any("%" in u or "#" in u for u in urls)  # already canonical
    return write_manifest(tmp_path / "manifest", [sha256_hex(u) for u in urls], [None] * len(urls), algo=None)


def genuine(fmt: str, tmp_path: Path) -> Path:
    copy = tmp_path / f"copy-{fmt}"
    shutil.copytree(DATA / fmt, copy)
    return copy


# ------------------------------------------------------------------------------------ the drifted copies


def repack_tarfile(tar: Path, prefix: str, fmt: int = tarfile.PAX_FORMAT) -> None:
    """Every member of ``tar`` again, its name prefixed with ``prefix`` (with a folder entry, as ``tar cf``)."""
    with tarfile.open(tar) as src:
        members = [(m, src.extractfile(m).read()) for m in src if m.isfile()]  # type: ignore[union-attr]
    tmp = tar.with_suffix(".new")
    with tarfile.open(tmp, "w", format=fmt) as dst:
        if prefix.strip("./"):
            folder = tarfile.TarInfo(prefix.rstrip("/"))
            folder.type = tarfile.DIRTYPE
            dst.addfile(folder)
        for m, data in members:
            m.name = prefix + m.name
            dst.addfile(m, io.BytesIO(data))
    tmp.replace(tar)


def repack_gnu_tar(tar: Path, how: str) -> None:
    """``tar`` re-packed by GNU tar: ``folder`` = ``tar cf x.tar 00000/``, ``dot`` = ``tar cf x.tar -C 00000 .``."""
    work = tar.parent.parent / f"unpack-{tar.stem}"
    (work / tar.stem).mkdir(parents=True)
    with tarfile.open(tar) as src:
        src.extractall(work / tar.stem, filter="data")
    for f in (work / tar.stem).iterdir():
        f.chmod(0o644)
    args = [tar.stem + "/"] if how == "folder" else ["-C", tar.stem, "."]
    subprocess.run(["tar", "cf", str(tar), *args], cwd=work, check=True)
    shutil.rmtree(work)


def retype_keys(copy: Path, how: str) -> None:
    """The key column of every shard as int64 (a pandas round trip) or as unpadded text (a CSV round trip)."""
    for p in sorted(copy.glob("*.parquet")):
        t = pq.read_table(p)
        ints = t.column("key").cast(pa.int64())
        new = ints if how == "int64" else pa.array([str(v) for v in ints.to_pylist()], pa.string())
        pq.write_table(t.set_column(t.schema.get_field_index("key"), "key", new), p)


def unpad_files(copy: Path) -> None:
    """Sample files renamed to unpadded keys: ``000002.jpg`` -> ``2.jpg``."""
    for folder in sorted(p for p in copy.iterdir() if p.is_dir()):
        for f in sorted(folder.iterdir()):
            f.rename(folder / f"{int_key(f.name)}.{f.name.split('.', 1)[1]}")


def assert_cleaned(copy: Path, out: Path, fmt: str) -> None:
    """The output holds every input row and sample file but the selected ones, each kept file byte-exact."""
    rows = read_rows(copy)
    gone = affected_keys(rows)
    after = read_rows(out)
    for shard, rs in rows.items():
        assert [r["SAMPLE_ID"] for r in after[shard]] == [r["SAMPLE_ID"] for r in rs if r["SAMPLE_ID"] not in AFFECTED]
        if fmt == "webdataset":
            before_names, after_names = tar_names(copy / f"{shard}.tar"), tar_names(out / f"{shard}.tar")
            assert after_names == [n for n in before_names if int_key(n) not in gone[shard]], shard
            assert not {int_key(n) for n in after_names} & gone[shard]
            before, kept = tar_data(copy / f"{shard}.tar"), tar_data(out / f"{shard}.tar")
            assert all(kept[n] == before[n] for n in kept)
        elif fmt == "tfrecord":  # records in the order of tfrecord_keys.json (see tests/data/img2dataset)
            order = json.loads((DATA / "tfrecord_keys.json").read_text())[shard]
            before_records = split_records(copy / f"{shard}.tfrecord")
            assert len(before_records) == len(order)
            assert split_records(out / f"{shard}.tfrecord") == [
                rec for rec, key in zip(before_records, order, strict=True) if int(key) not in gone[shard]]
        elif fmt == "files":
            names = sorted(os.listdir(out / shard))
            assert names == sorted(n for n in os.listdir(copy / shard) if int_key(n) not in gone[shard])
            assert all((out / shard / n).read_bytes() == (copy / shard / n).read_bytes() for n in names)
    assert sum(len(g) for g in gone.values()) == len(AFFECTED)


def split_records(path: Path) -> list[bytes]:
    """A tfrecord file cut into its records by their length fields (8 bytes length, 4 its crc, data, 4 crc)."""
    data, out, pos = path.read_bytes(), [], 0
    while pos < len(data):
        end = pos + 12 + int.from_bytes(data[pos:pos + 8], "little") + 4
        out.append(data[pos:end])
        pos = end
    assert pos == len(data)
    return out


def clean_and_recheck(lake: Lake, copy: Path, manifest: Path, out: Path, fmt: str) -> None:
    report = check_copy(lake, copy, manifest)
    assert report.affected == len(AFFECTED) and report.orphans == 0
    clean_copy(lake, copy, manifest, out)
    assert_cleaned(copy, out, fmt)
    again = check_copy(lake, out, manifest)
    assert (again.affected, again.orphans) == (0, 0)
    assert json.loads((out / RECORD_NAME).read_text())["complete"] is True


# ----------------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("prefix", ["00000/", "./", "./00000/"])
@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
def test_tars_repacked_with_a_folder_prefix(prefix: str, fmt: int, lake: Lake, manifest: Path,
                                            tmp_path: Path) -> None:
    copy = genuine("webdataset", tmp_path)
    for tar in sorted(copy.glob("*.tar")):
        repack_tarfile(tar, prefix.replace("00000", tar.stem), fmt)
    assert all(n.startswith(prefix.replace("00000", "00001")) for n in tar_names(copy / "00001.tar"))
    clean_and_recheck(lake, copy, manifest, tmp_path / "out", "webdataset")


@pytest.mark.skipif(shutil.which("tar") is None, reason="needs a tar command")
@pytest.mark.parametrize("how", ["folder", "dot"])
def test_tars_repacked_by_gnu_tar(how: str, lake: Lake, manifest: Path, tmp_path: Path) -> None:
    copy = genuine("webdataset", tmp_path)
    for tar in sorted(copy.glob("*.tar")):
        repack_gnu_tar(tar, how)
    with tarfile.open(copy / "00000.tar") as t:
        names = t.getnames()
    assert ("00000" in names and "00000/000002.jpg" in names) if how == "folder" else "./000002.jpg" in names
    clean_and_recheck(lake, copy, manifest, tmp_path / "out", "webdataset")


@pytest.mark.parametrize("keys", ["int64", "unpadded"])
@pytest.mark.parametrize("layout", ["webdataset", "files", "tfrecord"])
def test_key_column_retyped(keys: str, layout: str, lake: Lake, manifest: Path, tmp_path: Path) -> None:
    copy = genuine(layout, tmp_path)
    retype_keys(copy, keys)
    t = pq.read_table(copy / "00001.parquet")
    assert sorted(t.column("key").to_pylist()) == ([10, 11, 12, 13, 14] if keys == "int64"
                                                   else ["10", "11", "12", "13", "14"])
    if layout == "webdataset":
        repack_tarfile(copy / "00001.tar", "./")  # one shard also prefixed
    clean_and_recheck(lake, copy, manifest, tmp_path / "out", layout)


def test_sample_files_renamed_to_unpadded_keys(lake: Lake, manifest: Path, tmp_path: Path) -> None:
    copy = genuine("files", tmp_path)
    unpad_files(copy)
    assert "2.jpg" in os.listdir(copy / "00000")
    clean_and_recheck(lake, copy, manifest, tmp_path / "out", "files")


# --------------------------------------------------------------------------------------------- orphans


def add_member(tar: Path, name: str, data: bytes) -> None:
    with tarfile.open(tar, "a") as t:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))


def test_check_reports_orphans_and_clean_keeps_them(lake: Lake, manifest: Path, tmp_path: Path, cli: Cli) -> None:
    copy = genuine("webdataset", tmp_path)
    add_member(copy / "00000.tar", "00000/000099.jpg", b"an image without a row")
    t = pq.read_table(copy / "00002.parquet")  # a downloaded sample's row removed: its 3 files are orphans
    rows = t.to_pylist()
    lost = next(r for r in rows if r["status"] == "success" and r["SAMPLE_ID"] not in AFFECTED)
    pq.write_table(t.filter(pa.array([r is not lost for r in rows])), copy / "00002.parquet")
    lost_names = [n for n in tar_names(copy / "00002.tar") if int_key(n) == int(lost["key"])]
    assert len(lost_names) == 3

    report = check_copy(lake, copy, manifest)
    by_shard = {s.shard: s for s in report.shards}
    assert report.orphans == 2 and by_shard["00000"].orphan_keys == ["00000/000099"]
    assert by_shard["00002"].orphan_keys == [lost["key"]] and by_shard["00002"].misplaced == []

    result = cli("check", copy, "--manifest", manifest, "--json")
    assert result.exit_code == 1, result.stderr
    data = json.loads(result.stdout)
    assert data["orphans"] == 2
    assert {s["shard"]: s["orphan_keys"] for s in data["shards"] if s["orphans"]} == {
        "00000": ["00000/000099"], "00002": [lost["key"]]}
    text = cli("check", copy, "--manifest", manifest)
    assert text.exit_code == 1 and "000099" in text.stdout and lost["key"] in text.stdout
    assert "orphan" in text.stdout and "orphan keys" in text.stderr
    for output in (result.stdout, text.stdout, text.stderr):
        assert lost["url"] not in output and "http" not in output

    out = tmp_path / "out"
    cleaned = clean_copy(lake, copy, manifest, out)
    assert (cleaned.orphans_kept, cleaned.orphans_dropped) == (2, 0)
    assert tar_data(out / "00000.tar")["00000/000099.jpg"] == b"an image without a row"
    kept = tar_data(out / "00002.tar")
    assert all(kept[n] == tar_data(copy / "00002.tar")[n] for n in lost_names)
    again = cli("check", out, "--manifest", manifest, "--json")
    assert again.exit_code == 1 and json.loads(again.stdout)["affected"] == 0  # found: the kept orphans


def test_an_affected_rows_files_in_another_shard_are_dropped(lake: Lake, manifest: Path, tmp_path: Path) -> None:
    """A misplaced sample: the files of an affected row of shard 00000 also sit in shard 00001's tar."""
    copy = genuine("webdataset", tmp_path)
    rows = read_rows(copy)
    key = next(r["key"] for r in rows["00000"] if r["SAMPLE_ID"] in AFFECTED and r["status"] == "success")
    for name, data in tar_data(copy / "00000.tar").items():
        if int_key(name) == int(key):
            add_member(copy / "00001.tar", "stray/" + name, data)
    report = check_copy(lake, copy, manifest)
    assert [(s.shard, s.misplaced) for s in report.shards if s.orphans] == [("00001", ["stray/" + key])]
    out = tmp_path / "out"
    cleaned = clean_copy(lake, copy, manifest, out)
    assert (cleaned.orphans_kept, cleaned.orphans_dropped) == (0, 1)
    for tar in sorted(out.glob("*.tar")):
        assert int(key) not in {int_key(n) for n in tar_names(tar)}, tar.name
    assert (check_copy(lake, out, manifest).affected, check_copy(lake, out, manifest).orphans) == (0, 0)


def test_files_layout_orphans(lake: Lake, manifest: Path, tmp_path: Path) -> None:
    copy = genuine("files", tmp_path)
    (copy / "00001" / "000777.jpg").write_bytes(b"orphan")
    report = check_copy(lake, copy, manifest)
    assert report.orphans == 1 and [s.orphan_keys for s in report.shards if s.orphans] == [["000777"]]
    clean_copy(lake, copy, manifest, tmp_path / "out")
    assert (tmp_path / "out" / "00001" / "000777.jpg").read_bytes() == b"orphan"


# ------------------------------------------------------------------------------------------- refusals


def rewrite_keys(parquet: Path, change: Callable[[list[str]], list[str]]) -> None:
    t = pq.read_table(parquet)
    keys = change(t.column("key").to_pylist())
    pq.write_table(t.set_column(t.schema.get_field_index("key"), "key", pa.array(keys, pa.string())), parquet)


def test_colliding_parquet_keys_are_refused(lake: Lake, manifest: Path, tmp_path: Path, cli: Cli) -> None:
    copy = genuine("webdataset", tmp_path)
    rewrite_keys(copy / "00000.parquet", lambda ks: ["2" if k == "000003" else k for k in ks])  # and "000002"
    pair = r"parquet keys ('000002' and '2'|'2' and '000002') are the same key"
    with pytest.raises(InputError, match=f"shard 00000 of .*: {pair}"):
        check_copy(lake, copy, manifest)
    result = cli("clean", copy, "--manifest", manifest, "--out", tmp_path / "out")
    assert result.exit_code == 2 and re.search(pair, error_line(result))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("first", "second"), [("000002.jpg", "2.txt"), ("00000/000002.jpg", "000002.txt"),
                                               ("a/000002.jpg", "b/000002.jpg")])
def test_one_key_spelled_two_ways_in_a_tar_is_refused(first: str, second: str, lake: Lake, manifest: Path,
                                                      tmp_path: Path) -> None:
    copy = genuine("webdataset", tmp_path)
    with tarfile.open(copy / "00000.tar") as t:
        kept = [(m, t.extractfile(m).read()) for m in t if int_key(m.name) != 2]  # type: ignore[union-attr]
    with tarfile.open(copy / "00000.tar", "w") as t:
        for m, data in kept:
            t.addfile(m, io.BytesIO(data))
    add_member(copy / "00000.tar", first, b"one")
    add_member(copy / "00000.tar", second, b"two")
    a, b = (n.rsplit(".", 1)[0] for n in (first, second))
    with pytest.raises(InputError, match=f"shard 00000 of .*: members '{a}' and '{b}' are one sample key"):
        check_copy(lake, copy, manifest)


def test_repeated_members_of_an_affected_key_all_go(lake: Lake, manifest: Path, tmp_path: Path) -> None:
    copy = genuine("webdataset", tmp_path)
    rows = read_rows(copy)
    key = next(r["key"] for r in rows["00000"] if r["SAMPLE_ID"] in AFFECTED and r["status"] == "success")
    add_member(copy / "00000.tar", f"{key}.jpg", b"appended again, as tar -r does")
    assert tar_names(copy / "00000.tar").count(f"{key}.jpg") == 2
    clean_and_recheck(lake, copy, manifest, tmp_path / "out", "webdataset")


# -------------------------------------------------------------------------------------- self-check


def test_clean_fails_loudly_when_an_affected_file_remains(lake: Lake, manifest: Path, tmp_path: Path, cli: Cli,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A layout whose filter misses the samples it should drop: the listing after the clean catches it."""
    copy = genuine("webdataset", tmp_path)

    def leaky(self: object, src: Path, dst: Path, drop: set[str]) -> Written:
        return Written(copy_file(src, dst)[0])

    monkeypatch.setattr(type(LAYOUTS["webdataset"]), "filter", leaky)
    out = tmp_path / "out"
    with pytest.raises(AuditError, match=r"the cleaned copy still holds \d+ file\(s\) of affected rows in \d "
                                         r"shard\(s\) \(shard 00000: 000002\.jpg"):
        clean_copy(lake, copy, manifest, out)
    record = json.loads((out / RECORD_NAME).read_text())
    assert record["complete"] is False and "shard 00000" not in record["units"]
    result = cli("clean", copy, "--manifest", manifest, "--out", out)
    assert result.exit_code == 2 and "marked incomplete" in error_line(result)
