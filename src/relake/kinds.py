"""Registries of the variants relake handles by name: hash algorithms and blocklist kinds.

``HASH_ALGORITHMS`` (md5, sha1, sha256) is the one table of digest algorithms: their hex length, their hashlib
digest; the name is also DuckDB's function and the ``$algo`` value of ``queries/build/match_url_hash.sql``.

``BLOCKLIST_KINDS`` is the one table of blocklist kinds. An entry says how ``relake blocklist add`` normalises and
checks each entry (a function from a stripped value to its normal form that raises ``MalformedEntry``), what the
base must have for a build to match it (``reads``), which query under ``queries/`` matches it, its hash algorithm
if its entries are digests, and the help text ``--kind`` shows. Adding a kind is one entry here (with
``KindName`` member) and one ``queries/build/match_<kind>.sql``; ``register_kind`` adds one at run time.

A match query reads view ``bl(entry)`` and view ``rows(file, pos, url, caption, id)`` (or, for ``reads="image"``,
view ``img(file, pos, img)``; for a ``perceptual`` kind, view ``near(file, pos, entry)``: the base's rows whose
image hash is within the match distance of an entry, which the build computes with ``relake.hamming``), inserts
``(file, pos, rule, how)`` into ``matches``, and declares ``$rule`` and any of ``$algo`` (the kind's algorithm),
``$raw`` (``--hash-of raw``) and ``$how`` (how the rule matched). A kind reading URLs may also name
``match_cached``, the same match through the URL cache (``urlcache.py``), which a build runs instead when the
base's shards have one (never for ``--hash-of raw``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Literal, get_args

import idna

from relake.errors import BlocklistError

__all__ = [
    "BLOCKLIST_KINDS",
    "DEFAULT_MAX_DISTANCE",
    "DEFAULT_MIN_QUALITY",
    "HASH_ALGORITHMS",
    "HASH_LENGTHS",
    "KINDS",
    "MATCH_PARAMS",
    "READS",
    "BlocklistKind",
    "HashAlgorithm",
    "HexDigest",
    "KindName",
    "MalformedEntry",
    "PdqEntry",
    "Reads",
    "blocklist_kind",
    "normalise_pdq",
    "parse_pdq",
    "register_kind",
    "strip_entry",
    "unregister_kind",
]

# --------------------------------------------------------------------------------------------- hash algorithms


@dataclass(frozen=True)
class HashAlgorithm:
    """A digest algorithm; ``name`` is how hashlib, DuckDB's function and relake's files (columns ``md5``,
    ``image_sha256``, a manifest's ``image_hash``) spell it."""

    name: str
    hex_length: int  # lower-case hex digits of one digest

    def hexdigest(self, data: bytes) -> str:
        return hashlib.new(self.name, data, usedforsecurity=False).hexdigest()


HASH_ALGORITHMS: Mapping[str, HashAlgorithm] = MappingProxyType(
    {a.name: a for a in (HashAlgorithm("md5", 32), HashAlgorithm("sha1", 40), HashAlgorithm("sha256", 64))}
)
HASH_LENGTHS: Mapping[str, int] = MappingProxyType({n: a.hex_length for n, a in HASH_ALGORITHMS.items()})
_ALGO_BY_LENGTH = {a.hex_length: a.name for a in HASH_ALGORITHMS.values()}

# --------------------------------------------------------------------------------------------- normalisers


class MalformedEntry(Exception):
    """A blocklist value a kind's normaliser rejects; ``reason`` says why, for the import's error message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


BOM = "\ufeff"  # a byte-order mark: invisible, and anywhere in a value it comes of concatenated files (`cat a b`)
# Unicode spaces and invisible characters trimmed from a value's edges (besides ASCII whitespace): what str.isspace()
# calls space, zero-width space and joiners, the word joiner and the BOM
# (filter/map: the same characters as a generator of chr(c).isspace(), in a fifth of the time, at every start)
_EDGE_SPACE = "".join(filter(str.isspace, map(chr, range(0x3001)))) + "\u200b\u200c\u200d\u2060\u180e" + BOM
_ASCII_SPACE = " \t\n\r\x0b\x0c"


def strip_entry(value: str) -> tuple[str, bool]:
    """A raw blocklist value without any BOM and without spaces or invisible characters at its edges (ASCII
    whitespace, Unicode spaces such as NBSP, zero-width characters); and whether anything but ASCII whitespace was
    removed (an entry kept with such a character would never match the URL or hash it names)."""
    cleaned = value.replace(BOM, "") if BOM in value else value
    out = cleaned.strip(_EDGE_SPACE)
    return out, out != value.strip(_ASCII_SPACE)


HEX = re.compile(r"[0-9a-fA-F]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_URL_OK = re.compile(r"[^\x00-\x1f\x7f-\x9f]+")  # inner spaces and non-ASCII are real (LAION has them)
_LABEL = re.compile(r"[a-z0-9-]{1,63}")


@dataclass(frozen=True)
class HexDigest:
    """Normaliser of one algorithm's hex digests: lower-cased, exactly ``hex_length`` hex digits. Blocklist
    imports also check such entries vectorised (``pattern``), accepting exactly what this accepts."""

    algorithm: HashAlgorithm

    @property
    def pattern(self) -> str:
        return f"^[0-9a-f]{{{self.algorithm.hex_length}}}$"

    def __call__(self, value: str) -> str:
        low = value.lower()
        if re.fullmatch(f"[0-9a-f]{{{self.algorithm.hex_length}}}", low):
            return low
        raise MalformedEntry(_hash_reason(value, self.algorithm))


def _hash_reason(value: str, algorithm: HashAlgorithm) -> str:
    algo, n = algorithm.name, algorithm.hex_length
    if _quoted(value):
        return "enclosed in quotes"
    if HEX.fullmatch(value):
        other = _ALGO_BY_LENGTH.get(len(value))
        if other is not None and other != algo:
            return f"{len(value)} hex digits: looks like a {other} hash, not {algo} (wrong kind)"
        return f"{len(value)} hex digits, expected {n} for {algo}"
    if _url_like(value):
        return "looks like a URL, not a hash (wrong kind)"
    if _domain_like(value):
        return "looks like a domain, not a hash (wrong kind)"
    return "not hexadecimal"


def normalise_url(value: str) -> str:
    if not _URL_OK.fullmatch(value):
        raise MalformedEntry("contains control characters")
    if _quoted(value):
        raise MalformedEntry("enclosed in quotes")
    other = _hash_like(value)
    if other is not None:
        raise MalformedEntry(f"looks like a {other} hash, not a URL (wrong kind; use --kind url-{other})")
    if "." not in value and "/" not in value:
        raise MalformedEntry("does not look like a URL (no '.' or '/')")
    return value


def normalise_domain(value: str) -> str:
    if _quoted(value):
        raise MalformedEntry("enclosed in quotes")
    d = value.lower()
    if "/" in d or ":" in d:
        raise MalformedEntry("looks like a URL, not a domain (wrong kind; use --kind url)")
    other = _hash_like(d)
    if other is not None:
        raise MalformedEntry(f"looks like a {other} hash, not a domain (wrong kind)")
    if d.endswith("."):
        d = d[:-1]
    if d.startswith("*."):
        d = d[2:]
    if not d.isascii():
        try:
            d = idna.encode(d, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError):
            raise MalformedEntry("not a valid internationalised domain name") from None
    if len(d) > 253:
        raise MalformedEntry("longer than 253 characters")
    labels = d.split(".")
    if len(labels) < 2:
        raise MalformedEntry("a single label, not a domain name")
    for label in labels:
        if not _LABEL.fullmatch(label):
            raise MalformedEntry("not a hostname (labels of 1-63 letters, digits or '-', separated by '.')")
    return d


PDQ_HEX = 64  # a PDQ hash: 256 bits
# an image-pdq entry matches an image within this many bits; here, not in relake.pdq (numpy), for the CLI's defaults
DEFAULT_MAX_DISTANCE = 31  # Meta's recommended match threshold (bits of 256)
DEFAULT_MIN_QUALITY = 50  # Meta's: hashes below it are not reliable enough to act on
_PDQ_SPLIT = re.compile(r"\s*,\s*|\s+")


@dataclass(frozen=True)
class PdqEntry:
    """An ``image-pdq`` entry: a PDQ hash (64 lower-case hex digits) and the quality its lister gave, if any."""

    hash: str
    quality: int | None


def parse_pdq(value: str) -> PdqEntry:
    """A PDQ entry from ``HASH``, ``HASH,QUALITY`` or ``HASH QUALITY`` (quality an integer 0-100, as Meta's
    hashers print it); ``MalformedEntry`` saying what is wrong."""
    if _quoted(value):
        raise MalformedEntry("enclosed in quotes")
    parts = _PDQ_SPLIT.split(value, maxsplit=1)
    digits = parts[0]
    if not (HEX.fullmatch(digits) and len(digits) == PDQ_HEX):
        if _url_like(value):
            raise MalformedEntry("looks like a URL, not a PDQ hash (wrong kind)")
        if not HEX.fullmatch(digits):
            raise MalformedEntry("not hexadecimal: expected a PDQ hash of 64 hex digits, optionally ',quality'")
        other = _ALGO_BY_LENGTH.get(len(digits))
        if other is not None:
            raise MalformedEntry(f"{len(digits)} hex digits: looks like a {other} hash, not a PDQ hash (wrong kind)")
        raise MalformedEntry(f"{len(digits)} hex digits, expected {PDQ_HEX} for a PDQ hash")
    quality: int | None = None
    if len(parts) == 2:
        q = parts[1]
        if not (q.isascii() and q.isdigit() and int(q) <= 100):
            raise MalformedEntry(f"quality {q[:20]!r} is not an integer from 0 to 100")
        quality = int(q)
    return PdqEntry(digits.lower(), quality)


def normalise_pdq(value: str) -> str:
    """An ``image-pdq`` entry's normal form: the hash, lower-cased, and ``,QUALITY`` when one was given."""
    entry = parse_pdq(value)
    return entry.hash if entry.quality is None else f"{entry.hash},{entry.quality}"


def normalise_key(value: str) -> str:
    if _CONTROL.search(value):
        raise MalformedEntry("contains control characters")
    return value


def _quoted(value: str) -> bool:
    return len(value) >= 2 and value[0] in "\"'" and value[-1] == value[0]


def _hash_like(value: str) -> str | None:
    algo = _ALGO_BY_LENGTH.get(len(value))
    return algo if algo is not None and HEX.fullmatch(value) else None


def _url_like(value: str) -> bool:
    low = value.lower()
    return "://" in low or low.startswith(("http:", "https:", "ftp:", "www."))


def _domain_like(value: str) -> bool:
    labels = value.lower().rstrip(".").split(".")
    return len(labels) >= 2 and all(_LABEL.fullmatch(label) for label in labels)


# --------------------------------------------------------------------------------------------- blocklist kinds

Reads = Literal["url", "id", "caption", "image"]
READS: tuple[Reads, ...] = get_args(Reads)
MATCH_PARAMS = frozenset({"rule", "algo", "raw", "how"})  # what a match query may declare ($rule it must)


class KindName(StrEnum):
    """The built-in blocklist kinds, the names users give to ``--kind``."""

    URL = "url"
    URL_SHA256 = "url-sha256"
    URL_MD5 = "url-md5"
    URL_SHA1 = "url-sha1"
    DOMAIN = "domain"
    KEY = "key"
    IMAGE_MD5 = "image-md5"
    IMAGE_SHA256 = "image-sha256"
    IMAGE_SHA1 = "image-sha1"
    IMAGE_PDQ = "image-pdq"


@dataclass(frozen=True)
class BlocklistKind:
    """One blocklist kind (see the module docstring)."""

    name: str
    help: str  # a few words for `relake blocklist add --help`
    normalise: Callable[[str], str]  # stripped, non-empty value -> normal form; raises MalformedEntry
    reads: Reads  # the base's url, id or caption role (view rows), or its image hashes (column or side table)
    match: str  # the query inserting this kind's matches, e.g. "build/match_url"
    algorithm: HashAlgorithm | None = None  # entries are digests of this algorithm
    hash_of: bool = False  # digests of URLs, canonical (default) or raw: takes --hash-of
    integer_entries: bool = False  # a parquet integer column is read as its decimal text
    # entries are perceptual hashes (PDQ), matched within a Hamming distance, never shown (lists of this kind
    # are private: only counts of what they match are reported)
    perceptual: bool = False
    # the same match through the URL cache (urlcache.py: views url_cache, table cache_files), used when the build
    # has one and the kind's digests (if any) are of canonical URLs; None: the kind always runs ``match``
    match_cached: str | None = None

    def __post_init__(self) -> None:
        if self.reads not in READS:
            raise ValueError(f"blocklist kind {self.name!r}: reads {self.reads!r}, not one of {READS}")
        if (self.hash_of or self.reads == "image") and self.algorithm is None and not self.perceptual:
            raise ValueError(f"blocklist kind {self.name!r}: URL or image hashes need an algorithm")
        if self.perceptual and self.reads != "image":
            raise ValueError(f"blocklist kind {self.name!r}: perceptual hashes are of images")

    @property
    def role(self) -> str | None:
        """The column role (``Roles`` field) the base needs for this kind; None for image hashes."""
        return None if self.reads == "image" else self.reads


def _url_hash(name: KindName, algo: str) -> BlocklistKind:
    a = HASH_ALGORITHMS[algo]
    return BlocklistKind(name, f"{algo} of URLs, see --hash-of", HexDigest(a), "url",
                         "build/match_url_hash", a, hash_of=True,
                         match_cached="build/match_url_sha256_cached" if algo == "sha256" else None)


def _image_hash(name: KindName, algo: str) -> BlocklistKind:
    a = HASH_ALGORITHMS[algo]
    return BlocklistKind(name, f"{algo} of image bytes", HexDigest(a), "image",
                         "build/match_image", a)


_REGISTRY: dict[str, BlocklistKind] = {
    k.name: k
    for k in (
        BlocklistKind(KindName.URL, "URLs, as written or canonical", normalise_url, "url", "build/match_url",
                      match_cached="build/match_url_cached"),
        _url_hash(KindName.URL_SHA256, "sha256"),
        _url_hash(KindName.URL_MD5, "md5"),
        _url_hash(KindName.URL_SHA1, "sha1"),
        BlocklistKind(KindName.DOMAIN, "domains and their sub-domains", normalise_domain, "url",
                      "build/match_domain", match_cached="build/match_domain_cached"),
        BlocklistKind(KindName.KEY, "dataset keys, the id column", normalise_key, "id", "build/match_key",
                      integer_entries=True),
        _image_hash(KindName.IMAGE_MD5, "md5"),
        _image_hash(KindName.IMAGE_SHA256, "sha256"),
        _image_hash(KindName.IMAGE_SHA1, "sha1"),
        BlocklistKind(KindName.IMAGE_PDQ, "PDQ perceptual hashes of images (64 hex digits, optionally ',quality'); "
                      "matched within a Hamming distance", normalise_pdq, "image", "build/match_image_pdq",
                      perceptual=True),
    )
}
BLOCKLIST_KINDS: Mapping[str, BlocklistKind] = MappingProxyType(_REGISTRY)  # live, read-only: register_kind adds
KINDS: tuple[str, ...] = tuple(KindName)  # the built-in ones, in the order help and errors list them


def blocklist_kind(name: str) -> BlocklistKind:
    """The registered kind ``name``; BlocklistError naming the valid ones if there is none."""
    kind = _REGISTRY.get(name)
    if kind is None:
        raise BlocklistError(f"unknown blocklist kind {name!r}; valid kinds: {', '.join(_REGISTRY)}")
    return kind


def register_kind(kind: BlocklistKind) -> BlocklistKind:
    """Add a kind at run time (a plugin, a test); its match query must be in ``queries/`` when a build uses it."""
    if kind.name in _REGISTRY:
        raise ValueError(f"blocklist kind {kind.name!r} is already registered")
    _REGISTRY[kind.name] = kind
    return kind


def unregister_kind(name: str) -> None:
    """Remove a kind added with ``register_kind``; the built-in ones stay."""
    if name in KINDS:
        raise ValueError(f"blocklist kind {name!r} is built in")
    del _REGISTRY[name]
