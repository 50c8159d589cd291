"""check and clean against genuine img2dataset output (tests/data/img2dataset, written by img2dataset 1.47.0).

The fixtures (see tests/data/img2dataset/README.md and make.py) are 20 LAION-style rows downloaded from a local
HTTP server by img2dataset in three output formats (webdataset, parquet, files), 5 samples a shard, with 404s,
an undecodable image, a PNG, a NULL caption, an image served at two URLs and URL forms that differ from the
blocklist's (percent-escapes, a fragment, an upper-case scheme). Every expectation here is computed from the
fixture files with pyarrow, tarfile and json (or is a fact of how make.py built them), never from relake's output.
"""

from __future__ import annotations

import io
import json
import random
import shutil
import tarfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner, Result

from helpers import error_line, snapshot
from relake.cli import app

DATA = Path(__file__).parent / "data" / "img2dataset"
FORMATS = ("webdataset", "parquet", "files")

# Facts of make.py's construction (SAMPLE_ID = 1000 + input row). blocklist.txt lists the URLs of these rows,
# some in another form than the input's (upper-case scheme, escapes, fragment), plus one URL not in the input.
BLOCKLISTED = frozenset({1002, 1003, 1005, 1007, 1008, 1012, 1016})
UNSAFE = frozenset({1018})  # punsafe 0.99, removed by the spec's `where` rule
REMOVED = BLOCKLISTED | UNSAFE
SPEC = """\
name = "v2"
base = "v1"
[[rule]]
id = "bad-urls"
blocklist = "bad-urls"
category = "safety"
[[rule]]
id = "unsafe"
where = "punsafe > 0.95"
category = "nsfw"
"""

Rows = dict[str, list[dict[str, Any]]]  # shard stem -> parquet rows (in file order)


# ---------------------------------------------------------------------------------------------- facts


def read_copy(folder: Path) -> Rows:
    """Every shard's parquet rows, by shard stem (pyarrow)."""
    return {p.stem: pq.read_table(p).to_pylist() for p in sorted(folder.glob("*.parquet"))}


def removed_image_hashes() -> set[str]:
    """sha256 of the images of the removed input rows (input.parquet's own column, from the served bytes)."""
    rows = pq.read_table(DATA / "input.parquet").to_pylist()
    return {r["sha256"] for r in rows if r["SAMPLE_ID"] in REMOVED and r["sha256"] is not None}


def expected_ids(rows: Rows, *, images: bool) -> set[int]:
    """SAMPLE_IDs a check must report: removed rows (failures included), and with ``images`` also rows whose
    downloaded image has the sha256 of a removed row's image."""
    hashes = removed_image_hashes() if images else set()
    return {r["SAMPLE_ID"] for shard in rows.values() for r in shard
            if r["SAMPLE_ID"] in REMOVED or (r["sha256"] is not None and r["sha256"] in hashes)}


def keys_of(rows: Rows, ids: set[int]) -> dict[str, set[str]]:
    return {s: {r["key"] for r in shard if r["SAMPLE_ID"] in ids} for s, shard in rows.items()}


def reported_keys(result: Result) -> dict[str, set[str]]:
    report = json.loads(result.stdout)
    return {s["shard"]: {k["key"] for k in s["keys"]} for s in report["shards"]}


def tar_members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tf:
        out: dict[str, bytes] = {}
        for m in tf.getmembers():
            f = tf.extractfile(m)
            assert f is not None, f"{path}: {m.name} is not a regular file"
            out[m.name] = f.read()
        return out


def expected_stats(before: dict[str, Any], removed: list[dict[str, Any]]) -> dict[str, Any]:
    """img2dataset's per-shard stats less the removed rows, computed from their status and error_message."""
    after: dict[str, Any] = json.loads(json.dumps(before))
    status = Counter(r["status"] for r in removed)
    after["count"] -= len(removed)
    for field in ("successes", "failed_to_download", "failed_to_resize"):
        after[field] -= status["success" if field == "successes" else field]
    labels = Counter("success" if r["status"] == "success" else r["error_message"] for r in removed)
    after["status_dict"] = {k: v - labels[k] for k, v in before["status_dict"].items() if v - labels[k] > 0}
    return after


