"""check and clean with an image-pdq blocklist: on synth-copy's webdataset and parquet copies and on the genuine
img2dataset fixtures (webdataset, parquet, files, tfrecord). Expectations come from reading the copies' files
directly (tarfile, pyarrow, os) and hashing every image, never from relake's layout code; nothing the list holds
(nor the copy's hash of a matched image) appears in any output."""

from __future__ import annotations

import io
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from helpers import Cli, error_line, fails, found, ok, snapshot
from pdq_images import jpeg, need_pdq

need_pdq()

from relake.copies.keys import normal_key  # noqa: E402
from relake.copies.tfrecord import IMAGE_FEATURE, example_feature, read_records  # noqa: E402
from relake.pdq import hash_image  # noqa: E402

GENUINE = Path(__file__).parent / "data" / "img2dataset"


def images_of(copy: Path) -> dict[str, bytes]:
    """Every image of a copy by normal key, read with tarfile, pyarrow, the file system or the tfrecord reader."""
    out: dict[str, bytes] = {}
    for p in sorted(copy.glob("*.tar")):
        with tarfile.open(p) as tar:
            for m in tar.getmembers():
                if m.isfile() and m.name.rsplit(".", 1)[-1] in ("jpg", "png", "webp"):
                    out[normal_key(m.name)] = tar.extractfile(m).read()  # type: ignore[union-attr]
    for p in sorted(copy.glob("*.tfrecord")):
        for _, body, key in read_records(p):
            image = example_feature(body[:-4], IMAGE_FEATURE)
            if image:
                out[normal_key(key)] = image
    for d in sorted(x for x in copy.iterdir() if x.is_dir()):
        for f in sorted(d.iterdir()):
            if f.suffix in (".jpg", ".png", ".webp"):
                out[normal_key(f.name)] = f.read_bytes()
    if not out:  # the parquet layout: images in column jpg
        for p in sorted(copy.glob("*.parquet")):
            t = pq.read_table(p).to_pylist()
            out.update({normal_key(str(r["key"])): r["jpg"] for r in t if r.get("jpg")})
    return out


def distance(a: bytes, b: bytes) -> int:
    return int(np.unpackbits(np.frombuffer(bytes(x ^ y for x, y in zip(a, b, strict=True)), np.uint8)).sum())


def expected(images: dict[str, bytes], listed: list[bytes], min_quality: int) -> dict[str, int]:
    """Brute force: each image's smallest distance to a listed hash over its hashes of quality >= min_quality,
    for the images within 31 bits."""
    out: dict[str, int] = {}
    for key, data in images.items():
        h = hash_image(data)
        ds = [distance(x, y) for x, q in zip(h.hashes, h.qualities, strict=True) if q >= min_quality
              for y in listed]
        if ds and min(ds) <= 31:
            out[key] = min(ds)
    return out


def write_list(path: Path, hashes: list[bytes], qualities: list[int]) -> Path:
    path.write_text("".join(f"{h.hex()},{q}\n" for h, q in zip(hashes, qualities, strict=True)), encoding="utf-8")
    return path


def matched(report: dict[str, Any]) -> dict[str, int]:
    return {normal_key(m["key"]): m["distance"] for m in report["pdq"]["matches"]}


def no_hash_in(outputs: list[str], hashes: list[bytes]) -> None:
    text = "\n".join(outputs).lower()
    for h in hashes:
        assert h.hex() not in text
        assert h.hex()[:16] not in text


@pytest.fixture
def synth(cli: Cli, src: list[Path], tmp_path: Path) -> Path:
    ok(cli("ingest", "v1", src[0].parent))
    return tmp_path


