"""Canonical URLs: the one text that URL hashes are taken of.

The rule is implemented once in DuckDB SQL (the macros in ``queries/canonical/``, so it runs at scan
speed) and mirrored here by :func:`canonical_url`, a pure-Python reference the tests hold the SQL to.
Only IDNA has no DuckDB function: hosts with non-ASCII characters go through the Python UDF
``relake_idna``; every other URL stays in pure SQL.

Rule, version 2 (``CANONICAL_RULE`` below is the same text; bump ``CANONICAL_VERSION`` on any change,
since every stored hash depends on it):

1. Trim ASCII whitespace (space, tab, LF, VT, FF, CR) from both ends. NULL stays NULL; a string that
   is empty after trimming becomes NULL (it matches nothing).
2. A URL that does not start with ``scheme://`` (scheme = a letter, then letters, digits, ``+ - .``)
   is opaque: the trimmed string is its canonical form; nothing else changes. That covers
   ``example.com/x.jpg``, ``//host/x``, ``data:...`` and ``mailto:...``.
3. Otherwise the URL splits into scheme, authority (after ``://`` up to the first ``/``, ``?`` or
   ``#``), path-and-query (up to the first ``#``) and fragment. The fragment, from the first ``#``
   on (also a ``#`` inside the query), is dropped, then trailing whitespace is trimmed again.
4. The scheme is lower-cased.
5. Authority: userinfo (everything up to the last ``@``) is kept as is, case and escapes included.
   The host is a bracketed IPv6 literal (from a leading ``[`` to the first ``]``) or runs up to the
   first ``:``; what follows is the port part. The host is lower-cased; a host with any non-ASCII
   character is instead converted label by label to punycode with ``idna.encode(host, uts46=True)``
   (UTS #46 mapping, IDNA2008, which lower-cases too), or just lower-cased when that conversion fails.
   An empty port (``host:``) and the default port (``:80`` for http, ``:443`` for https; compared as
   text, so ``:080`` is kept) are dropped; any other port part is kept as is. No trailing-dot or
   IP-address normalisation.
6. An empty path becomes ``/`` (``http://a.com`` and ``http://a.com?q`` become ``http://a.com/`` and
   ``http://a.com/?q``), for every scheme.
7. The path and query (not the userinfo or host) are rewritten as bytes (their UTF-8 encoding), left
   to right, in one pass: each escape is decoded once, never again.

   - A valid escape ``%XY`` (``X``, ``Y`` hex digits of either case) stands for the byte ``0xXY``.
     It becomes that character when the byte is an *ordinary* character: printable ASCII (0x21-0x7E)
     other than ``%`` and the RFC 3986 reserved characters ``: / ? # [ ] @ ! $ & ' ( ) * + , ; =``
     (``%41`` -> ``A``, ``%7e`` -> ``~``, ``%22`` -> ``"``, ``%5C`` -> backslash). Any other byte stays
     ``%XY`` with upper-case digits (``%2f`` -> ``%2F``, ``%c3%a9`` -> ``%C3%A9``, ``%25`` -> ``%25``).
   - A ``%`` not followed by two hex digits becomes ``%25`` (``100%`` -> ``100%25``, ``%zz`` ->
     ``%25zz``), so a raw ``%`` equals its escape.
   - Every other byte is kept, except ``#`` and the bytes <= 0x20 (space, controls) and >= 0x7F (DEL
     and every byte of a non-ASCII character), which become ``%XX`` with upper-case digits.

   So a raw character and its escape agree (``a b`` = ``a%20b``; ``©`` = ``%C2%A9`` = ``%c2%a9``), the
   canonical path and query are printable ASCII, and the rule is idempotent. A decoded byte that is
   not valid UTF-8 on its own (``%C3`` alone) is just re-escaped: nothing is ever decoded to text.
   Whitespace that rules 1 and 3 trim is gone before this step: a trailing ``%20`` stays, a trailing
   space does not (as in GSB).
8. Nothing else in the path and query changes: an escaped reserved character is another URL for its
   server than the raw one and stays escaped (``%2F`` != ``/``, ``%3F`` != ``?``, ``%26`` != ``&``,
   ``%2B`` != ``+``; ``+`` is not a space); no ``.``/``..`` resolution, no ``//`` collapse, no
   trailing-slash change, no query reordering, no case change.

Version 1 (before issue #14) kept raw spaces and non-ASCII characters and decoded only
escapes of unreserved characters, so ``a b`` and ``a%20b`` had different hashes; hashes of the two
versions never match (manifests record the version, and one of another version is refused).

Differences from Google Safe Browsing's canonicalisation (v4 "URLs and Hashing", the reference for
rule 7; its published examples are in ``tests/test_canonical.py``, with the ones relake answers
differently and why):

- One unescape, not "until stable": servers decode once, so ``%2525`` (a literal ``%25``) and the
  double-escaped names real URLs contain (``%252520``) are kept (GSB: ``%2525`` -> ``%25``).
- Escapes of the reserved characters stay escaped (GSB decodes them): decoding ``%2F``, ``%3F`` or
  ``%26`` changes what the server sees.
- Tab, CR and LF inside the URL are escaped, not removed (the HTTP client img2dataset uses escapes
  them too).
- The host is not unescaped or escaped, leading, trailing and repeated dots are kept, and IPv4/IPv6
  literals are not normalised (``http://3279880203/``); non-ASCII hosts go to punycode instead.
- Only the scheme's default port is dropped (GSB drops every port).
- No ``.``/``..`` resolution and no ``//`` collapse in the path (left to servers, which differ).
- No scheme is guessed for a URL without one (``www.google.com/`` is opaque); userinfo is kept.

``url_sha256`` is the lower-case hex sha256 of the canonical form's UTF-8 bytes.

How the SQL runs fast (each macro file says more):

- One RE2 full match recognises a URL that is already canonical (lower-case http-like head, plain
  host, non-empty path of printable ASCII without ``#``, ``%`` only in upper-case escapes that rule 7
  keeps) and returns it untouched; that is most of a LAION-like column.
- Everything else is taken apart with short anchored regexes and plain string functions, each
  evaluated about once per row. No lambdas on that path: DuckDB rebuilds a lambda's expression state
  for every vector, which costs microseconds per vector even when a single row needs it.
- The path and query are only touched when they would change (a raw byte <= 0x20 or >= 0x7F, found
  with ``strlen <> length`` and one ASCII class; a ``%`` not starting an escape in canonical form), and
  each step only where it may change something. Raw bytes are escaped from DuckDB's text rendering
  of the string as a BLOB (a backslash, x and two hex digits per such byte) with plain ``replace``
  calls. With valid escapes, the ones to keep are protected as ``%25XY`` and one ``url_decode``
  decodes the rest. Only strings with a ``%`` that starts no escape (rare) take ``url_encode``, two
  ``regexp_replace`` passes and one ``url_decode``. ``url_decode`` only ever decodes ASCII bytes, so
  it never meets invalid UTF-8.
- ``relake_idna`` (Python, cached per host) is called only for hosts with non-ASCII characters.

The macros name their argument many times (a few are evaluated per row): pass a column or a cheap
expression, and use a CTE rather than nesting ``canonical_url(canonical_url(x))``.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

import duckdb
import idna
import pyarrow as pa
from duckdb.func import FunctionNullHandling, PythonUDFType
from duckdb.sqltypes import VARCHAR

from relake.sql import query

__all__ = [
    "CANONICAL_RULE",
    "CANONICAL_VERSION",
    "MACRO_QUERIES",
    "canonical_url",
    "caption_sha256",
    "key_sha256",
    "key_text",
    "register_canonical",
    "url_sha256",
]

CANONICAL_VERSION = "2"

CANONICAL_RULE = """\
canonical URL rule v2:
1. trim ASCII whitespace (space, tab, LF, VT, FF, CR) at both ends; NULL stays NULL; empty -> NULL.
2. no 'scheme://' at the start (scheme = letter then letters, digits, + - .): opaque, only trimmed.
3. split scheme :// authority (to the first / ? #) path-and-query (to the first #) #fragment;
   drop the fragment (from the first '#', even inside the query), then trim trailing whitespace again.