# ---------------------------------------------------------------------------------------------- fixtures


class Relake:
    """``relake --lake LAKE ARGS...`` in process (stdout and stderr apart)."""

    def __init__(self, lake: Path) -> None:
        self.lake = lake
        self.runner = CliRunner()

    def __call__(self, *args: str | Path) -> Result:
        return self.runner.invoke(app, ["--lake", str(self.lake), *map(str, args)])


@pytest.fixture(scope="module")
def relake(tmp_path_factory: pytest.TempPathFactory) -> Relake:
    """A lake with v1 = input.parquet and v2 = v1 less the blocklisted and unsafe rows."""
    root = tmp_path_factory.mktemp("genuine")
    run = Relake(root / "lake")
    spec = root / "spec.toml"
    spec.write_text(SPEC, encoding="utf-8")
    for args in (("ingest", "v1", DATA / "input.parquet"),
                 ("blocklist", "add", "bad-urls", DATA / "blocklist.txt", "--kind", "url"),
                 ("build", "v2", "--spec", spec),
                 ("manifest", "v1", "v2", "--out", root / "manifest")):
        result = run(*args)
        assert result.exit_code == 0, (args, result.stdout, result.stderr)
    return run


@pytest.fixture(scope="module")
def manifest(relake: Relake) -> Path:
    """The public removal manifest v1 -> v2 (URL hashes only)."""
    return relake.lake.parent / "manifest"


@pytest.fixture(scope="module")
def untouched() -> Iterator[None]:
    """The fixtures' snapshot before the module's tests; checked unchanged at the end."""
    before = snapshot(DATA)
    yield
    assert snapshot(DATA) == before


def manifest_arg(kind: str, manifest: Path) -> str:
    """``folder``: the public manifest (URL hashes only); ``pair``: ``v1..v2`` (with the base's image hashes)."""
    return str(manifest) if kind == "folder" else "v1..v2"


# ---------------------------------------------------------------------------------------------- the fixtures


def test_fixtures_are_genuine_and_as_built() -> None:
    """Sanity of the fixture itself: what img2dataset wrote, independent of relake."""
    for fmt in FORMATS:
        rows = read_copy(DATA / fmt)
        assert list(rows) == ["00000", "00001", "00002", "00003"]
        flat = [r for shard in rows.values() for r in shard]
        assert sorted(r["SAMPLE_ID"] for r in flat) == list(range(1000, 1020))
        assert {"url", "caption", "key", "status", "error_message", "sha256", "SAMPLE_ID", "punsafe"} <= set(flat[0])
        status = {r["SAMPLE_ID"]: r["status"] for r in flat}
        assert {i for i, s in status.items() if s != "success"} == {1005, 1012, 1014}
        assert status[1012] == "failed_to_resize"
        for stem, shard in rows.items():
            stats = json.loads((DATA / fmt / f"{stem}_stats.json").read_text(encoding="utf-8"))
            assert stats["count"] == len(shard)
    # row 17 downloads the same image bytes as row 3, from another URL
    assert expected_ids(read_copy(DATA / "webdataset"), images=True) - REMOVED == {1017}


# ---------------------------------------------------------------------------------------------- check