@pytest.mark.parametrize("fmt", ["webdataset", "parquet"])
def test_check_and_clean_a_synth_copy(cli: Cli, synth: Path, fmt: str) -> None:
    copy = synth / f"copy-{fmt}"
    ok(cli("synth-copy", "v1", copy, "--shard-size", "100", "--format", fmt))
    images = images_of(copy)
    keys = sorted(images)[5:8]
    listed: list[bytes] = []
    qualities: list[int] = []
    for i, k in enumerate(keys):  # the image itself, then JPEG re-encodes of it (what a partner would hold)
        data = images[k] if i == 0 else jpeg(Image.open(io.BytesIO(images[k])), 90 if i == 1 else 75)
        h = hash_image(data)
        listed.append(h.hashes[0])
        qualities.append(h.qualities[0])
    ok(cli("blocklist", "add", "partner-pdq", write_list(synth / "pdq.txt", listed, qualities), "--kind",
           "image-pdq"))
    want = expected(images, listed, 50)
    assert set(keys) <= set(want)
    r = found(cli("check", copy, "--blocklist", "partner-pdq", "--json"))
    report = json.loads(r.stdout)
    assert matched(report) == want
    assert report["affected"] == len(want) and report["image_matching"] == "pdq"
    assert report["pdq"]["hashed"] == len(images) and report["pdq"]["entries"] == 3
    text = found(cli("check", copy, "--blocklist", "partner-pdq"))
    mine = [hash_image(images[k]).hashes[0] for k in want]
    no_hash_in([r.stdout, r.stderr, text.stdout, text.stderr], listed + mine)
    out = synth / f"clean-{fmt}"
    before = snapshot(copy)
    c = ok(cli("clean", copy, "--out", out, "--blocklist", "partner-pdq", "--json"))
    assert snapshot(copy) == before
    assert json.loads(c.stdout)["removed_rows"] == len(want)
    no_hash_in([c.stdout, c.stderr], listed + mine)
    assert set(images_of(out)) == set(images) - set(want)
    again = json.loads(ok(cli("check", out, "--blocklist", "partner-pdq", "--json")).stdout)
    assert again["affected"] == 0 and again["pdq"]["hashed"] == len(images) - len(want)


@pytest.mark.parametrize("fmt", ["webdataset", "parquet", "files", "tfrecord"])
def test_genuine_img2dataset_copies_are_checked_and_cleaned(cli: Cli, tmp_path: Path, fmt: str) -> None:
    copy = GENUINE / fmt
    images = images_of(copy)
    rows = [r for p in sorted(copy.glob("*.parquet")) for r in pq.read_table(p).to_pylist()]
    successes = {normal_key(str(r["key"])) for r in rows if r["status"] == "success"}
    assert set(images) == successes
    picked = sorted(images)[:3]
    listed = [hash_image(images[k]).hashes[0] for k in picked]
    listed += [hash_image(jpeg(Image.open(io.BytesIO(images[k])).resize((64, 64), Image.LANCZOS))).hashes[0]
               for k in picked]
    ok(cli("blocklist", "add", "pdq", write_list(tmp_path / "l.txt", listed, [0] * len(listed)), "--kind",
           "image-pdq"))
    # the fixtures are 8x8 images of one colour: PDQ quality 0, so by default none is matched, all are listed
    report = json.loads(ok(cli("check", copy, "--blocklist", "pdq", "--json")).stdout)
    assert report["affected"] == 0
    assert report["pdq"]["low_quality"] == len(successes) == report["pdq"]["hashed"]
    assert {normal_key(k) for k in report["pdq"]["low_quality_keys"]} == successes
    assert report["pdq"]["missing"] == report["pdq"]["undecodable"] == 0
    # with the quality gate off, flat images match each other: what the gate is for
    want = expected(images, listed, 0)
    assert set(picked) <= set(want)
    r = found(cli("check", copy, "--blocklist", "pdq", "--min-quality", "0", "--json"))
    assert matched(json.loads(r.stdout)) == want
    out = tmp_path / "clean"
    ok(cli("clean", copy, "--out", out, "--blocklist", "pdq", "--min-quality", "0"))
    assert set(images_of(out)) == successes - set(want)
    again = json.loads(ok(cli("check", out, "--blocklist", "pdq", "--min-quality", "0", "--json")).stdout)
    assert again["affected"] == 0


