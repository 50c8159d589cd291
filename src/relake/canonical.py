"""Canonical URLs: the one text that URL hashes are taken of.

The rule is implemented once in DuckDB SQL (the macros in ``queries/canonical/``, so it runs at scan
speed) and mirrored here by :func:`canonical_url`, a pure-Python reference the tests hold the SQL to.
Only IDNA has no DuckDB function: hosts with non-ASCII characters go through the Python UDF
``relake_idna``; every other URL stays in pure SQL.

Rule, version 1 (``CANONICAL_RULE`` below is the same text; bump ``CANONICAL_VERSION`` on any change,
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
7. Percent-escapes in the path and query (not in userinfo or host): a ``%`` followed by two hex
   digits has its digits upper-cased (``%2f`` -> ``%2F``, ``%c3%a9`` -> ``%C3%A9``), and is decoded
   when it encodes an unreserved character ``A-Z a-z 0-9 - . _ ~`` (``%7e`` -> ``~``, ``%41`` -> ``A``).
   A ``%`` not followed by two hex digits is left as is (``%zz``, a trailing ``%``). One exception
   keeps the rule idempotent: an escape of a hex digit (``0-9 A-F a-f``) that directly follows such
   an invalid ``%``, or an invalid ``%`` and one hex digit, stays encoded (``%%34`` stays ``%%34``
   rather than becoming ``%4``; ``%4%31`` stays, rather than becoming the new escape ``%41``).
8. Everything else in the path and query is kept byte for byte: no ``.``/``..`` resolution, no
   trailing-slash change, no query reordering, no case change, no encoding of non-ASCII characters,
   spaces or backslashes.

``url_sha256`` is the lower-case hex sha256 of the canonical form's UTF-8 bytes.

How the SQL runs fast (each macro file says more):

- One RE2 full match recognises a URL that is already canonical (lower-case http-like head, plain
  host, non-empty path, no ``#``, only upper-case escapes of reserved or non-ASCII bytes) and returns
  it untouched; that is most of a LAION-like column.
- Everything else is taken apart with short anchored regexes and plain string functions, each
  evaluated about once per row. No lambdas on that path: DuckDB rebuilds a lambda's expression state
  for every vector, which costs microseconds per vector even when a single row needs it.
- Escapes are only touched when some escape would change. When every ``%`` starts a valid escape,
  the non-unreserved escapes are protected as ``%25XY`` and one ``url_decode`` does the rest; only
  strings that also hold an invalid ``%`` take the slower split-on-``%`` lambda with the guard.
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
    "register_canonical",
    "url_sha256",
]

CANONICAL_VERSION = "1"

CANONICAL_RULE = """\
canonical URL rule v1:
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
7. path and query percent-escapes (%XX, X hex): upper-case the hex digits; decode escapes of unreserved
   characters A-Z a-z 0-9 - . _ ~; leave a '%' not followed by two hex digits as is; except that an
   escape of a hex digit right after such an invalid '%' (or an invalid '%' and one hex digit) stays
   encoded, so that the rule is idempotent.
8. all else kept byte for byte: no dot-segment resolution, no trailing-slash or query changes,
   no encoding of non-ASCII characters.
url_sha256 = lower-case hex sha256 of the canonical URL's UTF-8 bytes.
"""

# The macro files, in the order they are created (helpers first).
MACRO_QUERIES = (
    "canonical/pct_upper_hex",
    "canonical/pct_decode",
    "canonical/pct_normalize_guarded",
    "canonical/rest",
    "canonical/path_query",
    "canonical/host",
    "canonical/port",
    "canonical/authority",
    "canonical/head",
    "canonical/canonical_trimmed",
    "canonical/canonical_url",
    "canonical/url_sha256",
)

_WHITESPACE = " \t\n\x0b\x0c\r"
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://([^/?#]*)([^#]*)")
_AUTHORITY = re.compile(r"(.*@)?(\[[^\]]*\]|[^:]*)(.*)", re.DOTALL)
_HEX = frozenset("0123456789ABCDEFabcdef")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
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
    """Rule 7, scanning left to right (the SQL works differently; the tests hold the two together)."""
    if "%" not in text:
        return text
    out: list[str] = []
    last_invalid = -10  # index of the last '%' not followed by two hex digits
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char != "%":
            out.append(char)
            i += 1
            continue
        digits = text[i + 1 : i + 3]
        if len(digits) < 2 or not (digits[0] in _HEX and digits[1] in _HEX):
            last_invalid = i
            out.append("%")
            i += 1
            continue
        decoded = chr(int(digits, 16))
        guarded = i - last_invalid == 1 or (i - last_invalid == 2 and text[i - 1] in _HEX)
        if decoded in _UNRESERVED and not (guarded and decoded in _HEX):
            out.append(decoded)
        else:
            out.append("%" + digits.upper())
        i += 3
    return "".join(out)
