"""Strict import of blocklist files into normalised, sorted, content-hashed copies inside the lake.

A blocklist lives in ``blocklists/<name>/`` (its first revision) and ``blocklists/<name>@<N>/`` (revision N, from 2:
``relake blocklist add NAME FILE`` of a name the lake has, with other entries; monthly partner lists):

- ``entries.parquet``: one column ``entry`` (VARCHAR, REQUIRED), the distinct normalised entries in
  ascending UTF-8 byte order, in row groups of ``ROW_GROUP`` rows;
- ``blocklist.json``: name, kind, ``hash_of``, source file name, counts, content hash, file hash.

Files are read as a stream: values are normalised in Python in batches and appended to a staging parquet,
then DuckDB (under its memory limit, spilling inside the lake) removes duplicates and sorts, and the sorted
result is streamed once more to write ``entries.parquet`` and compute the content hash. The folder is
published with one create-only rename, so a name is never re-used or overwritten.

Content hash (``Blocklist.sha256``, format ``relake.blocklist/1``): the lower-case hex sha256 of the UTF-8 bytes

    "relake.blocklist/1\\n" + "kind=" + kind + "\\n" + "hash_of=" + (hash_of or "") + "\\n"
    + entry_1 + "\\n" + entry_2 + "\\n" + ... + entry_n + "\\n"

over the distinct normalised entries in ascending UTF-8 byte order (no entry contains a control character,
so the encoding is unambiguous). It depends on neither the input's order, format or duplicates, nor on the
DuckDB or pyarrow version; ``printf 'relake.blocklist/1\\nkind=…\\nhash_of=…\\n'`` followed by the entries
piped through ``LC_ALL=C sort -u`` reproduces it with ``sha256sum``.

A rule names ``NAME`` (its latest revision when the version is built) or ``NAME@N``; a build records the
revision and its content hash, so a version keeps the revision it was built with whatever is added later.

Counts: ``raw_entries`` is every non-empty value read (valid, duplicate or skipped), ``unique_entries`` the
distinct valid ones, ``skipped`` the malformed ones dropped by ``skip_invalid``, ``empty`` the empty or NULL
csv/tsv/parquet fields ignored. Blank lines and ``#`` comment lines of text files are not counted.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import re
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, get_args

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from relake import __version__
from relake.db import connect
from relake.errors import BlocklistError, InputError, InvalidNameError, NotFoundError, first_line
from relake.jsonfile import check_types, read_json
from relake.kinds import BLOCKLIST_KINDS, HEX, BlocklistKind, HexDigest, MalformedEntry, blocklist_kind, strip_entry
from relake.lake import REVISION_SEP, Lake, make_private, publish_dir, split_revision, validate_name
from relake.record import sha256_file
from relake.report import HIDDEN, Report
from relake.sql import query

__all__ = [
    "HASH_OF",
    "Blocklist",
    "BlocklistListing",
    "HashOf",
    "add_blocklist",
    "list_blocklists",
    "load_blocklist",
    "show_blocklist",
]

HashOf = Literal["canonical", "raw"]  # what url-* hashes are of: the canonical URL (default) or the raw one
HASH_OF: tuple[HashOf, ...] = get_args(HashOf)
FORMAT = "relake.blocklist/1"
ENTRIES_FILE = "entries.parquet"
META_FILE = "blocklist.json"
ROW_GROUP = 1 << 20  # rows per row group of entries.parquet (fixed, so rebuilds give identical files)
BATCH = 1 << 17  # csv/parquet values normalised, and sorted entries hashed, per batch
READ_BYTES = 8 << 20  # text read per batch
MAX_REPORTED = 5

_HEADER_LIKE = re.compile(r"[A-Za-z_][A-Za-z0-9_ .()#-]{0,63}")
_ASCII_SPACE = " \t\n\r\x0b\x0c"
_SCHEMA = pa.schema([pa.field("entry", pa.string(), nullable=False)])
_PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "use_dictionary": False}


@dataclass(frozen=True)
class Blocklist(Report):
    """An imported blocklist (see the module docstring for the counts and the content hash); what ``relake
    blocklist add`` reports."""

    name: str
    kind: str  # a registered kind (relake.kinds: a KindName, or one added with register_kind)
    hash_of: HashOf | None  # for url-* hash kinds, None otherwise
    source: str = field(metadata=HIDDEN)  # basename of the imported file
    raw_entries: int
    unique_entries: int
    skipped: int
    empty: int
    sha256: str
    path: Path = field(metadata=HIDDEN)  # entries.parquet inside the lake
    invisible_stripped: int = 0  # entries that lost a BOM, Unicode space or zero-width character (strip_entry)
    revision: int = 1
    added: bool = field(default=True, metadata=HIDDEN)  # False: `add` found the latest revision had these entries

    @property
    def ref(self) -> str:
        """``NAME`` for a first revision, ``NAME@N`` for a later one."""
        return self.name if self.revision == 1 else f"{self.name}{REVISION_SEP}{self.revision}"

    @property
    def duplicates(self) -> int:
        return self.raw_entries - self.skipped - self.unique_entries


# --------------------------------------------------------------------------------------------- public API


def add_blocklist(
    lake: Lake,
    name: str,
    file: Path,
    kind: str,
    *,
    hash_of: str | None = None,
    column: str | None = None,
    skip_invalid: bool = False,
) -> Blocklist:
    """Import ``file`` as blocklist ``name`` of ``kind``; fails on any malformed entry unless ``skip_invalid``.
    A name the lake has gets its next revision (same kind and ``hash_of``), unless the latest revision holds
    exactly these entries (then that one is returned, ``added`` False).

    Formats by extension: ``.csv``/``.tsv`` (``column`` names the column; a single column is used as is),
    ``.parquet`` (``column`` or the single column), anything else one entry a line.
    """
    validate_name(name, "blocklist")
    entry_kind, hash_of = _check_kind(kind, hash_of)
    revisions = _revisions(lake, name)
    latest = load_blocklist(lake, name) if revisions else None
    if latest is not None and (latest.kind, latest.hash_of) != (kind, hash_of):
        was = latest.kind + (f" (of the {latest.hash_of} URL)" if latest.hash_of else "")
        raise BlocklistError(f"blocklist {name!r} is a {was} list; a new revision keeps its kind (choose another "
                             "name for another kind)")
    revision = max(revisions, default=0) + 1
    file = Path(file)
    fmt = _format_of(file)
    if column is not None and fmt == "text":
        raise BlocklistError(f"{file}: --column applies to .csv, .tsv and .parquet files only")
    if not file.exists():
        raise NotFoundError(f"{file}: no such file")
    if not file.is_file():
        raise InputError(f"{file}: not a regular file")
    target = _folder(lake, name, revision)
    if target.exists():
        raise _exists(name)

    with lake.staging("blocklist") as staging:
        make_private(staging.path)  # becomes the blocklist's folder
        raw_path = staging.path / "raw.parquet"
        with pq.ParquetWriter(raw_path, _SCHEMA, **_PARQUET_OPTIONS) as writer:
            collector = _Collector(entry_kind, writer, keep_going=skip_invalid)
            for chunk in _chunks(file, fmt, entry_kind, column, collector.normalise):
                collector.add(chunk)
        tally = collector.tally
        if tally.bad and not skip_invalid:
            raise BlocklistError(_malformed_message(file, fmt, tally))
        entries_path = staging.path / ENTRIES_FILE
        unique, digest = _write_unique(lake, raw_path, entries_path, kind, hash_of)
        raw_path.unlink()
        if unique == 0:
            raise BlocklistError(f"{file}: no entries to import ({_counts_text(tally)})")
        if latest is not None and latest.sha256 == digest:
            return replace(latest, added=False)
        blocklist = Blocklist(
            name=name,
            kind=kind,
            hash_of=hash_of,
            source=file.name,
            raw_entries=tally.raw,
            unique_entries=unique,
            skipped=tally.bad,
            empty=tally.empty,
            sha256=digest,
            path=target / ENTRIES_FILE,
            invisible_stripped=tally.invisible,
            revision=revision,
        )
        (staging.path / META_FILE).write_text(_to_json(blocklist, entries_path), encoding="utf-8")
        make_private(entries_path, staging.path / META_FILE)
        publish_dir(staging, target, lambda: _exists(name))
    return blocklist


def load_blocklist(lake: Lake, ref: str) -> Blocklist:
    """The blocklist ``ref`` names: ``NAME`` (its latest revision) or ``NAME@N``; NotFoundError if there is none."""
    name, wanted = split_revision(ref)
    revisions = _revisions(lake, name)
    if not revisions:
        known = ", ".join(_names(lake)) or "none yet"
        raise NotFoundError(f"no blocklist named {name!r} in lake {lake.root} (blocklists: {known})")
    revision = max(revisions) if wanted is None else wanted
    if revision not in revisions:
        raise NotFoundError(f"blocklist {name!r} has no revision {revision} (revisions: "
                            f"{', '.join(map(str, sorted(revisions)))})")
    folder = _folder(lake, name, revision)
    meta = folder / META_FILE
    if not meta.is_file():
        raise NotFoundError(f"{meta}: blocklist metadata is missing; the blocklist folder is damaged")
    data = read_json(meta, "blocklist metadata")
    try:
        if data.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} file")
        hash_of = data["hash_of"]
        blocklist = Blocklist(
            name=data["name"],
            kind=data["kind"],
            hash_of=None if hash_of is None else _hash_of(hash_of) if isinstance(hash_of, str) else hash_of,
            source=data["source"],
            raw_entries=data["raw_entries"],
            unique_entries=data["unique_entries"],
            skipped=data["skipped"],
            empty=data["empty"],
            sha256=data["sha256"],
            path=folder / ENTRIES_FILE,
            invisible_stripped=data.get("invisible_stripped", 0),
            revision=data.get("revision", 1),
        )
        check_types(blocklist)
        record = data["entries"]
        if not isinstance(record, dict):
            raise ValueError("entries: expected an object")
        size, digest = record["bytes"], record["sha256"]
        if type(size) is not int or not isinstance(digest, str):
            raise ValueError("entries: bytes must be an integer and sha256 a string")
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{meta}: corrupt or unreadable blocklist metadata ({exc})") from exc
    if (blocklist.name, blocklist.revision) != (name, revision):
        raise InputError(f"{meta}: metadata names blocklist {blocklist.ref!r}, not {_ref(name, revision)!r}")
    _check_entries(name, blocklist.path, size, digest)
    return blocklist


def _check_entries(name: str, entries: Path, size: int, digest: str) -> None:
    """``entries.parquet`` is the file ``blocklist.json`` records (size, then sha256): a flipped bit would
    silently match other rows."""
    try:
        found = entries.stat().st_size
        differs = f"{found} bytes, recorded {size}" if found != size else None
        if differs is None:
            found_digest = sha256_file(entries)
            differs = f"sha256 {found_digest}, recorded {digest}" if found_digest != digest else None
    except OSError as exc:
        raise InputError(f"blocklist {name}: cannot read {ENTRIES_FILE} ({exc.strerror or exc}); re-import it") from exc
    if differs is not None:
        raise InputError(f"blocklist {name}: {ENTRIES_FILE} differs from its record ({differs}); re-import it")


@dataclass(frozen=True)
class BlocklistListing(Report):
    """The lake's blocklists, by name (``relake blocklist list``; its JSON is their list)."""

    json_root = "blocklists"

    blocklists: list[Blocklist]


