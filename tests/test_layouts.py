"""img2dataset layouts are a registry: a layout registered from outside (here a dummy one, invented in this test)
is scanned, checked and cleaned by the same code as the built-in ones, without touching any relake module.

The dummy ``txtbundle`` layout keeps per shard ``NNNNN.txtbundle`` next to ``NNNNN.parquet``: one line
``{key}\\t{text}\\n`` per downloaded sample.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, get_args

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from relake.copies import LAYOUTS, Layout, LayoutName, Written, check_copy, clean_copy
from relake.errors import InputError
from relake.lake import Lake
from test_copies import sha256_hex, write_manifest

SHARDS = {  # shard -> (key, url, status) per parquet row; failures have no line in the bundle
    "00000": [("000000", "https://a.example/0.jpg", "success"), ("000001", "https://a.example/1.jpg", "success"),
              ("000002", "https://gone.example/2.jpg", "failed_to_download"),
              ("000003", "https://gone.example/3.jpg", "success"), ("000004", "https://a.example/4.jpg", "success")],
    "00001": [("000100", "https://gone.example/100.jpg", "success"), ("000101", "https://a.example/101.jpg",
                                                                        "success")],
    "00002": [("000200", "https://a.example/200.jpg", "success"), ("000201", "https://a.example/201.jpg",
                                                                     "success")],
}
GONE = {"000002", "000003", "000100"}  # the keys whose URL the manifest lists


class TxtBundle(Layout):
    name: ClassVar[str] = "txtbundle"
    summary = "text bundles + parquet"
    samples = "bundle lines"
    suffix = ".txtbundle"

    def filter(self, src: Path, dst: Path, drop: set[str]) -> Written:
        kept, dropped = [], 0
        for line in src.read_bytes().splitlines(keepends=True):
            if line.split(b"\t", 1)[0].decode() in drop:
                dropped += 1
            else:
                kept.append(line)
        data = b"".join(kept)
        dst.write_bytes(data)
        return Written(hashlib.sha256(data).hexdigest(), dropped)


@pytest.fixture
def txtbundle() -> Iterator[Layout]:
    layout = TxtBundle()
    LAYOUTS[layout.name] = layout
    try:
        yield layout
    finally:
        del LAYOUTS[layout.name]


def bundle_line(key: str) -> bytes:
    return f"{key}\tcaption of {key}, with a tab-free text\n".encode()


def write_copy(copy: Path) -> None:
    copy.mkdir()
    for shard, rows in SHARDS.items():
        pq.write_table(pa.table({
            "url": [u for _, u, _ in rows], "caption": [f"caption of {k}" for k, _, _ in rows],
            "key": [k for k, _, _ in rows], "status": [s for _, _, s in rows],
            "error_message": [None if s == "success" else "HTTP Error 404: Not Found" for _, _, s in rows],
        }), copy / f"{shard}.parquet")
        (copy / f"{shard}.txtbundle").write_bytes(b"".join(bundle_line(k) for k, _, s in rows if s == "success"))
        (copy / f"{shard}_stats.json").write_text(json.dumps({"count": len(rows)}, indent=4))


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    urls = [u for rows in SHARDS.values() for k, u, _ in rows if k in GONE]
    return write_manifest(tmp_path / "manifest", [sha256_hex(u) for u in urls], [None] * len(urls), algo=None)


def test_built_in_layouts_are_named_by_layout_name() -> None:
    assert list(LAYOUTS) == list(get_args(LayoutName))


def test_a_registered_layout_is_checked_and_cleaned(txtbundle: Layout, manifest: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    write_copy(copy)
    report = check_copy(Lake.at(tmp_path / "no-lake"), copy, manifest)
    assert report.layout == "txtbundle"
    layout = report.copy_layout
    assert layout is not None and [s.side for s in layout.shards] == [copy / f"{s}.txtbundle" for s in SHARDS]
    assert layout.others == ()  # the bundles are the shards' own, not other files
    assert {r.key for r in report.affected_rows} == GONE

    out = tmp_path / "out"
    cleaned = clean_copy(Lake.at(tmp_path / "no-lake"), copy, manifest, out)
    assert (cleaned.rewritten, cleaned.copied, cleaned.removed_rows) == (2, 1, 3)
    assert cleaned.removed_members == 2  # 000002 failed: it has no line
    for shard, rows in SHARDS.items():
        assert (out / f"{shard}.txtbundle").read_bytes() == b"".join(
            bundle_line(k) for k, _, s in rows if s == "success" and k not in GONE), shard
        assert pq.read_table(out / f"{shard}.parquet").column("key").to_pylist() == [
            k for k, _, _ in rows if k not in GONE]
    assert (out / "00002.txtbundle").read_bytes() == (copy / "00002.txtbundle").read_bytes()
    assert check_copy(Lake.at(tmp_path / "no-lake"), out, manifest).affected == 0


def test_a_registered_layout_names_itself_in_messages(txtbundle: Layout, manifest: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    write_copy(copy)
    (copy / "00001.txtbundle").rename(copy / "00001.tar")
    with pytest.raises(InputError, match=r"shard 00001 has a \.tar and shard 00000 a \.txtbundle; a copy has one "
                                         r"layout \(webdataset, files, tfrecord or txtbundle\)"):
        check_copy(Lake.at(tmp_path / "no-lake"), copy, manifest)
    (copy / "00001.tar").unlink()
    with pytest.raises(InputError, match=r"shard 00001 has no 00001\.txtbundle while other shards have one"):
        check_copy(Lake.at(tmp_path / "no-lake"), copy, manifest)
    (copy / "00001.txtbundle").write_bytes(b"")
    for shard in SHARDS:
        pq.write_table(pq.read_table(copy / f"{shard}.parquet").drop_columns(["key"]), copy / f"{shard}.parquet")
    with pytest.raises(InputError, match="txtbundle shards but no key column in the parquet files; bundle lines "
                                         "cannot be matched to rows"):
        check_copy(Lake.at(tmp_path / "no-lake"), copy, manifest)


def test_without_the_layout_its_files_are_other_files(manifest: Path, tmp_path: Path) -> None:
    """Unregistered (as after each test above), the bundles are nobody's samples: copied whole, as other files."""
    assert "txtbundle" not in LAYOUTS
    copy = tmp_path / "copy"
    write_copy(copy)
    report = check_copy(Lake.at(tmp_path / "no-lake"), copy, manifest)
    assert report.layout == "parquet" and {r.key for r in report.affected_rows} == GONE
    assert report.copy_layout is not None and report.copy_layout.shards[0].extras == (copy / "00000.txtbundle",)