4. lower-case the scheme.
5. authority: userinfo up to the last '@' kept as is; host = '[...]' IPv6 literal or up to the first
   ':', lower-cased, or if it has non-ASCII characters idna.encode(host, uts46=True) (lower-cased when
   that fails); drop an empty port and the default port (http :80, https :443, compared as text);
   keep any other port part as is.
6. an empty path becomes '/' (also before a query).
7. path and query, as UTF-8 bytes, left to right, one pass (each escape decoded once): a valid escape
   %XY (X, Y hex digits) becomes its byte if that is printable ASCII (0x21-0x7E) other than '%' and the
   reserved : / ? # [ ] @ ! $ & ' ( ) * + , ; = and else stays %XY with upper-case digits; a '%' not
   followed by two hex digits becomes %25; other bytes are kept, except '#' and bytes <= 0x20 or
   >= 0x7F, which become %XX (upper-case). Raw and escaped spellings agree (a b = a%20b,
   (c) = %C2%A9 = %c2%a9); the result is idempotent.
8. all else kept: reserved characters stay escaped or raw as written, no dot-segment resolution, no
   '//' collapse, no trailing-slash or query changes, '+' is not a space.
Differences from Google Safe Browsing: one unescape (not repeated), reserved escapes kept, tab/CR/LF
escaped (not removed), no host unescaping, dot or IP normalisation, non-default ports kept, no path
resolution, no scheme guessing for opaque URLs, userinfo kept.
url_sha256 = lower-case hex sha256 of the canonical URL's UTF-8 bytes.
"""

# The macro files, in the order they are created (helpers first).
MACRO_QUERIES = (
    "canonical/pct_upper_hex",
    "canonical/pct_decode",
    "canonical/pct_escape_raw",
    "canonical/pct_escape_bytes",
    "canonical/rest",
    "canonical/path_query",
    "canonical/host",
    "canonical/port",
    "canonical/authority",
    "canonical/head",
    "canonical/canonical_trimmed",
    "canonical/canonical_url",
    "canonical/url_sha256",
    "canonical/key_text",
    "canonical/caption_sha256",
    "canonical/key_sha256",
)

_WHITESPACE = " \t\n\x0b\x0c\r"
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://([^/?#]*)([^#]*)")
_AUTHORITY = re.compile(r"(.*@)?(\[[^\]]*\]|[^:]*)(.*)", re.DOTALL)
_HEX_BYTES = frozenset(b"0123456789ABCDEFabcdef")
# Bytes an escape is decoded to (rule 7): printable ASCII but '%' and the RFC 3986 reserved characters.
_ORDINARY = frozenset(range(0x21, 0x7F)) - frozenset(b"%:/?#[]@!$&'()*+,;=")
# Raw bytes kept as they are: printable ASCII but '%' (always an escape's start) and '#'.
_LITERAL = frozenset(range(0x21, 0x7F)) - frozenset(b"%#")
_DEFAULT_PORTS = {"http": ":80", "https": ":443"}


def canonical_url(url: str | None) -> str | None:
    """The canonical form of ``url`` under ``CANONICAL_RULE`` (pure Python reference)."""
    if url is None:
        return None
    text = url.strip(_WHITESPACE)
    if not text:
        return None
    match = _URL.match(text)
    if match is None:
        return text
    scheme, authority, rest = match.groups()
    scheme = scheme.lower()
    rest = rest.rstrip(_WHITESPACE)
    path = "/" + rest if rest == "" or rest.startswith("?") else rest
    return f"{scheme}://{_canonical_authority(authority, scheme)}{_normalize_escapes(path)}"


def url_sha256(url: str | None) -> str | None:
    """Lower-case hex sha256 of ``canonical_url(url)`` in UTF-8; None when that is None."""
    canonical = canonical_url(url)
    return None if canonical is None else hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# Row identities of the removal manifest (format relake.manifest/2), mirrored from queries/canonical/
# key_text.sql, caption_sha256.sql and key_sha256.sql: the SQL is what relake runs, these are what tests and
# third parties can check it against.
_DECIMAL = re.compile(r"[+-]?[0-9]+")


def key_text(key: object) -> str | None:
    """A row id as text that agrees across types: ``12``, ``'12'``, ``'012'`` and ``'+12'`` all give ``'12'``
    (``-12`` and ``'-012'`` give ``'-12'``; ``'-0'`` gives ``'0'``); other text is only trimmed (of spaces,
    as DuckDB's ``trim``)."""
    if key is None:
        return None
    s = str(key).strip(" ")
    if not _DECIMAL.fullmatch(s):
        return s
    digits = s.lstrip("+-").lstrip("0")
    if not digits:
        return "0"
    return ("-" if s.startswith("-") else "") + digits


def caption_sha256(url_hash: str | None, caption: str | None) -> str | None:
    """sha256 of ``'relake.caption/1\\n' + url_hash + ('N' if caption is None else 'S' + caption)``."""
    if url_hash is None:
        return None
    tail = "N" if caption is None else "S" + caption
    return hashlib.sha256(f"relake.caption/1\n{url_hash}{tail}".encode()).hexdigest()


def key_sha256(caption_hash: str | None, key: object) -> str | None:
    """sha256 of ``'relake.key/1\\n' + caption_hash + ('N' if key is None else 'S' + key_text(key))``."""
    if caption_hash is None:
        return None
    k = key_text(key)
    tail = "N" if k is None else "S" + k
    return hashlib.sha256(f"relake.key/1\n{caption_hash}{tail}".encode()).hexdigest()


def register_canonical(con: duckdb.DuckDBPyConnection) -> None:
    """Make ``canonical_url(x)`` and ``url_sha256(x)`` usable in SQL on ``con`` (idempotent).

    Registers the ``relake_idna`` UDF (vectorised over Arrow) and creates the temporary macros of
    ``queries/canonical/``. The macros are TEMP: they live with the connection, never in a database
    file that could be opened later without the UDF.
    """
    registered = con.execute("SELECT 1 FROM duckdb_functions() WHERE function_name = 'relake_idna'").fetchall()
    if not registered:
        con.create_function(
            "relake_idna",
            _idna_arrow,
            [VARCHAR],
            VARCHAR,
            type=PythonUDFType.ARROW,
            null_handling=FunctionNullHandling.SPECIAL,
            side_effects=False,
        )
    for name in MACRO_QUERIES:
        query(name).run(con)


@lru_cache(maxsize=1 << 16)
def _idna_host(host: str) -> str:
    """A host with non-ASCII characters as punycode (UTS #46), or lower-cased when that fails.

    Cached: the ``idna`` package is pure Python (tens of microseconds a host) and hosts repeat.
    The SQL calls it (as the ``relake_idna`` UDF) only for hosts with non-ASCII characters.
    """
    if host.isascii():
        return host.lower()
    try:
        return str(idna.encode(host, uts46=True).decode("ascii"))
    except (UnicodeError, ValueError):
        return host.lower()


def _idna_arrow(hosts: pa.Array) -> pa.Array:
    return pa.array(
        [None if h is None else _idna_host(h) for h in hosts.to_pylist()],
        type=pa.string(),
    )


def _canonical_authority(authority: str, scheme: str) -> str:
    match = _AUTHORITY.fullmatch(authority)
    assert match is not None  # every string matches: all three groups may be empty
    userinfo, host, port = match.groups()
    host = host.lower() if host.isascii() else _idna_host(host)
    if port in ("", ":") or port == _DEFAULT_PORTS.get(scheme):
        port = ""
    return f"{userinfo or ''}{host}{port}"


def _normalize_escapes(text: str) -> str:
    """Rule 7 on bytes, left to right (the SQL works differently; the tests hold the two together)."""
    if text.isascii() and "%" not in text and "#" not in text and text.isprintable() and " " not in text:
        return text
    data = text.encode("utf-8")
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        byte = data[i]
        if byte == 0x25 and i + 2 < n and data[i + 1] in _HEX_BYTES and data[i + 2] in _HEX_BYTES:
            byte = int(data[i + 1 : i + 3], 16)
            i += 3
            keep = byte in _ORDINARY
        else:
            i += 1
            keep = byte in _LITERAL
        if keep:
            out.append(byte)
        else:
            out += b"%%%02X" % byte
    return out.decode("ascii")
