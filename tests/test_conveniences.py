"""First-hour conveniences of issue 18: canon, batch lookup, and the small things seen on real data."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from helpers import Cli, fails, found, ok
from relake.canonical import canonical_url, url_sha256
from relake.cli import app
from relake.fingerprint import ALGORITHM
from relake.report import a_or_an, plural


def test_plural_says_one_once() -> None:
    assert [plural(1, "shard"), plural(2, "shard"), plural(0, "entry"), plural(1, "entry"), plural(1_000, "key"),
            plural(2, "hash"), plural(2, "day")] == ["1 shard", "2 shards", "0 entries", "1 entry", "1,000 keys",
                                                     "2 hashes", "2 days"]
    assert [a_or_an("id"), a_or_an("url"), a_or_an("image-md5"), a_or_an("key")] == ["an id", "a url",
                                                                                      "an image-md5", "a key"]


def test_canon_prints_the_canonical_url_and_its_sha256(cli: Cli) -> None:
    urls = ["HTTP://Example.COM:80/a b#frag", "https://xn--bcher-kva.example/%7e?q=%41", ""]
    data = json.loads(ok(cli("canon", *urls, "--json")).stdout)
    assert data == [{"url": u, "canonical": canonical_url(u), "url_sha256": url_sha256(u)} for u in urls]
    assert data[0]["canonical"] == "http://example.com/a%20b"
    assert data[0]["url_sha256"] == hashlib.sha256(b"http://example.com/a%20b").hexdigest()
    assert data[2] == {"url": "", "canonical": None, "url_sha256": None}
    screen = ok(cli("canon", urls[0])).stdout
    assert screen.split() == [hashlib.sha256(b"http://example.com/a%20b").hexdigest(), "http://example.com/a%20b"]


def test_canon_and_lookup_read_a_file_or_stdin(cli: Cli, tmp_path: Path, src: list[Path]) -> None:
    batch = tmp_path / "urls.txt"
    batch.write_text("http://a.example/1\r\n\nhttp://b.example/2\n", encoding="utf-8")
    from_file = json.loads(ok(cli("canon", "--file", batch, "--json")).stdout)
    assert [u["url"] for u in from_file] == ["http://a.example/1", "http://b.example/2"]
    piped = CliRunner().invoke(app, ["canon", "http://c.example/0", "--file", "-", "--json"],
                               input="http://a.example/1\nhttp://b.example/2\n")
    assert [u["url"] for u in json.loads(ok(piped).stdout)] == ["http://c.example/0", *[u["url"] for u in from_file]]
    assert fails(cli("canon", "--file", tmp_path / "nope.txt")).endswith("nope.txt: no such file")
    assert CliRunner().invoke(app, ["canon"]).exit_code == 2  # nothing to canonicalise: usage

    ok(cli("ingest", "orig", *src))
    ok(cli("build", "v1", "--base", "orig", "--where", "SAMPLE_ID = 5"))
    ok(cli("manifest", "orig", "v1", "--out", tmp_path / "m", "--min-crowd", "1"))
    removed = pq.read_table(src[0]).to_pylist()[5]["URL"]
    batch.write_text(f"http://kept.example/x\n{removed}\n", encoding="utf-8")
    listed = json.loads(found(cli("lookup", "--manifest", tmp_path / "m", "--file", batch, "--json")).stdout)
    assert [u["listed"] for u in listed] == [False, True]
    piped = CliRunner().invoke(app, ["lookup", "--manifest", str(tmp_path / "m"), "--file", "-"],
                               input=batch.read_text(encoding="utf-8"))
    assert found(piped).stdout.splitlines()[1].startswith("LISTED")


def test_lookup_of_an_empty_url_has_no_hash(cli: Cli, tmp_path: Path, src: list[Path]) -> None:
    ok(cli("ingest", "orig", *src))
    ok(cli("build", "v1", "--base", "orig", "--where", "SAMPLE_ID = 5"))
    ok(cli("manifest", "orig", "v1", "--out", tmp_path / "m", "--min-crowd", "1"))
    [entry] = json.loads(ok(cli("lookup", "", "--manifest", tmp_path / "m", "--json")).stdout)
    assert entry["url_sha256"] is None and entry["listed"] is False
    assert ok(cli("lookup", "", "--manifest", tmp_path / "m")).stdout.startswith("no URL")


def test_versions_draws_siblings_as_a_tree(cli: Cli, src: list[Path]) -> None:
    ok(cli("ingest", "orig", *src))
    for name, base in (("a", "orig"), ("a1", "a"), ("a2", "a"), ("b", "orig")):
        ok(cli("build", name, "--base", base, "--where", f"SAMPLE_ID = {len(name) + ord(name[-1])}"))
    lines = ok(cli("versions")).stdout.splitlines()[3:]
    names = [re.split(r"\s+│\s+(?:original|derived)", line)[0] for line in lines]
    assert names == [" orig", " ├─ a", " │  ├─ a1", " │  └─ a2", " └─ b"]


def test_show_names_a_missing_role_and_build_says_an_id(cli: Cli, tmp_path: Path) -> None:
    table = pa.table({"url": ["http://a.example/1", "http://a.example/2"], "caption": ["x", None]})
    pq.write_table(table, tmp_path / "noid.parquet")
    ok(cli("ingest", "noid", tmp_path / "noid.parquet"))
    assert re.search(r"roles +url=url caption=caption no id\b", ok(cli("show", "noid")).stdout)
    (tmp_path / "keys.txt").write_text("1\n", encoding="utf-8")
    ok(cli("blocklist", "add", "keys", tmp_path / "keys.txt", "--kind", "key"))
    said = fails(cli("build", "v1", "--base", "noid", "--blocklist", "keys"))
    assert "a key blocklist needs an id column" in said


def test_fingerprint_recipe_says_what_is_hashed(cli: Cli, tmp_path: Path) -> None:
    """Following the recipe in version.json by hand (with the column names it now names) gives the value."""
    rows = [{"n": 1, "s": "a"}, {"n": 2, "s": None}, {"n": 3, "s": "c"}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "t.parquet")
    ok(cli("ingest", "t", tmp_path / "t.parquet"))
    record = json.loads(next((tmp_path / "lake").rglob("version.json")).read_text(encoding="utf-8"))
    assert record["fingerprint"]["algorithm"] == ALGORITHM
    assert "json_array(column names)" in ALGORITHM and "U+001F" in ALGORITHM
    names = "\x1f" + json.dumps(["n", "s"], separators=(",", ":"))
    digests = [hashlib.md5((json.dumps(list(r.values()), separators=(",", ":")) + names).encode(),
                           usedforsecurity=False).digest() for r in rows]
    total = sum(int.from_bytes(d, "little") for d in digests) % (1 << 128)
    assert record["fingerprint"]["value"] == f"{total:032x}"


def test_an_old_records_recipe_text_is_the_same_algorithm(cli: Cli, tmp_path: Path, src: list[Path]) -> None:
    """Lakes written before the recipe named the column names keep working: same values, same algorithm."""
    ok(cli("ingest", "orig", *src))
    record = tmp_path / "lake" / "versions" / "orig" / "version.json"
    old = "relake-fp/2: sum mod 2^128 of md5(json_array(row values)) as little-endian int; 256 buckets by digest[0]"
    record.write_text(record.read_text(encoding="utf-8").replace(ALGORITHM, old), encoding="utf-8")
    # materialised: a diff of a vector version against its ancestor reads the vectors, not the buckets
    ok(cli("build", "v1", "--base", "orig", "--where", "SAMPLE_ID = 5", "--materialize"))
    data = json.loads(found(cli("diff", "orig", "v1", "--json")).stdout)
    assert data["rows"]["removed"] == 1 and data["buckets"]["equal"] > 0  # the bucket shortcut trusts the old text


@pytest.mark.parametrize("n", [1, 2])
def test_synth_says_1_shard(cli: Cli, tmp_path: Path, n: int) -> None:
    r = ok(cli("synth", tmp_path / "s", "--rows", "10", "--shards", str(n)))
    assert f"in {plural(n, 'shard')} in" in r.stderr