def list_blocklists(lake: Lake) -> BlocklistListing:
    """Every blocklist in the lake, by name."""
    return BlocklistListing([load_blocklist(lake, n) for n in _names(lake)])


@dataclass(frozen=True)
class BlocklistUse(Report):
    """One rule of one version built with a blocklist: the revision it used (None: a record of an older relake
    whose sha256 matches no revision here), and how many of its entries matched a row of the base."""

    version: str
    rule: str
    revision: int | None
    sha256: str
    entries: int
    matched_entries: int | None  # entries - unmatched (None: the build recorded no unmatched count)
    removed_rows: int | None  # rows the rule matched (a row counts for each rule it matched)


@dataclass(frozen=True)
class BlocklistShow(Report):
    """What ``relake blocklist show NAME`` reports: every revision, and every version built with one."""

    name: str
    revisions: list[Blocklist]
    used_by: list[BlocklistUse]


def show_blocklist(lake: Lake, name: str) -> BlocklistShow:
    """Blocklist ``name``'s revisions (entries, kind, sha256) and the versions of the lake built with it: which
    revision each rule used and how many entries matched (from each version's record: its recipe's rules and the
    build's ``unmatched_entries`` and ``removed_by_rule``)."""
    validate_name(name, "blocklist")
    load_blocklist(lake, name)  # a clear error for an unknown name
    revisions = [load_blocklist(lake, f"{name}{REVISION_SEP}{r}") for r in _revisions(lake, name)]
    by_sha = {b.sha256: b.revision for b in revisions}
    uses: list[BlocklistUse] = []
    for v in lake.list_versions().versions:
        record = lake.load_version(v.name)
        unmatched = record.stats.get("unmatched_entries")
        removed = record.stats.get("removed_by_rule")
        for rule in record.recipe.get("rules", []):
            bl = rule.get("blocklist") if isinstance(rule, dict) else None
            if not isinstance(bl, dict) or bl.get("name") != name:
                continue
            rid, sha, entries = str(rule.get("id")), str(bl.get("sha256")), int(bl.get("entries") or 0)
            revision = bl.get("revision") if isinstance(bl.get("revision"), int) else by_sha.get(sha)
            missed = unmatched.get(rid) if isinstance(unmatched, dict) else None
            rows = removed.get(rid) if isinstance(removed, dict) else None
            uses.append(BlocklistUse(v.name, rid, revision, sha, entries,
                                     entries - missed if isinstance(missed, int) else None,
                                     rows if isinstance(rows, int) else None))
    return BlocklistShow(name, revisions, uses)