def test_undecodable_and_missing_images_are_counted_by_key(cli: Cli, synth: Path) -> None:
    copy = synth / "copy"
    ok(cli("synth-copy", "v1", copy, "--shard-size", "100", "--failure-rate", "0"))
    tar = copy / "00000.tar"
    with tarfile.open(tar) as t:
        members = [(m, t.extractfile(m).read() if m.isfile() else b"") for m in t.getmembers()]  # type: ignore[union-attr]
    pngs = [m.name for m, _ in members if m.name.endswith(".png")]
    broken, gone = pngs[0], pngs[1]
    with tarfile.open(tar, "w", format=tarfile.PAX_FORMAT) as t:
        for m, data in members:
            if m.name == gone:
                continue
            if m.name == broken:
                data = b"not an image"
                m.size = len(data)
            t.addfile(m, io.BytesIO(data))
    ok(cli("blocklist", "add", "pdq", write_list(synth / "l.txt", [bytes(32)], [100]), "--kind", "image-pdq"))
    report = json.loads(ok(cli("check", copy, "--blocklist", "pdq", "--json")).stdout)
    p = report["pdq"]
    assert (p["undecodable"], p["missing"]) == (1, 1)
    assert p["undecodable_keys"] == [broken.split(".")[0]] and p["missing_keys"] == [gone.split(".")[0]]


