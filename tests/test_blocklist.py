"""Blocklist import: formats, normalisation, strictness, content hash, create-only storage."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from urllib.parse import quote, unquote

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import relake.blocklist as bl
from helpers import version_shard_tables
from relake.blocklist import Blocklist, add_blocklist, list_blocklists, load_blocklist
from relake.build import build_version, rules_from_flags
from relake.errors import BlocklistError, InputError, InvalidNameError, NotFoundError
from relake.ingest import ingest_version
from relake.kinds import KINDS
from relake.lake import Lake
from relake.spec import Spec

MD5_A = "0cc175b9c0f1b6a831c399e269772661"  # md5("a")
MD5_B = "92eb5ffee6ae2fec3ad71c777531578f"  # md5("b")
MD5_C = "4a8a08f09d37b73795649038408b5f33"  # md5("c")
MD5_E = "d41d8cd98f00b204e9800998ecf8427e"  # md5("")
SHA1_E = "da39a3ee5e6b4b0d3255bfef95601890afd80709"  # sha1("")
SHA256_E = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  # sha256("")


def entries(b: Blocklist) -> list[str]:
    return pq.read_table(b.path).column("entry").to_pylist()


def content_hash(kind: str, hash_of: str, sorted_entries: list[str]) -> str:
    """The documented definition, spelled out independently of the module."""
    text = f"relake.blocklist/1\nkind={kind}\nhash_of={hash_of}\n" + "".join(e + "\n" for e in sorted_entries)
    return hashlib.sha256(text.encode()).hexdigest()


def snapshot(root: Path) -> dict[str, tuple[int, str] | None]:
    out: dict[str, tuple[int, str] | None] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        out[rel] = (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest()) if p.is_file() else None
    return out


def write(path: Path, data: str | bytes) -> Path:
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return path


# ----------------------------------------------------------------------------------------------- formats


def test_text_with_bom_crlf_comments_blanks_spaces_and_upper_case(lake: Lake, tmp_path: Path) -> None:
    f = write(
        tmp_path / "list.txt",
        b"\xef\xbb\xbf# partner list\r\n\r\n  0CC175B9C0F1B6A831C399E269772661  \r\n"
        b"   # indented comment\r\n\t92eb5ffee6ae2fec3ad71c777531578f\r\n\r\n"
        b"0cc175b9c0f1b6a831c399e269772661\r\n" + MD5_C.encode(),  # no final newline
    )
    b = add_blocklist(lake, "partner", f, "image-md5")
    assert entries(b) == [MD5_A, MD5_C, MD5_B]
    assert (b.raw_entries, b.unique_entries, b.skipped, b.empty, b.duplicates) == (4, 3, 0, 0, 1)
    assert (b.name, b.kind, b.hash_of, b.source) == ("partner", "image-md5", None, "list.txt")
    assert b.path == lake.root / "blocklists" / "partner" / "entries.parquet"
    assert b.sha256 == content_hash("image-md5", "", [MD5_A, MD5_C, MD5_B])
    schema = pq.read_schema(b.path)
    assert schema.names == ["entry"] and schema.field("entry").type == pa.string()
    assert not schema.field("entry").nullable
    assert sorted(p.name for p in b.path.parent.iterdir()) == ["blocklist.json", "entries.parquet"]


def test_headerless_csv_keeps_its_first_entry(lake: Lake, tmp_path: Path) -> None:
    f = write(tmp_path / "five.csv", f"{MD5_A}\n{MD5_B}\n{MD5_C}\n{MD5_E}\n{'f' * 32}\n")
    b = add_blocklist(lake, "five", f, "image-md5")
    assert b.unique_entries == 5 and b.raw_entries == 5
    assert entries(b) == [MD5_A, MD5_C, MD5_B, MD5_E, "f" * 32]


def test_single_column_csv_header_is_skipped_only_when_not_an_entry(lake: Lake, tmp_path: Path) -> None:
    f = write(tmp_path / "h.csv", f"md5\r\n{MD5_B}\r\n{MD5_A}\r\n")
    assert entries(add_blocklist(lake, "h", f, "image-md5")) == [MD5_A, MD5_B]
    # a malformed first entry is reported, not taken for a header
    g = write(tmp_path / "g.csv", f"{MD5_A[:31]}\n{MD5_B}\n")
    with pytest.raises(BlocklistError, match=r"1 malformed line: line 1: 31 hex digits, expected 32 for md5;"):
        add_blocklist(lake, "g", g, "image-md5")


def test_csv_with_header_and_column(lake: Lake, tmp_path: Path) -> None:
    f = write(
        tmp_path / "partner.csv",
        f'id,sha1,note\n1,DA39A3EE5E6B4B0D3255BFEF95601890AFD80709,"x, y"\n2,,empty\n3,{SHA1_E},dup\n\n4,{"1" * 40},\n',
    )
    b = add_blocklist(lake, "p", f, "image-sha1", column="sha1")
    assert entries(b) == ["1" * 40, SHA1_E]
    assert (b.raw_entries, b.unique_entries, b.empty, b.skipped) == (3, 2, 1, 0)


def test_tsv_column(lake: Lake, tmp_path: Path) -> None:
    f = write(tmp_path / "d.tsv", "host\tcount\nExample.COM.\t3\n*.example.org\t1\n")
    b = add_blocklist(lake, "d", f, "domain", column="host")
    assert entries(b) == ["example.com", "example.org"]


def test_csv_row_with_wrong_field_count_is_malformed(lake: Lake, tmp_path: Path) -> None:
    f = write(tmp_path / "w.csv", f"id,md5\n1,{MD5_A}\n2,{MD5_B},extra\n")
    with pytest.raises(BlocklistError, match=r"line 3: has 3 fields, expected 2;"):
        add_blocklist(lake, "w", f, "image-md5", column="md5")


def test_parquet_with_nulls_and_empty_values(lake: Lake, tmp_path: Path) -> None:
    f = tmp_path / "l.parquet"
    pq.write_table(pa.table({"url": ["https://a.example/x", None, "  ", "https://b.example/y ", None]}), f)
    b = add_blocklist(lake, "l", f, "url")
    assert entries(b) == ["https://a.example/x", "https://b.example/y"]
    assert (b.raw_entries, b.unique_entries, b.empty, b.skipped) == (2, 2, 3, 0)


def test_parquet_column_choice_raw_digests_and_row_numbers(lake: Lake, tmp_path: Path) -> None:
    f = tmp_path / "two.parquet"
    pq.write_table(pa.table({"k": [1, 2], "md5": [MD5_A.upper(), "zz"]}), f)
    with pytest.raises(
        InputError, match=r"has 2 columns; name the one to import with --column \(columns: 'k', 'md5'\)"
    ):
        add_blocklist(lake, "two", f, "image-md5")
    with pytest.raises(InputError, match=r"no column 'sha' \(columns: 'k', 'md5'\)"):
        add_blocklist(lake, "two", f, "image-md5", column="sha")
    with pytest.raises(BlocklistError, match=r"1 malformed row: row 2: not hexadecimal;"):
        add_blocklist(lake, "two", f, "image-md5", column="md5")
    assert entries(add_blocklist(lake, "keys", f, "key", column="k")) == ["1", "2"]
    g = tmp_path / "raw.parquet"
    pq.write_table(pa.table({"digest": pa.array([bytes.fromhex(MD5_B), bytes.fromhex(MD5_A)], pa.binary(16))}), g)
    assert entries(add_blocklist(lake, "raw", g, "image-md5")) == [MD5_A, MD5_B]


def test_chunk_boundaries_do_not_change_the_result(lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hashes = [f"{i:064x}" for i in range(11, 0, -1)]
    f = write(tmp_path / "s.txt", "# c\n" + "\n".join(h.upper() for h in hashes) + "\nnot-a-hash\n" + hashes[3])
    whole = add_blocklist(lake, "whole", f, "image-sha256", skip_invalid=True)
    monkeypatch.setattr(bl, "ROW_GROUP", 3)
    monkeypatch.setattr(bl, "BATCH", 2)
    monkeypatch.setattr(bl, "READ_BYTES", 100)
    small = add_blocklist(lake, "small", f, "image-sha256", skip_invalid=True)
    assert entries(small) == entries(whole) == sorted(hashes)
    assert small.sha256 == whole.sha256 == content_hash("image-sha256", "", sorted(hashes))
    assert (small.raw_entries, small.skipped) == (whole.raw_entries, whole.skipped) == (13, 1)
    meta = pq.ParquetFile(small.path).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [3, 3, 3, 2]
    with pytest.raises(BlocklistError, match=r"1 malformed line: line 13: not hexadecimal;"):
        add_blocklist(lake, "strict", f, "image-sha256")


# ----------------------------------------------------------------------------------------------- strictness


def test_short_hash_fails_naming_file_count_and_first_five_lines(lake: Lake, tmp_path: Path) -> None:
    short = "a" * 63
    lines = [SHA256_E, short, SHA256_E, short, short, "", short, short, short]
    f = write(tmp_path / "bad.txt", "\n".join(lines) + "\n")
    with pytest.raises(BlocklistError) as err:
        add_blocklist(lake, "bad", f, "image-sha256")
    assert str(err.value) == (
        f"{f}: 6 malformed lines, first: line 2: 63 hex digits, expected 64 for sha256; "
        "line 4: 63 hex digits, expected 64 for sha256; line 5: 63 hex digits, expected 64 for sha256; "
        "line 7: 63 hex digits, expected 64 for sha256; line 8: 63 hex digits, expected 64 for sha256; "
        "use --skip-invalid to skip them"
    )
    assert not (lake.root / "blocklists").exists()


def test_non_hex_quoted_and_wrong_kind_hashes(lake: Lake, tmp_path: Path) -> None:
    f = write(
        tmp_path / "m.txt",
        f'{MD5_A}\n{"g" * 32}\n"{MD5_B}"\n{SHA256_E}\nhttps://evil.example/x.jpg\n{SHA1_E}\n',
    )
    with pytest.raises(BlocklistError) as err:
        add_blocklist(lake, "m", f, "image-md5")
    assert str(err.value) == (
        f"{f}: 5 malformed lines: line 2: not hexadecimal; line 3: enclosed in quotes; "
        "line 4: 64 hex digits: looks like a sha256 hash, not md5 (wrong kind); "
        "line 5: looks like a URL, not a hash (wrong kind); "
        "line 6: 40 hex digits: looks like a sha1 hash, not md5 (wrong kind); use --skip-invalid to skip them"
    )


def test_invalid_utf8_line_is_malformed(lake: Lake, tmp_path: Path) -> None:
    f = write(tmp_path / "u.txt", MD5_A.encode() + b"\n\xff\xfe\n" + MD5_B.encode() + b"\n")
    with pytest.raises(BlocklistError, match=r"1 malformed line: line 2: not valid UTF-8;"):
        add_blocklist(lake, "u", f, "image-md5")


def test_domains_normalised_and_urls_refused_without_echoing_them(lake: Lake, tmp_path: Path) -> None:
    f = write(
        tmp_path / "d.txt",
        "Example.COM.\n*.Sub.Example.org\nBÜCHER.example\nhttps://evil.example/a\nevil.example:8080\n"
        "bad_label.example\nlocalhost\n" + "a" * 64 + ".example\n",
    )
    with pytest.raises(BlocklistError) as err:
        add_blocklist(lake, "d", f, "domain")
    message = str(err.value)
    assert message == (
        f"{f}: 5 malformed lines: line 4: looks like a URL, not a domain (wrong kind; use --kind url); "
        "line 5: looks like a URL, not a domain (wrong kind; use --kind url); "
        "line 6: not a hostname (labels of 1-63 letters, digits or '-', separated by '.'); "
        "line 7: a single label, not a domain name; "
        "line 8: not a hostname (labels of 1-63 letters, digits or '-', separated by '.'); "
        "use --skip-invalid to skip them"
    )
    assert "evil" not in message and "localhost" not in message
    b = add_blocklist(lake, "d", f, "domain", skip_invalid=True)
    assert entries(b) == ["example.com", "sub.example.org", "xn--bcher-kva.example"]
    assert (b.raw_entries, b.unique_entries, b.skipped) == (8, 3, 5)


def test_urls_kept_as_given_but_whitespace_and_hashes_refused(lake: Lake, tmp_path: Path) -> None:
    f = write(
        tmp_path / "u.txt",
        f"  HTTP://Evil.Example/A?b=1#f  \nhttp://evil.example/a b\nhttp://evil.example/\x07\n{SHA256_E}\nurl\n"
        "http://evil.example/a\tb\n",
    )
    with pytest.raises(BlocklistError) as err:
        add_blocklist(lake, "u", f, "url")
    assert str(err.value) == (
        f"{f}: 4 malformed lines: line 3: contains control characters; "
        "line 4: looks like a sha256 hash, not a URL (wrong kind; use --kind url-sha256); "
        "line 5: does not look like a URL (no '.' or '/'); line 6: contains control characters; "
        "use --skip-invalid to skip them"
    )
    assert "evil" not in str(err.value)
    b = add_blocklist(lake, "u", f, "url", skip_invalid=True)
    # real URLs carry raw inner spaces (LAION does): kept as given, canonicalised at match time
    assert entries(b) == sorted(["HTTP://Evil.Example/A?b=1#f", "http://evil.example/a b"])
    assert b.hash_of is None


def test_skip_invalid_and_duplicate_counts(lake: Lake, tmp_path: Path) -> None:
    f = write(tmp_path / "k.csv", f"md5\n{MD5_A}\n{MD5_A.upper()}\nnope\n\n{MD5_B}\n{MD5_A}\n{'0' * 31}\n")
    b = add_blocklist(lake, "k", f, "image-md5", skip_invalid=True)
    assert entries(b) == [MD5_A, MD5_B]
    assert (b.raw_entries, b.unique_entries, b.skipped, b.empty, b.duplicates) == (6, 2, 2, 0, 2)


def test_all_invalid_with_skip_is_an_error(lake: Lake, tmp_path: Path) -> None:
    f = write(tmp_path / "x.txt", "nope\n# only junk\n")
    with pytest.raises(BlocklistError, match=r"x.txt: no entries to import \(values read: 1, malformed: 1, empty: 0\)"):
        add_blocklist(lake, "x", f, "image-md5", skip_invalid=True)
    assert not (lake.root / "blocklists").exists()


# ----------------------------------------------------------------------------------------------- content hash


def test_content_hash_ignores_order_format_and_duplicates(lake: Lake, tmp_path: Path) -> None:
    t = write(tmp_path / "a.txt", f"{MD5_C}\n{MD5_A}\n{MD5_B}\n")
    c = write(tmp_path / "b.csv", f"id,hash\n1,{MD5_B.upper()}\n2,{MD5_A}\n3,{MD5_C}\n4,{MD5_A}\n")
    one = add_blocklist(lake, "one", t, "image-md5")
    two = add_blocklist(lake, "two", c, "image-md5", column="hash")
    assert one.sha256 == two.sha256 == content_hash("image-md5", "", [MD5_A, MD5_C, MD5_B])
    other = add_blocklist(lake, "other", write(tmp_path / "c.txt", f"{MD5_A}\n{MD5_B}\n"), "image-md5")
    assert other.sha256 != one.sha256
    # the kind and hash_of are part of the content
    as_urls = add_blocklist(lake, "urls", t, "url-md5")
    as_raw = add_blocklist(lake, "raw", t, "url-md5", hash_of="raw")
    assert (as_urls.hash_of, as_raw.hash_of) == ("canonical", "raw")
    assert as_urls.sha256 == content_hash("url-md5", "canonical", [MD5_A, MD5_C, MD5_B])
    assert len({one.sha256, as_urls.sha256, as_raw.sha256}) == 3


# ----------------------------------------------------------------------------------------------- storage


def test_adding_a_name_again_makes_its_next_revision(lake: Lake, tmp_path: Path) -> None:
    """Monthly partner lists: `add NAME` again is revision 2, in its own folder; revision 1 is left byte for byte."""
    one = add_blocklist(lake, "partner", write(tmp_path / "a.txt", MD5_A + "\n"), "image-md5")
    before = snapshot(lake.blocklists_dir / "partner")
    two = add_blocklist(lake, "partner", write(tmp_path / "b.txt", MD5_B + "\n"), "image-md5")
    assert (one.revision, two.revision, two.ref, two.added) == (1, 2, "partner@2", True)
    assert snapshot(lake.blocklists_dir / "partner") == before
    assert entries(load_blocklist(lake, "partner")) == [MD5_B]  # the name alone: the latest revision
    assert entries(load_blocklist(lake, "partner@1")) == [MD5_A]
    assert [b.revision for b in list_blocklists(lake).blocklists] == [2]
    same = add_blocklist(lake, "partner", write(tmp_path / "c.txt", MD5_B + "\n" + MD5_B + "\n"), "image-md5")
    assert (same.revision, same.added) == (2, False)  # the same entries: no new revision
    with pytest.raises(BlocklistError, match=r"^blocklist 'partner' is a image-md5 list; a new revision keeps"):
        add_blocklist(lake, "partner", write(tmp_path / "d.txt", "example.com\n"), "domain")
    with pytest.raises(NotFoundError, match=r"^blocklist 'partner' has no revision 3 \(revisions: 1, 2\)$"):
        load_blocklist(lake, "partner@3")
    with pytest.raises(InvalidNameError):
        load_blocklist(lake, "partner@0")
    assert sorted(p.name for p in lake.blocklists_dir.iterdir()) == ["partner", "partner@2"]


def test_losing_a_publish_race_never_overwrites(lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = bl._write_unique

    def racing(*args: object) -> tuple[int, str]:
        winner = lake.blocklists_dir / "raced"
        winner.mkdir(parents=True)
        (winner / "blocklist.json").write_text("{}")
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(bl, "_write_unique", racing)
    with pytest.raises(BlocklistError, match="already exists"):
        add_blocklist(lake, "raced", write(tmp_path / "a.txt", MD5_A + "\n"), "image-md5")
    assert [p.name for p in (lake.blocklists_dir / "raced").iterdir()] == ["blocklist.json"]
    assert list((lake.root / "staging").iterdir()) == []


@pytest.mark.parametrize("name", ["../x", "a/b", "v[1]", "v*", "", ".hidden", "x" * 101])
def test_hostile_names_rejected_before_any_io(lake: Lake, tmp_path: Path, name: str) -> None:
    f = write(tmp_path / "a.txt", MD5_A + "\n")
    with pytest.raises(InvalidNameError):
        add_blocklist(lake, name, f, "image-md5")
    with pytest.raises(InvalidNameError):
        load_blocklist(lake, name)
    assert not lake.root.exists()


def test_list_and_load(lake: Lake, tmp_path: Path) -> None:
    assert list_blocklists(lake).blocklists == []
    f = write(tmp_path / "a.txt", MD5_A + "\n")
    b2 = add_blocklist(lake, "b-list", f, "image-md5")
    b1 = add_blocklist(lake, "a.list", write(tmp_path / "d.txt", "example.com\n"), "domain")
    (lake.blocklists_dir / "not a name").mkdir()
    assert list_blocklists(lake).blocklists == [b1, b2]
    assert load_blocklist(lake, "b-list") == b2
    meta = json.loads((lake.blocklists_dir / "b-list" / "blocklist.json").read_text())
    assert meta["format"] == "relake.blocklist/1"
    assert meta["entries"]["rows"] == 1
    assert meta["entries"]["sha256"] == hashlib.sha256(b2.path.read_bytes()).hexdigest()
    with pytest.raises(NotFoundError, match=r"no blocklist named 'nope' in lake .* \(blocklists: a.list, b-list\)"):
        load_blocklist(lake, "nope")


# ----------------------------------------------------------------------------------------------- bad input


def test_input_errors(lake: Lake, tmp_path: Path) -> None:
    txt = write(tmp_path / "a.txt", MD5_A + "\n")
    with pytest.raises(NotFoundError, match=r"missing.txt: no such file"):
        add_blocklist(lake, "x", tmp_path / "missing.txt", "image-md5")
    with pytest.raises(InputError, match=r"broken.parquet: not a readable parquet file"):
        add_blocklist(lake, "x", write(tmp_path / "broken.parquet", b"PAR1 nope"), "image-md5")
    with pytest.raises(BlocklistError, match=r"unknown blocklist kind 'md5'; valid kinds: url, url-sha256, "):
        add_blocklist(lake, "x", txt, "md5")
    with pytest.raises(BlocklistError, match=r"--hash-of applies to the URL hash kinds .* only, not image-md5"):
        add_blocklist(lake, "x", txt, "image-md5", hash_of="raw")
    with pytest.raises(BlocklistError, match=r"unknown --hash-of 'url'"):
        add_blocklist(lake, "x", txt, "url-md5", hash_of="url")
    with pytest.raises(BlocklistError, match=r"--column applies to .csv, .tsv and .parquet files only"):
        add_blocklist(lake, "x", txt, "image-md5", column="md5")
    csv_file = write(tmp_path / "c.csv", f"id,md5\n1,{MD5_A}\n")
    with pytest.raises(InputError, match=r"c.csv: no column 'sha' in the header row \(columns: 'id', 'md5'\)"):
        add_blocklist(lake, "x", csv_file, "image-md5", column="sha")
    with pytest.raises(InputError, match=r"c.csv: has 2 columns \(columns: 'id', 'md5'\); name the one"):
        add_blocklist(lake, "x", csv_file, "image-md5")
    assert not (lake.root / "blocklists").exists()


def test_kinds_are_the_documented_ones() -> None:
    assert KINDS == (
        "url",
        "url-sha256",
        "url-md5",
        "url-sha1",
        "domain",
        "key",
        "image-md5",
        "image-sha256",
        "image-sha1",
        "image-pdq",
    )


REAL = Path(__file__).parent / "data" / "laion-real-1000.parquet"


def _spellings(url: str) -> list[str]:
    """Partner-style spellings of one URL: as written, every raw space / non-ASCII byte percent-encoded, and every
    such escape decoded to its raw character (computed here with urllib, not relake)."""
    encoded = quote(url, safe="".join(chr(c) for c in range(0x21, 0x7F)))  # existing escapes stay
    decoded = "".join(ch for ch in unquote(url, errors="strict"))
    return [url, encoded, decoded]


@pytest.mark.parametrize("which", [0, 1, 2], ids=["as-written", "percent-encoded", "decoded"])
def test_url_lists_in_any_spelling_remove_the_real_rows(lake: Lake, tmp_path: Path, which: int) -> None:
    """Issue #9: real LAION URLs with a raw space and with %C2%A9 / %E5%B1%B1 escapes, listed the way partners write
    them (raw or escaped), remove exactly their rows (expected rows picked here by plain string equality)."""
    rows = pq.read_table(REAL).to_pylist()
    targets = [r["URL"] for r in rows if " " in r["URL"] or "%C2%A9" in r["URL"] or "%E5%B1%B1" in r["URL"]]
    assert len(targets) == 3
    listed = [_spellings(u)[which] for u in targets]
    if which:
        assert listed != targets  # the test really spells them differently
    f = write(tmp_path / "partner.txt", "".join(u + "\n" for u in listed))
    ingest_version(lake, "real", [str(REAL)])
    add_blocklist(lake, "partner", f, "url")
    spec = Spec(name="clean", base="real", rules=rules_from_flags(["partner"], [], "safety", False))
    result = build_version(lake, spec)
    kept = {r["URL"] for t in version_shard_tables(lake.version_dir("clean")) for r in t.to_pylist()}
    assert result.removed == len([r for r in rows if r["URL"] in targets]) == 3
    assert kept == {r["URL"] for r in rows} - set(targets)
