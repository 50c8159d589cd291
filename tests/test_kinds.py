"""kinds.py: the registries of hash algorithms and blocklist kinds. A kind added through the registry (one entry and
one match query) is imported by `relake blocklist add`, listed by its --help and matched by `relake build`."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from helpers import Cli, error_line, version_shard_tables, write_split
from relake.cli import app
from relake.kinds import (
    BLOCKLIST_KINDS,
    HASH_ALGORITHMS,
    KINDS,
    MATCH_PARAMS,
    BlocklistKind,
    HexDigest,
    MalformedEntry,
    register_kind,
    unregister_kind,
)
from relake.sql import all_queries, parse_query

DUMMY = "caption-sha256"
DUMMY_QUERY = "build/match_caption_sha256"
DUMMY_SQL = """\
-- Returns: nothing; inserts rows whose caption's sha256 (hex of its UTF-8 bytes) is in the blocklist.
-- Reads: views rows(file, pos, url, caption, id) and bl(entry).
-- params: $rule, $how
INSERT INTO matches
SELECT r.file, r.pos, $rule, $how, bl.entry
FROM rows AS r
JOIN bl ON sha256(r.caption) = bl.entry
"""


@pytest.fixture
def caption_kind(monkeypatch: pytest.MonkeyPatch) -> Iterator[BlocklistKind]:
    """The dummy kind: one registry entry plus one match query (parsed and checked like a file of queries/)."""
    monkeypatch.setitem(all_queries(), DUMMY_QUERY, parse_query(DUMMY_QUERY, DUMMY_SQL))
    sha256 = HASH_ALGORITHMS["sha256"]
    kind = register_kind(BlocklistKind(DUMMY, "sha256 of captions", HexDigest(sha256), "caption", DUMMY_QUERY, sha256))
    yield kind
    unregister_kind(DUMMY)
    assert tuple(BLOCKLIST_KINDS) == KINDS


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def caption(i: int) -> str | None:
    if i % 7 == 0:
        return None
    return "" if i == 3 else f"caption {i % 40} é"  # repeated captions, spread over the shards


def test_a_kind_added_through_the_registry_is_imported_and_built(
    caption_kind: BlocklistKind, cli: Cli, tmp_path: Path
) -> None:
    rows = [{"SAMPLE_ID": i, "URL": f"https://x.example.com/{i}.jpg", "TEXT": caption(i)} for i in range(300)]
    write_split(pa.Table.from_pylist(rows), tmp_path / "src", 3)
    assert cli("ingest", "v1", tmp_path / "src").exit_code == 0
    blocked = ["caption 5 é", "caption 17 é", "", "a caption no row has"]
    entries = [sha256_hex(blocked[0]).upper(), sha256_hex(blocked[1]), f"  {sha256_hex(blocked[2])}",
               sha256_hex(blocked[3])]
    listing = tmp_path / "captions.txt"

    listing.write_text("\n".join([*entries, "0123abcd"]) + "\n", encoding="utf-8")  # the kind's normaliser applies
    assert error_line(cli("blocklist", "add", "caps", listing, "--kind", DUMMY)) == (
        f"Error: {listing}: 1 malformed line: line 5: 8 hex digits, expected 64 for sha256; "
        "use --skip-invalid to skip them")

    listing.write_text("\n".join(entries) + "\n", encoding="utf-8")
    added = cli("blocklist", "add", "caps", listing, "--kind", DUMMY, "--json")
    assert added.exit_code == 0, added.stderr
    assert json.loads(added.stdout)["kind"] == DUMMY
    assert json.loads(added.stdout)["unique_entries"] == 4
    built = cli("build", "v2", "--base", "v1", "--blocklist", "caps", "--json")
    assert built.exit_code == 0, built.stderr

    digests = {sha256_hex(b) for b in blocked}
    expected = {r["SAMPLE_ID"] for r in rows if r["TEXT"] is not None and sha256_hex(r["TEXT"]) in digests}
    assert 3 in expected and len(expected) == 15  # the empty caption, and 14 rows captioned "caption 5/17 é"
    assert json.loads(built.stdout)["removed"] == len(expected)
    kept = {i for t in version_shard_tables(tmp_path / "lake" / "versions" / "v2")
            for i in t.column("SAMPLE_ID").to_pylist()}
    assert kept == set(range(300)) - expected


def test_blocklist_add_help_lists_every_registered_kind(caption_kind: BlocklistKind) -> None:
    result = CliRunner().invoke(app, ["blocklist", "add", "--help"])
    assert result.exit_code == 0
    text = re.sub(r"-\s+", "-", " ".join(result.stdout.split()))  # help wraps lines, also after a hyphen
    assert set(BLOCKLIST_KINDS) == {*KINDS, DUMMY}
    for kind in BLOCKLIST_KINDS.values():
        assert f"{kind.name} ({kind.help})" in text


def test_an_unknown_kind_names_the_registered_ones(caption_kind: BlocklistKind, cli: Cli, tmp_path: Path) -> None:
    listing = tmp_path / "x.txt"
    listing.write_text("a\n", encoding="utf-8")
    assert error_line(cli("blocklist", "add", "x", listing, "--kind", "md5")) == (
        f"Error: unknown blocklist kind 'md5'; valid kinds: {', '.join(KINDS)}, {DUMMY}")


@pytest.mark.parametrize("name", list(KINDS))
def test_every_kind_has_a_match_query_binding_what_build_gives(name: str) -> None:
    kind = BLOCKLIST_KINDS[name]
    match = all_queries()[kind.match]
    assert "rule" in match.params
    assert match.params <= MATCH_PARAMS
    assert kind.help.strip()
    if "algo" in match.params:
        assert kind.algorithm is not None


@pytest.mark.parametrize("name", sorted(HASH_ALGORITHMS))
def test_hash_algorithms_agree_with_hashlib(name: str) -> None:
    algo = HASH_ALGORITHMS[name]
    assert algo.hexdigest(b"relake") == hashlib.new(name, b"relake").hexdigest()
    assert len(hashlib.new(name).hexdigest()) == algo.hex_length
    assert HexDigest(algo)("AB" * (algo.hex_length // 2)) == "ab" * (algo.hex_length // 2)
    with pytest.raises(MalformedEntry, match=f"expected {algo.hex_length} for {name}"):
        HexDigest(algo)("ab")


def test_the_registry_refuses_clashes_and_keeps_the_built_in_kinds() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_kind(BLOCKLIST_KINDS["url"])
    with pytest.raises(ValueError, match="built in"):
        unregister_kind("url")
    with pytest.raises(ValueError, match="need an algorithm"):
        BlocklistKind("image-x", "x", str.lower, "image", "build/match_image")
    assert tuple(BLOCKLIST_KINDS) == KINDS
