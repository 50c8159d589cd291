"""build with an image-pdq rule: a side table of the base's PDQ hashes matched within 31 bits (relake.hamming),
like image-md5 rules match a side table of MD5s; the list's hashes never reach the removed rows' record."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from helpers import Cli, ok, write_table
from relake.lake import Lake


def _flip(h: bytes, bits: list[int]) -> bytes:
    arr = np.unpackbits(np.frombuffer(h, np.uint8))
    arr[bits] ^= 1
    return np.packbits(arr).tobytes()


def test_an_image_pdq_rule_matches_the_side_tables_hashes_within_31_bits(cli: Cli, src: list[Path],
                                                                         tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    ids = list(range(0, 300, 2))  # the side table covers every other row
    hashes = {i: rng.integers(0, 256, 32, dtype=np.uint8).tobytes() for i in ids}
    side = write_table(pa.table({"SAMPLE_ID": pa.array(ids, pa.int64()),
                                 "pdq": pa.array([hashes[i].hex() for i in ids], pa.string())}),
                       tmp_path / "side" / "pdq.parquet")
    near = {10: 31, 20: 0, 30: 12}  # rows listed by a hash this many bits away
    far = {40: 32, 50: 60}  # too far: not matched
    listing = [_flip(hashes[i], list(range(d))).hex() for i, d in {**near, **far}.items()]
    listing[0] = listing[0].upper() + ",87"  # a quality, and upper case: normalised on import
    bl = tmp_path / "pdq.txt"
    bl.write_text("\n".join(listing) + "\n", encoding="utf-8")
    ok(cli("ingest", "v1", src[0].parent))
    ok(cli("blocklist", "add", "partner-pdq", bl, "--kind", "image-pdq"))
    spec = tmp_path / "v2.toml"
    spec.write_text(f'name = "v2"\nbase = "v1"\n[[rule]]\nid = "pdq"\nblocklist = "partner-pdq"\n'
                    f"side = '{side.parent}'\nside_key = \"SAMPLE_ID\"\ncategory = \"csam\"\nsensitive = true\n",
                    encoding="utf-8")
    ok(cli("build", "v2", "--spec", spec))
    vdir = Lake.at(tmp_path / "lake").version_dir("v2")
    removed = pq.read_table(vdir / "removed.parquet").to_pylist()
    assert sorted(int(r["key"]) for r in removed) == sorted(near)
    assert {h for r in removed for h in r["hows"]} == {"image-pdq:side"}
    record = (vdir / "removed.parquet").read_bytes() + (vdir / "version.json").read_bytes()
    for h in listing:  # no listed hash (nor the base's near ones) is written anywhere in the version
        assert h.split(",")[0].lower().encode() not in record.lower()
    for i in near:
        assert hashes[i].hex().encode() not in record
    stats = json.loads((vdir / "version.json").read_text())["stats"]
    assert stats["removed_by_rule"] == {"pdq": 3}
    assert stats["unmatched_entries"] == {"pdq": 2}