def test_bad_pdq_lines_are_refused_with_their_line_numbers(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("ab" * 32 + "\n" + "ab" * 16 + "\n" + "ab" * 32 + ",200\n", encoding="utf-8")
    line = error_line(cli("blocklist", "add", "x", bad, "--kind", "image-pdq"))
    assert "line 2" in line and "md5" in line


def test_commands_without_the_pdq_extra_say_what_to_install(cli: Cli, synth: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    copy = synth / "copy"
    ok(cli("synth-copy", "v1", copy, "--shard-size", "100"))
    ok(cli("blocklist", "add", "pdq", write_list(synth / "l.txt", [bytes(32)], [100]), "--kind", "image-pdq"))
    monkeypatch.setitem(sys.modules, "pdqhash", None)  # import pdqhash -> ImportError
    for args in (("check", copy), ("clean", copy, "--out", synth / "out")):
        assert fails(cli(*args, "--blocklist", "pdq")) == (
            "Error: PDQ matching needs pdqhash and Pillow: pip install 'relake[pdq]'")


def test_only_image_pdq_lists_are_taken(cli: Cli, synth: Path) -> None:
    copy = synth / "copy"
    ok(cli("synth-copy", "v1", copy, "--shard-size", "100"))
    urls = synth / "u.txt"
    urls.write_text("https://a.example.com/x.jpg\n", encoding="utf-8")
    ok(cli("blocklist", "add", "urls", urls, "--kind", "url"))
    assert fails(cli("check", copy, "--blocklist", "urls")).startswith(
        "Error: --blocklist urls: a url list; check and clean compare a copy's images with image-pdq lists")


def test_processes_and_ray_give_the_same_report(cli: Cli, synth: Path) -> None:
    copy = synth / "copy"
    ok(cli("synth-copy", "v1", copy, "--shard-size", "60"))
    images = images_of(copy)
    picked = sorted(images)[::40]
    listed = [hash_image(images[k]).hashes[0] for k in picked]
    ok(cli("blocklist", "add", "pdq", write_list(synth / "l.txt", listed, [100] * len(listed)), "--kind",
           "image-pdq"))

    def run(*extra: str) -> dict[str, Any]:
        report = json.loads(found(cli("check", copy, "--blocklist", "pdq", "--json", *extra)).stdout)
        report.pop("seconds")
        return report

    here = run()
    assert set(matched(here)) >= set(picked)
    assert run("--workers", "2") == here  # two spawned processes
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'relake[ray]')")
    import ray

    try:
        assert run("--engine", "ray") == here
        out = synth / "out"
        ok(cli("clean", copy, "--out", out, "--blocklist", "pdq", "--engine", "ray"))
        assert set(images_of(out)) == set(images) - set(matched(here))
    finally:
        ray.shutdown()


BORDER = Path(__file__).parent / "data" / "img2dataset-border"


def test_a_genuine_img2dataset_border_copy_matches_its_originals(cli: Cli, tmp_path: Path) -> None:
    """img2dataset's default resizing pads to a square: only the trimmed hash finds the originals."""
    copy = BORDER / "webdataset"
    originals = {int(p.stem): p.read_bytes() for p in sorted((BORDER / "originals").glob("*.jpg"))}
    listed = [hash_image(data).hashes[0] for data in originals.values()]
    ok(cli("blocklist", "add", "pdq", write_list(tmp_path / "l.txt", listed, [100] * len(listed)), "--kind",
           "image-pdq"))
    rows = {normal_key(str(r["key"])): r["SAMPLE_ID"] - 2000
            for p in sorted(copy.glob("*.parquet")) for r in pq.read_table(p).to_pylist()}
    images = images_of(copy)
    untrimmed = {rows[k]: min(distance(hash_image(d).hashes[0], h) for h in listed) for k, d in images.items()}
    assert {i for i, d in untrimmed.items() if d <= 31} == {6}  # a naive check finds only the square one
    report = json.loads(found(cli("check", copy, "--blocklist", "pdq", "--json")).stdout)
    got = {rows[k]: d for k, d in matched(report).items()}
    assert got == {rows[k]: d for k, d in expected(images, listed, 50).items()}
    assert {0, 2, 3, 4, 6} <= set(got)  # measured: 10, 2, 0, 0, 0 bits; 01 at 30; 05 (tiny, upscaled) at 42
    assert all(m["trimmed"] for m in report["pdq"]["matches"] if rows[normal_key(m["key"])] != 6)
    out = tmp_path / "clean"
    ok(cli("clean", copy, "--out", out, "--blocklist", "pdq"))
    assert {rows[k] for k in images_of(out)} == set(originals) - set(got)


def test_an_interrupted_clean_does_not_hash_the_images_again(cli: Cli, synth: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from relake.copies import perceptual
    from relake.copies.clean import prepare_clean, run_clean
    from relake.lake import Lake

    copy = synth / "copy"
    ok(cli("synth-copy", "v1", copy, "--shard-size", "100"))
    images = images_of(copy)
    listed = [hash_image(images[k]).hashes[0] for k in sorted(images)[:2]]
    ok(cli("blocklist", "add", "pdq", write_list(synth / "l.txt", listed, [100, 100]), "--kind", "image-pdq"))
    lake, out = Lake.at(synth / "lake"), synth / "out"
    first = prepare_clean(lake, copy, None, out, blocklist="pdq")  # a clean interrupted after its check
    assert sorted(p.name for p in (out / ".relake-pdq").iterdir()) == ["00000.json", "00001.json", "00002.json"]

    def no_hashing(job: object) -> None:
        raise AssertionError("hashed again")

    monkeypatch.setattr(perceptual, "_check_shard", no_hashing)
    plan = prepare_clean(lake, copy, None, out, blocklist="pdq")
    assert plan.plan_id == first.plan_id
    report = run_clean(plan)
    assert report.removed_rows == len(expected(images, listed, 50))
    assert not (out / ".relake-pdq").exists()
    monkeypatch.undo()
    assert json.loads(ok(cli("check", out, "--blocklist", "pdq", "--json")).stdout)["affected"] == 0
    dry = json.loads(ok(cli("clean", copy, "--out", synth / "dry", "--blocklist", "pdq", "--dry-run",
                            "--json")).stdout)
    assert dry["removed_rows"] == report.removed_rows and not (synth / "dry").exists()


def test_a_damaged_tar_is_one_error_line(cli: Cli, synth: Path) -> None:
    copy = synth / "copy"
    ok(cli("synth-copy", "v1", copy, "--shard-size", "100"))
    ok(cli("blocklist", "add", "pdq", write_list(synth / "l.txt", [bytes(32)], [100]), "--kind", "image-pdq"))
    tar = copy / "00001.tar"
    data = bytearray(tar.read_bytes())
    data[600:700] = b"\xff" * 100  # inside the first member's data: headers stay valid for the orphan listing
    data[2048 + 148:2048 + 156] = b"garbage!"  # a later header's checksum field
    tar.write_bytes(bytes(data))
    line = fails(cli("check", copy, "--blocklist", "pdq"))
    assert line.startswith("Error: ") and "00001.tar" in line