@pytest.mark.parametrize("kind", ["folder", "pair"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_check_reports_exactly_the_removed_rows(
    relake: Relake, manifest: Path, untouched: None, fmt: str, kind: str
) -> None:
    rows = read_copy(DATA / fmt)
    want = expected_ids(rows, images=kind == "pair")
    result = relake("check", DATA / fmt, "--manifest", manifest_arg(kind, manifest), "--json")
    assert result.exit_code == 1, result.stderr
    report = json.loads(result.stdout)
    assert reported_keys(result) == {s: k for s, k in keys_of(rows, want).items() if k}
    assert report["rows"] == 20
    assert report["affected"] == len(want)
    failed = {r["key"] for shard in rows.values() for r in shard
              if r["SAMPLE_ID"] in want and r["status"] != "success"}
    assert {k["key"] for s in report["shards"] for k in s["keys"] if k["failed"]} == failed
    by_image_only = {k["key"] for s in report["shards"] for k in s["keys"] if k["how"] == "image"}
    assert by_image_only == (keys_of(rows, {1017})["00003"] if kind == "pair" else set())
    assert "127.0.0.1" not in result.stdout + result.stderr  # never prints a URL of the copy


@pytest.mark.parametrize("fmt", FORMATS)
def test_check_keep_only_release(relake: Relake, untouched: None, fmt: str) -> None:
    """Allowlist mode: rows whose (URL, caption) is not in v2; the NULL-caption row (1011) is kept."""
    rows = read_copy(DATA / fmt)
    result = relake("check", DATA / fmt, "--keep-only", "v2", "--json")
    assert result.exit_code == 1, result.stderr
    assert reported_keys(result) == {s: k for s, k in keys_of(rows, set(REMOVED)).items() if k}
    result = relake("check", DATA / fmt, "--keep-only", "v1", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["affected"] == 0


# ---------------------------------------------------------------------------------------------- clean


def assert_parquet_cleaned(src: Path, out: Path, drop: set[int]) -> None:
    """Each shard's rows are the original's less ``drop``, in order, same column names and types (jpg bytes
    included; nullability is test_clean_keeps_the_parquet_schema's)."""
    for p in sorted(src.glob("*.parquet")):
        before, after = pq.read_table(p), pq.read_table(out / p.name)
        assert [(f.name, f.type) for f in after.schema] == [(f.name, f.type) for f in before.schema], p.name
        assert after.to_pylist() == [r for r in before.to_pylist() if r["SAMPLE_ID"] not in drop], p.name


def assert_stats_cleaned(src: Path, out: Path, drop: set[int]) -> None:
    for p in sorted(src.glob("*_stats.json")):
        shard = pq.read_table(src / f"{p.name[: -len('_stats.json')]}.parquet").to_pylist()
        removed = [r for r in shard if r["SAMPLE_ID"] in drop]
        before = json.loads(p.read_text(encoding="utf-8"))
        assert json.loads((out / p.name).read_text(encoding="utf-8")) == expected_stats(before, removed), p.name


def assert_tars_cleaned(src: Path, out: Path, drop: set[int]) -> None:
    """Members of dropped keys gone, every other member byte-identical and in order; a valid webdataset."""
    for t in sorted(src.glob("*.tar")):
        shard = pq.read_table(src / f"{t.stem}.parquet").to_pylist()
        gone = {r["key"] for r in shard if r["SAMPLE_ID"] in drop}
        before, after = tar_members(t), tar_members(out / t.name)
        assert list(after) == [n for n in before if n.split(".", 1)[0] not in gone], t.name
        assert all(after[n] == before[n] for n in after), t.name
        kept = {r["key"]: r for r in shard if r["SAMPLE_ID"] not in drop and r["status"] == "success"}
        for key, row in kept.items():
            assert {f"{key}.jpg", f"{key}.json", f"{key}.txt"} <= set(after), (t.name, key)
            meta = json.loads(after[f"{key}.json"])
            assert (meta["key"], meta["SAMPLE_ID"]) == (key, row["SAMPLE_ID"])
        assert {n.split(".", 1)[0] for n in after} == set(kept), t.name


@pytest.mark.parametrize("kind", ["folder", "pair"])
@pytest.mark.parametrize("fmt", ["webdataset", "parquet"])
def test_clean_drops_exactly_the_affected_samples(
    relake: Relake, manifest: Path, untouched: None, tmp_path: Path, fmt: str, kind: str
) -> None:
    src, out = DATA / fmt, tmp_path / "cleaned"
    drop = expected_ids(read_copy(src), images=kind == "pair")
    m = manifest_arg(kind, manifest)
    result = relake("clean", src, "--manifest", m, "--out", out, "--json")
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in out.iterdir() if p.name != ".relake-clean.json") == sorted(
        p.name for p in src.iterdir())
    assert_parquet_cleaned(src, out, drop)
    assert_stats_cleaned(src, out, drop)
    assert_tars_cleaned(src, out, drop)
    again = relake("check", out, "--manifest", m, "--json")
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["rows"] == 20 - len(drop)


@pytest.mark.parametrize("fmt", ["webdataset", "parquet"])
def test_clean_keeps_the_parquet_schema(
    relake: Relake, manifest: Path, untouched: None, tmp_path: Path, fmt: str
) -> None:
    """DuckDB's writer declares a column without NULLs required; img2dataset declares every column optional, and a
    rewritten shard must keep that (else the shards of one copy disagree on their schema)."""
    src, out = DATA / fmt, tmp_path / "cleaned"
    result = relake("clean", src, "--manifest", str(manifest), "--out", out)
    assert result.exit_code == 0, result.stderr
    for p in sorted(src.glob("*.parquet")):
        assert pq.read_schema(out / p.name).equals(pq.read_schema(p)), p.name
    shards = [pq.read_table(p) for p in sorted(out.glob("*.parquet"))]
    assert pa.concat_tables(shards).num_rows == 20 - len(REMOVED)


def test_clean_files_layout_parquet_and_stats(
    relake: Relake, manifest: Path, untouched: None, tmp_path: Path
) -> None:
    """output_format=files: the per-shard parquet and stats are cleaned like the other layouts."""
    src, out = DATA / "files", tmp_path / "cleaned"
    result = relake("clean", src, "--manifest", str(manifest), "--out", out)
    assert result.exit_code == 0, result.stderr
    assert_parquet_cleaned(src, out, set(REMOVED))
    assert_stats_cleaned(src, out, set(REMOVED))


def test_clean_files_layout_drops_the_affected_images(
    relake: Relake, manifest: Path, untouched: None, tmp_path: Path
) -> None:
    """output_format=files (img2dataset's default): every file of an affected key leaves its NNNNN/ folder, every
    other file is copied byte for byte; a rerun resumes every unit; a damaged output folder is redone."""
    src, out = DATA / "files", tmp_path / "cleaned"
    result = relake("clean", src, "--manifest", str(manifest), "--out", out, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["layout"] == "files" and report["files"] == 0  # no sample file counted as an "other file"
    rows = read_copy(src)
    gone = keys_of(rows, set(REMOVED))
    left = sorted(p.relative_to(out).as_posix() for s, keys in gone.items() for k in keys
                  for p in (out / s).glob(f"{k}.*"))
    assert left == []
    kept = sorted(p.relative_to(src).as_posix() for p in src.glob("*/*")
                  if p.name.split(".", 1)[0] not in gone[p.parent.name])
    assert sorted(p.relative_to(out).as_posix() for p in out.glob("*/*")) == kept
    assert all((out / k).read_bytes() == (src / k).read_bytes() for k in kept)
    successes = sum(1 for shard in rows.values() for r in shard if r["SAMPLE_ID"] in REMOVED
                    and r["status"] == "success")
    assert report["removed_members"] == sum(1 for p in src.glob("*/*")
                                            if p.name.split(".", 1)[0] in gone[p.parent.name])
    assert report["removed_members"] == 3 * successes  # .jpg, .txt and .json of each downloaded sample

    again = relake("clean", src, "--manifest", str(manifest), "--out", out, "--json")
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["resumed"] == len(rows)
    victim = out / kept[0]
    victim.write_bytes(b"damaged")
    (out / Path(kept[0]).parent / "stray.jpg").write_bytes(b"not from the copy")
    third = relake("clean", src, "--manifest", str(manifest), "--out", out, "--json")
    assert third.exit_code == 0, third.stderr
    assert json.loads(third.stdout)["resumed"] == len(rows) - 1
    assert victim.read_bytes() == (src / kept[0]).read_bytes()
    assert sorted(p.relative_to(out).as_posix() for p in out.glob("*/*")) == kept


def test_files_layout_with_symlinked_sample_folders(
    relake: Relake, manifest: Path, untouched: None, tmp_path: Path
) -> None:
    """Sample folders reached through symlinks to folders inside the copy are cleaned like real ones (they used to
    be skipped, and the cleaned copy lost every image); a symlink to any other folder is refused, not silently left
    out (links out of the copy are refused: tests/test_copies_hostile.py)."""
    copy = tmp_path / "copy"
    shutil.copytree(DATA / "files", copy)
    real = copy / "real"
    real.mkdir()
    for d in sorted(p for p in copy.iterdir() if p.is_dir() and p != real):
        shutil.move(d, real / d.name)
        d.symlink_to(real / d.name, target_is_directory=True)
    out, plain = tmp_path / "cleaned", tmp_path / "cleaned-plain"
    result = relake("clean", copy, "--manifest", str(manifest), "--out", out)
    assert result.exit_code == 0, result.stderr
    assert relake("clean", DATA / "files", "--manifest", str(manifest), "--out", plain).exit_code == 0
    listing = sorted(p.relative_to(plain).as_posix() for p in plain.rglob("*") if p.name != ".relake-clean.json")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.name != ".relake-clean.json") == listing
    gone = keys_of(read_copy(DATA / "files"), set(REMOVED))
    kept = [p for p in (DATA / "files").glob("*/*") if p.name.split(".", 1)[0] not in gone[p.parent.name]]
    assert len([x for x in listing if "/" in x]) == len(kept) > 0  # every kept sample file, in its folder
    (copy / "extra").symlink_to(real, target_is_directory=True)
    result = relake("check", copy, "--manifest", str(manifest))
    assert result.exit_code == 2
    assert error_line(result).endswith("extra is a symlink to a folder, which relake does not follow (its files "
                                       "would be missing from a cleaned copy); replace it by the folder or remove it")


def test_image_col_without_any_value_matches_by_url_with_a_note(
    relake: Relake, manifest: Path, untouched: None, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    for p in sorted((DATA / "parquet").glob("*.parquet")):
        t = pq.read_table(p)
        pq.write_table(t.append_column("img_hash", pa.nulls(t.num_rows, pa.string())), copy / p.name)
    rows = read_copy(copy)
    result = relake("check", copy, "--manifest", "v1..v2", "--image-col", "img_hash", "--json")
    assert result.exit_code == 1, result.stderr
    assert reported_keys(result) == keys_of(rows, expected_ids(rows, images=False))
    assert "the copy's column img_hash holds no image hash: matched by URL only" in json.loads(result.stdout)["notes"]


# ---------------------------------------------------------------------------------------------- tfrecord


def _pb_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _pb_bytes(field: int, payload: bytes) -> bytes:
    return _pb_varint(field << 3 | 2) + _pb_varint(len(payload)) + payload


def _example(features: dict[str, bytes | int]) -> bytes:
    """A serialized tf.train.Example, encoded from the protobuf spec (bytes_list or int64_list features)."""
    entries = b""
    for name, value in features.items():
        if isinstance(value, bytes):
            feature = _pb_bytes(1, _pb_bytes(1, value))  # bytes_list { value }
        else:
            feature = _pb_bytes(3, _pb_bytes(1, _pb_varint(value)))  # int64_list { packed value }
        entries += _pb_bytes(1, _pb_bytes(1, name.encode()) + _pb_bytes(2, feature))
    return _pb_bytes(1, entries)


def _tfrecord(records: list[bytes]) -> bytes:
    from relake.copies import masked_crc32c

    out = b""
    for r in records:
        n = len(r).to_bytes(8, "little")
        out += n + masked_crc32c(n).to_bytes(4, "little") + r + masked_crc32c(r).to_bytes(4, "little")
    return out


def test_crc32c_is_the_castagnoli_checksum() -> None:
    from relake.copies import masked_crc32c

    crc = 0xE3069283  # CRC-32C of b"123456789", the standard check value (RFC 3720, B.4)
    assert masked_crc32c(b"123456789") == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecord_copy(folder: Path) -> dict[str, list[str]]:
    """An img2dataset tfrecord copy made from the genuine parquet output: per shard the parquet (without the
    image column), the stats, and NNNNN.tfrecord with an Example (key, jpg, txt, SAMPLE_ID) per downloaded
    sample, as img2dataset's TFRecordSampleWriter writes them. Returns each shard's record keys in order."""
    folder.mkdir()
    keys: dict[str, list[str]] = {}
    for p in sorted((DATA / "parquet").glob("*.parquet")):
        t = pq.read_table(p)
        rows = t.to_pylist()
        pq.write_table(t.drop_columns(["jpg"]), folder / p.name)
        shutil.copy(DATA / "parquet" / f"{p.stem}_stats.json", folder)
        ok = [r for r in rows if r["status"] == "success"]
        (folder / f"{p.stem}.tfrecord").write_bytes(_tfrecord([
            _example({"key": r["key"].encode(), "jpg": r["jpg"], "txt": (r["caption"] or "").encode(),
                      "SAMPLE_ID": r["SAMPLE_ID"]}) for r in ok]))
        keys[p.stem] = [r["key"] for r in ok]
    return keys


def check_and_clean_tfrecords(relake: Relake, manifest: Path, copy: Path, out: Path
                              ) -> tuple[dict[str, set[str]], dict[str, Any]]:
    """check reports exactly the removed rows' keys; clean into ``out`` as the tfrecord layout, its parquet and
    stats cleaned, and a re-check finds nothing. The keys gone per shard, and clean's report."""
    gone = keys_of(read_copy(copy), set(REMOVED))
    result = relake("check", copy, "--manifest", str(manifest), "--json")
    assert result.exit_code == 1, result.stderr
    assert reported_keys(result) == gone
    result = relake("clean", copy, "--manifest", str(manifest), "--out", out, "--json")
    assert result.exit_code == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    assert report["layout"] == "tfrecord"
    assert_parquet_cleaned(copy, out, set(REMOVED))
    assert_stats_cleaned(copy, out, set(REMOVED))
    again = relake("check", out, "--manifest", str(manifest), "--json")
    assert again.exit_code == 0, again.stderr
    return gone, report


def test_clean_tfrecord_layout_drops_the_affected_records(
    relake: Relake, manifest: Path, untouched: None, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    keys = tfrecord_copy(copy)
    out = tmp_path / "cleaned"
    gone, report = check_and_clean_tfrecords(relake, manifest, copy, out)
    assert report["removed_members"] == sum(k in gone[s] for s, ks in keys.items() for k in ks) > 0
    for stem, ks in keys.items():
        src = (copy / f"{stem}.tfrecord").read_bytes()
        want = _tfrecord([_example({"key": k.encode(), "jpg": r["jpg"], "txt": (r["caption"] or "").encode(),
                                    "SAMPLE_ID": r["SAMPLE_ID"]})
                          for k in ks if k not in gone[stem]
                          for r in pq.read_table(DATA / "parquet" / f"{stem}.parquet").to_pylist() if r["key"] == k])
        assert (out / f"{stem}.tfrecord").read_bytes() == want, stem
        if not gone[stem]:
            assert (out / f"{stem}.tfrecord").read_bytes() == src


def _record_keys(path: Path) -> list[str]:
    from relake.copies import example_key

    data, keys, pos = path.read_bytes(), [], 0
    while pos < len(data):
        size = int.from_bytes(data[pos:pos + 8], "little")
        key = example_key(data[pos + 12:pos + 12 + size])
        assert key is not None
        keys.append(key)
        pos += 16 + size
    return keys


def test_genuine_tfrecord_copy_is_checked_and_cleaned(
    relake: Relake, manifest: Path, untouched: None, tmp_path: Path
) -> None:
    """img2dataset 1.47.0's own tfrecord output (TensorFlow's writer): the keys relake reads from its records
    are the ones TensorFlow read (tfrecord_keys.json), and a clean keeps exactly the unaffected records."""
    src = DATA / "tfrecord"
    tf_keys: dict[str, list[str]] = json.loads((DATA / "tfrecord_keys.json").read_text())
    assert {p.stem: _record_keys(p) for p in sorted(src.glob("*.tfrecord"))} == tf_keys
    out = tmp_path / "cleaned"
    gone, _ = check_and_clean_tfrecords(relake, manifest, src, out)
    for stem, keys in tf_keys.items():
        assert _record_keys(out / f"{stem}.tfrecord") == [k for k in keys if k not in gone[stem]], stem


def test_damaged_tfrecord_is_refused_and_nothing_is_published(
    relake: Relake, manifest: Path, untouched: None, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    keys = tfrecord_copy(copy)
    stem = next(s for s, ks in keys.items() if set(ks) & keys_of(read_copy(copy), set(REMOVED))[s])
    data = bytearray((copy / f"{stem}.tfrecord").read_bytes())
    data[3] ^= 0xFF  # the first record's length no longer matches its checksum
    (copy / f"{stem}.tfrecord").write_bytes(bytes(data))
    result = relake("clean", copy, "--manifest", str(manifest), "--out", tmp_path / "cleaned")
    assert result.exit_code == 2
    assert error_line(result) == (f"Error: {copy / f'{stem}.tfrecord'}: not a tfrecord file, or damaged at byte 0 "
                                  "(a record's length or its checksum is wrong); restore it from the download")
    assert not (tmp_path / "cleaned" / f"{stem}.tfrecord").exists()


# ---------------------------------------------------------------------------------------------- re-sharded copies


def test_resharded_reordered_parquet_copy_with_renamed_url(
    relake: Relake, manifest: Path, untouched: None, tmp_path: Path
) -> None:
    """Two pairs of img2dataset parquet shards concatenated, rows shuffled, ``url`` renamed."""
    copy = tmp_path / "copy"
    copy.mkdir()
    for name, stems in (("a", ("00000", "00001")), ("b", ("00002", "00003"))):
        table = pa.concat_tables([pq.read_table(DATA / "parquet" / f"{s}.parquet") for s in stems])
        order = list(range(table.num_rows))
        random.Random(7).shuffle(order)
        table = table.take(pa.array(order)).rename_columns(
            ["image_url" if c == "url" else c for c in table.column_names])
        pq.write_table(table, copy / f"{name}.parquet")
    rows = read_copy(copy)
    drop = expected_ids(rows, images=False)

    result = relake("check", copy, "--manifest", str(manifest))
    assert result.exit_code == 2
    assert "--url-col" in error_line(result)

    result = relake("check", copy, "--manifest", str(manifest), "--url-col", "image_url", "--json")
    assert result.exit_code == 1, result.stderr
    assert reported_keys(result) == keys_of(rows, drop)

    out = tmp_path / "cleaned"
    result = relake("clean", copy, "--manifest", str(manifest), "--url-col", "image_url", "--out", out)
    assert result.exit_code == 0, result.stderr
    assert_parquet_cleaned(copy, out, drop)


def test_resharded_webdataset_copy(relake: Relake, untouched: None, tmp_path: Path) -> None:
    """Shards 00000 and 00001 merged into one (parquet concatenated, tars re-packed in reverse sample order)."""
    src, copy = DATA / "webdataset", tmp_path / "copy"
    copy.mkdir()
    pq.write_table(pa.concat_tables([pq.read_table(src / f"{s}.parquet") for s in ("00000", "00001")]),
                   copy / "merged.parquet")
    with tarfile.open(copy / "merged.tar", "w") as merged:
        members: list[tuple[tarfile.TarInfo, bytes]] = []
        for s in ("00000", "00001"):
            with tarfile.open(src / f"{s}.tar") as tf:
                for m in tf.getmembers():
                    f = tf.extractfile(m)
                    assert f is not None
                    members.append((m, f.read()))
        members.sort(key=lambda x: x[0].name.split(".", 1)[0], reverse=True)
        for info, data in members:
            merged.addfile(info, fileobj=io.BytesIO(data))
    rows = read_copy(copy)
    drop = expected_ids(rows, images=True)
    result = relake("check", copy, "--manifest", "v1..v2", "--json")
    assert result.exit_code == 1, result.stderr
    assert reported_keys(result) == keys_of(rows, drop)
    out = tmp_path / "cleaned"
    result = relake("clean", copy, "--manifest", "v1..v2", "--out", out)
    assert result.exit_code == 0, result.stderr
    assert_parquet_cleaned(copy, out, drop)
    assert_tars_cleaned(copy, out, drop)


def test_image_hash_column_under_another_name(relake: Relake, untouched: None, tmp_path: Path) -> None:
    """--image-col names a column whose name is no algorithm: its values' hex length says sha256; a column of
    other values is refused (it used to be accepted, silently matching by URL only)."""
    copy = tmp_path / "copy"
    copy.mkdir()
    for p in sorted((DATA / "parquet").glob("*.parquet")):
        t = pq.read_table(p)
        pq.write_table(t.rename_columns(["img_hash" if c == "sha256" else c for c in t.column_names]), copy / p.name)
    rows = read_copy(copy)
    want = keys_of(rows, {r["SAMPLE_ID"] for shard in rows.values() for r in shard
                          if r["SAMPLE_ID"] in REMOVED or (r["img_hash"] is not None
                                                           and r["img_hash"] in removed_image_hashes())})
    assert sum(map(len, want.values())) > sum(map(len, keys_of(rows, set(REMOVED)).values()))  # 1017 by image
    result = relake("check", copy, "--manifest", "v1..v2", "--image-col", "img_hash", "--json")
    assert result.exit_code == 1, result.stderr
    assert reported_keys(result) == want
    result = relake("check", copy, "--manifest", "v1..v2", "--image-col", "caption")
    assert result.exit_code == 2
    assert "column 'caption' given for the image hash does not hold hex md5, sha1 or sha256" in error_line(result)


# ---------------------------------------------------------------------------------------------- wrong inputs


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("check", DATA / "webdataset"), "--manifest"),
        (("check", DATA / "webdataset", "--manifest", DATA / "blocklist.txt"), "not a folder"),
        (("check", DATA / "webdataset", "--manifest", DATA / "webdataset"), "manifest.json"),
        (("check", DATA / "webdataset", "--manifest", "v2..v1"), "ancestor"),
        (("check", DATA / "webdataset", "--manifest", "v1..v2", "--url-col", "URL"), "'URL'"),
        (("check", DATA / "webdataset", "--manifest", "v1..v2", "--image-col", "md5"), "'md5'"),
        (("check", DATA, "--manifest", "v1..v2"), "subfolder"),
        (("check", DATA / "input.parquet", "--manifest", "v1..v2"), "input.parquet"),
        (("clean", DATA / "webdataset", "--manifest", "v1..v2", "--out", DATA / "webdataset" / "x"), "inside"),
    ],
)
def test_wrong_inputs_fail_clearly(relake: Relake, untouched: None, args: tuple[str | Path, ...],
                                   needle: str) -> None:
    result = relake(*args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert needle in error_line(result)


def test_clean_keeps_each_shards_key_value_metadata(
    relake: Relake, manifest: Path, untouched: None, tmp_path: Path
) -> None:
    """A copy re-written by pandas carries pandas' metadata (and a producer may add its own); each cleaned shard
    keeps its source shard's pairs but ``ARROW:schema``."""
    src, out = tmp_path / "copy", tmp_path / "cleaned"
    shutil.copytree(DATA / "webdataset", src)
    want: dict[str, dict[bytes, bytes]] = {}
    for i, p in enumerate(sorted(src.glob("*.parquet"))):
        table = pq.read_table(p)
        meta = {b"pandas": json.dumps({"index_columns": [], "shard": i}).encode(), b"origin": f"pass {i} ü".encode()}
        pq.write_table(table.replace_schema_metadata(meta), p)
        want[p.name] = meta
    result = relake("clean", src, "--manifest", str(manifest), "--out", out)
    assert result.exit_code == 0, result.stderr
    for name, meta in want.items():
        got = dict(pq.read_metadata(out / name).metadata or {})
        got.pop(b"ARROW:schema", None)
        assert got == meta, name