# --------------------------------------------------------------------------------------------- checks


def _hash_of(value: str) -> HashOf:
    for h in HASH_OF:
        if value == h:
            return h
    raise ValueError(f"unknown hash_of {value!r}; use one of: {', '.join(HASH_OF)}")


def _check_kind(kind: str, hash_of: str | None) -> tuple[BlocklistKind, HashOf | None]:
    """The registered kind and the ``hash_of`` to record ("canonical" by default for URL hash kinds)."""
    entry_kind = blocklist_kind(kind)
    if entry_kind.hash_of:
        if hash_of is None:
            return entry_kind, "canonical"
        if hash_of not in HASH_OF:
            raise BlocklistError(f"unknown --hash-of {hash_of!r}; use one of: {', '.join(HASH_OF)}")
        return entry_kind, _hash_of(hash_of)
    if hash_of is not None:
        url_hash_kinds = sorted(k.name for k in BLOCKLIST_KINDS.values() if k.hash_of)
        raise BlocklistError(f"--hash-of applies to the URL hash kinds ({', '.join(url_hash_kinds)}) only, not {kind}")
    return entry_kind, None


def _format_of(file: Path) -> str:
    suffix = file.suffix.lower()
    return {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet"}.get(suffix, "text")


def _folder(lake: Lake, name: str, revision: int) -> Path:
    """``blocklists/NAME`` (revision 1, as lakes have always held it) or ``blocklists/NAME@N``."""
    return lake.blocklists_dir / _ref(name, revision)


def _ref(name: str, revision: int) -> str:
    return name if revision == 1 else f"{name}{REVISION_SEP}{revision}"


def _revisions(lake: Lake, name: str) -> list[int]:
    """The revisions of blocklist ``name`` the lake holds (folders; a damaged one is found by load_blocklist)."""
    root = lake.blocklists_dir
    if not root.is_dir():
        return []
    out = [1] if (root / name).is_dir() else []
    prefix = name + REVISION_SEP
    for p in root.iterdir():
        rev = p.name[len(prefix):]
        if p.name.startswith(prefix) and rev.isdigit() and rev == str(int(rev)) and int(rev) > 1 and p.is_dir():
            out.append(int(rev))
    return sorted(out)


def _exists(name: str) -> BlocklistError:
    return BlocklistError(f"blocklist {name!r} already exists; blocklists are immutable, choose another name")


def _names(lake: Lake) -> list[str]:
    root = lake.blocklists_dir
    if not root.is_dir():
        return []
    out = []
    for p in root.iterdir():
        try:
            validate_name(p.name, "blocklist")
        except InvalidNameError:  # an odd folder someone put there is not a blocklist
            continue
        if p.is_dir():
            out.append(p.name)
    return sorted(out)


# --------------------------------------------------------------------------------------------- normalising


@dataclass(frozen=True)
class _Bad:
    """A value judged malformed while reading (e.g. invalid UTF-8), before normalising."""

    reason: str


def _valid(normalise: Callable[[str], str], value: str) -> bool:
    try:
        normalise(value)
    except MalformedEntry:
        return False
    return True


# --------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class _Lines:
    """Physical lines of a text file, the first being line ``start``."""

    start: int
    lines: list[bytes]


@dataclass(frozen=True)
class _Strings:
    """A text column of a parquet file, the first value being row ``start`` (NULL is empty)."""

    start: int
    array: pa.Array


@dataclass(frozen=True)
class _Values:
    """Values at these 1-based line or row numbers; None or "" is empty."""

    positions: list[int]
    values: list[str | _Bad | None]


_Chunk = _Lines | _Strings | _Values


def _chunks(
    file: Path, fmt: str, kind: BlocklistKind, column: str | None, normalise: Callable[[str], str]
) -> Iterator[_Chunk]:
    try:
        if fmt == "text":
            yield from _text_chunks(file)
        elif fmt == "parquet":
            yield from _parquet_chunks(file, kind, column)
        else:
            yield from _csv_chunks(file, "," if fmt == "csv" else "\t", column, normalise)
    except OSError as exc:
        raise InputError(f"{file}: cannot read ({exc.strerror or first_line(exc)})") from exc


def _text_chunks(file: Path) -> Iterator[_Lines]:
    start = 1
    with open(file, "rb") as fh:
        while lines := fh.readlines(READ_BYTES):
            if start == 1 and lines[0].startswith(codecs.BOM_UTF8):
                lines[0] = lines[0][len(codecs.BOM_UTF8) :]
            yield _Lines(start, lines)
            start += len(lines)


def _csv_chunks(file: Path, delimiter: str, column: str | None, normalise: Callable[[str], str]) -> Iterator[_Values]:
    with open(file, encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        end = 0  # physical line the previous record ended on
        index: int | None = None
        width = 0
        chunk = _Values([], [])
        try:
            for row in reader:
                start, end = end + 1, reader.line_num
                if not row:
                    continue  # a blank line
                if index is None:
                    width = len(row)
                    index = _pick_csv_column(file, row, column, normalise)
                    if column is not None or (row[0].strip() and _is_header(row[0], normalise)):
                        continue
                chunk.positions.append(start)
                if len(row) != width:
                    chunk.values.append(_Bad(f"has {len(row)} fields, expected {width}"))
                else:
                    value = row[index]
                    chunk.values.append(value if value.isascii() or _utf8_clean(value) else _Bad("not valid UTF-8"))
                if len(chunk.values) >= BATCH:
                    yield chunk
                    chunk = _Values([], [])
        except csv.Error as exc:
            raise InputError(f"{file}: line {reader.line_num}: not valid {delimiter!r}-separated text ({exc})") from exc
        if chunk.values:
            yield chunk


def _pick_csv_column(file: Path, first: list[str], column: str | None, normalise: Callable[[str], str]) -> int:
    """The column index; the first row is the header when ``column`` is given."""
    names = [c.strip() for c in first]
    if column is not None:
        found = [i for i, c in enumerate(names) if c == column]
        if not found:
            raise InputError(f"{file}: no column {column!r} in the header row (columns: {_listing(names)})")
        if len(found) > 1:
            raise InputError(f"{file}: the header row has {len(found)} columns named {column!r}")
        return found[0]
    if len(first) == 1:
        return 0
    header = all(n and _is_header(n, normalise) for n in names)
    listing = f" (columns: {_listing(names)})" if header else " and no header row"
    raise InputError(f"{file}: has {len(first)} columns{listing}; name the one to import with --column")


def _is_header(value: str, normalise: Callable[[str], str]) -> bool:
    """A first row is a header only if it is not a valid entry and looks like a column name
    (so a malformed first entry, e.g. a 63-digit hash, is reported rather than eaten)."""
    value = value.strip()
    if _valid(normalise, value) or not _HEADER_LIKE.fullmatch(value):
        return False
    return not (len(value) >= 16 and HEX.fullmatch(value))


def _listing(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names)


def _utf8_clean(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _parquet_chunks(file: Path, kind: BlocklistKind, column: str | None) -> Iterator[_Chunk]:
    try:
        pf = pq.ParquetFile(file)
        schema = pf.schema_arrow
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise InputError(f"{file}: not a readable parquet file ({first_line(exc)})") from exc
    names = list(schema.names)
    if column is None:
        if len(names) != 1:
            raise InputError(
                f"{file}: has {len(names)} columns; name the one to import with --column (columns: {_listing(names)})"
            )
        column = names[0]
    elif column not in names:
        raise InputError(f"{file}: no column {column!r} (columns: {_listing(names)})")
    if names.count(column) > 1:
        raise InputError(f"{file}: has {names.count(column)} columns named {column!r}")
    dtype = schema.field(column).type
    if pa.types.is_dictionary(dtype):
        dtype = dtype.value_type
    textual = pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype)
    binary = (
        pa.types.is_binary(dtype)
        or pa.types.is_large_binary(dtype)
        or pa.types.is_fixed_size_binary(dtype)
        or pa.types.is_binary_view(dtype)
    )
    integer = pa.types.is_integer(dtype) and kind.integer_entries
    if not (textual or binary or integer):
        raise InputError(f"{file}: column {column!r} has type {dtype}; expected text")
    digest = kind.algorithm.hex_length if kind.algorithm is not None else None
    start = 1
    try:
        for batch in pf.iter_batches(batch_size=BATCH, columns=[column]):
            arr = batch.column(0)
            n = len(arr)
            if textual:
                yield _Strings(start, arr.cast(pa.string()))
            else:
                yield _Values(list(range(start, start + n)), [_parquet_value(v, digest) for v in arr.to_pylist()])
            start += n
    except (pa.ArrowException, ValueError) as exc:
        raise InputError(f"{file}: not a readable parquet file ({first_line(exc)})") from exc


def _parquet_value(v: Any, digest: int | None) -> str | _Bad | None:
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bytes):
        if digest is not None and len(v) == digest // 2:
            return v.hex()  # a raw digest
        try:
            return v.decode("utf-8")
        except UnicodeDecodeError:
            return _Bad("not valid UTF-8")
    return str(v)


# --------------------------------------------------------------------------------------------- collecting


@dataclass
class _Tally:
    raw: int = 0
    empty: int = 0
    bad: int = 0
    invisible: int = 0  # entries stripped of a BOM, a Unicode space or a zero-width character
    first_bad: list[tuple[int, str]] = field(default_factory=list)


FastPath = Callable[[pa.Array], tuple[pa.Array, pa.Array]]


def _fast_path(kind: BlocklistKind) -> FastPath | None:
    """For kinds of hex digests, a vectorised check accepting exactly the values the Python path accepts
    unchanged modulo ASCII whitespace and case; (accepted mask, normalised values). Everything else takes the
    Python path, value by value."""
    if not isinstance(kind.normalise, HexDigest):
        return None
    pattern = kind.normalise.pattern

    def fast(arr: pa.Array) -> tuple[pa.Array, pa.Array]:
        normal = pc.ascii_lower(pc.ascii_trim(arr, _ASCII_SPACE))
        ok = pc.fill_null(pc.match_substring_regex(normal, pattern), False)
        return ok, normal

    return fast


class _Collector:
    """Normalises chunks of values and appends the good ones to the staging parquet. After a malformed
    value, unless ``keep_going``, it only counts (the import fails, but its message counts every bad line)."""

    def __init__(self, kind: BlocklistKind, writer: pq.ParquetWriter, keep_going: bool) -> None:
        self.normalise = kind.normalise
        self.fast = _fast_path(kind)
        self.writer = writer
        self.keep_going = keep_going
        self.writing = True
        self.tally = _Tally()

    def add(self, chunk: _Chunk) -> None:
        if isinstance(chunk, _Lines):
            self._lines(chunk)
        elif isinstance(chunk, _Strings):
            self._strings(chunk)
        else:
            self._values(chunk.positions, chunk.values)

    def _lines(self, chunk: _Lines) -> None:
        lines, start = chunk.lines, chunk.start
        positions: list[int] | range = range(start, start + len(lines))
        if self.fast is not None:
            try:
                arr = pa.array(lines, pa.binary()).cast(pa.string())
            except pa.ArrowInvalid:  # invalid UTF-8 somewhere: every line takes the Python path
                pass
            else:
                rest = self._accept_fast(arr)
                lines = [lines[i] for i in rest]
                positions = [start + i for i in rest]
        out: list[str] = []
        for position, raw in zip(positions, lines, strict=True):
            try:
                value, stripped = strip_entry(raw.decode("utf-8"))
            except UnicodeDecodeError:
                self._malformed(position, "not valid UTF-8")
                continue
            if value and value[0] != "#":
                self._one(position, value, out, stripped)
        self._write(pa.array(out, pa.string()))

    def _strings(self, chunk: _Strings) -> None:
        arr, start = chunk.array, chunk.start
        if self.fast is None:
            self._values(range(start, start + len(arr)), arr.to_pylist())
            return
        rest = self._accept_fast(arr)
        self._values([start + i for i in rest], arr.take(pa.array(rest, pa.int64())).to_pylist())

    def _accept_fast(self, arr: pa.Array) -> list[int]:
        """Write what the fast path accepts; the indices of the rest."""
        assert self.fast is not None
        ok, normal = self.fast(arr)
        accepted = normal.filter(ok)
        self.tally.raw += len(accepted)
        self._write(accepted)
        indices: list[int] = pc.indices_nonzero(pc.invert(ok)).to_pylist()
        return indices

    def _values(self, positions: Sequence[int], values: Sequence[str | _Bad | None]) -> None:
        out: list[str] = []
        for position, value in zip(positions, values, strict=True):
            if isinstance(value, _Bad):
                self.tally.raw += 1
                self._malformed(position, value.reason)
                continue
            value, stripped = strip_entry(value or "")
            if not value:
                self.tally.empty += 1
                continue
            self._one(position, value, out, stripped)
        self._write(pa.array(out, pa.string()))

    def _one(self, position: int, value: str, out: list[str], stripped: bool) -> None:
        self.tally.raw += 1
        self.tally.invisible += stripped
        try:
            out.append(self.normalise(value))
        except MalformedEntry as exc:
            self._malformed(position, exc.reason)

    def _malformed(self, position: int, reason: str) -> None:
        self.tally.bad += 1
        if len(self.tally.first_bad) < MAX_REPORTED:
            self.tally.first_bad.append((position, reason))
        self.writing = self.writing and self.keep_going

    def _write(self, entries: pa.Array) -> None:
        if self.writing and len(entries):
            self.writer.write_table(pa.Table.from_arrays([entries], schema=_SCHEMA))


# --------------------------------------------------------------------------------------------- writing


def _write_unique(lake: Lake, raw: Path, out: Path, kind: str, hash_of: str | None) -> tuple[int, str]:
    """Distinct, sorted entries of ``raw`` to ``out`` in fixed-size row groups; (count, content hash)."""
    digest = hashlib.sha256(f"{FORMAT}\nkind={kind}\nhash_of={hash_of or ''}\n".encode())
    rows = 0
    last: str | None = None
    pending: list[pa.Array] = []
    pending_rows = 0
    with connect(lake) as db, pq.ParquetWriter(out, _SCHEMA, **_PARQUET_OPTIONS) as writer:
        db.bind_parquet("raw_entries", [raw])
        unique_entries = query("blocklist/unique_entries")
        relation = db.con.sql(unique_entries.text)  # no params (checked when queries/ loads); streams as Arrow
        if relation is None or unique_entries.params:
            raise RuntimeError("queries/blocklist/unique_entries.sql must be a SELECT without params")
        for batch in relation.to_arrow_reader(BATCH):
            arr = batch.column(0)
            if arr.type != pa.string():
                arr = arr.cast(pa.string())
            n = len(arr)
            if n == 0:
                continue
            first = arr[0].as_py()
            if (last is not None and not last < first) or (
                n > 1 and not pc.all(pc.less(arr.slice(0, n - 1), arr.slice(1))).as_py()
            ):
                raise RuntimeError("DuckDB returned blocklist entries out of binary order")
            _hash_lines(digest, arr)
            last = arr[n - 1].as_py()
            rows += n
            pending.append(arr)
            pending_rows += n
            while pending_rows >= ROW_GROUP:
                chunk = pa.chunked_array(pending, pa.string())
                _write_group(writer, chunk.slice(0, ROW_GROUP))
                rest = chunk.slice(ROW_GROUP)
                pending = list(rest.chunks)
                pending_rows = len(rest)
        if pending_rows:
            _write_group(writer, pa.chunked_array(pending, pa.string()))
    return rows, digest.hexdigest()


def _hash_lines(digest: Any, arr: pa.Array) -> None:
    """Feed ``entry + "\\n"`` for every entry of a non-null string array, straight from Arrow's buffers."""
    if pc.any(pc.match_substring(arr, "\n")).as_py():
        raise RuntimeError("a blocklist entry contains a line break")
    lines = pc.binary_join_element_wise(arr, "", "\n")
    offsets, data = lines.buffers()[1], lines.buffers()[2]
    begin = struct.unpack_from("=i", offsets, 4 * lines.offset)[0]
    end = struct.unpack_from("=i", offsets, 4 * (lines.offset + len(lines)))[0]
    digest.update(memoryview(data)[begin:end])


def _write_group(writer: pq.ParquetWriter, entries: pa.ChunkedArray) -> None:
    table = pa.Table.from_arrays([entries.combine_chunks()], schema=_SCHEMA)
    writer.write_table(table, row_group_size=ROW_GROUP)


def _malformed_message(file: Path, fmt: str, tally: _Tally) -> str:
    unit = "row" if fmt == "parquet" else "line"
    noun = unit if tally.bad == 1 else unit + "s"
    shown = "; ".join(f"{unit} {pos}: {reason}" for pos, reason in tally.first_bad)
    more = ", first: " if tally.bad > len(tally.first_bad) else ": "
    return f"{file}: {tally.bad} malformed {noun}{more}{shown}; use --skip-invalid to skip them"


def _counts_text(tally: _Tally) -> str:
    return f"values read: {tally.raw}, malformed: {tally.bad}, empty: {tally.empty}"


def _to_json(b: Blocklist, entries: Path) -> str:
    data = {
        "format": FORMAT,
        "name": b.name,
        "kind": b.kind,
        "hash_of": b.hash_of,
        "source": b.source,
        "raw_entries": b.raw_entries,
        "unique_entries": b.unique_entries,
        "skipped": b.skipped,
        "empty": b.empty,
        "invisible_stripped": b.invisible_stripped,
        "sha256": b.sha256,
        **({"revision": b.revision} if b.revision != 1 else {}),
        "entries": {
            "path": ENTRIES_FILE,
            "rows": b.unique_entries,
            "bytes": entries.stat().st_size,
            "sha256": sha256_file(entries),
        },
        "tool": {"relake": __version__},
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
