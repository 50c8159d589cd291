"""canonical.py and queries/canonical/: the SQL macro and the Python reference agree, on hand-written
vectors (expected outputs written by hand, not computed by the code under test) and on random URLs;
canonicalisation is idempotent."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relake.canonical import (
    CANONICAL_RULE,
    CANONICAL_VERSION,
    MACRO_QUERIES,
    canonical_url,
    register_canonical,
    url_sha256,
)
from relake.sql import all_queries

LONG_PATH = "a" * 10_000

# (input, expected canonical form), written by hand.
VECTORS: list[tuple[str | None, str | None]] = [
    # already canonical (the SQL fast path)
    ("http://example.com/a.jpg", "http://example.com/a.jpg"),
    (
        "https://img-1.example.co.uk/wp_content/2019/a%20b%C3%A9.jpg?w=1&h=2",
        "https://img-1.example.co.uk/wp_content/2019/a%20b%C3%A9.jpg?w=1&h=2",
    ),
    # NULL, empty, blank
    (None, None),
    ("", None),
    ("   \t\r\n ", None),
    # whitespace around (spaces, tabs, CR/LF), kept inside
    ("  http://example.com/a.jpg\t\r\n", "http://example.com/a.jpg"),
    ("\n\thttp://example.com/a b.jpg ", "http://example.com/a b.jpg"),
    ("http://example.com/a\nb.jpg", "http://example.com/a\nb.jpg"),
    ("\x0bhttp://example.com/x\x0c", "http://example.com/x"),
    ("http://example.com/x\x01", "http://example.com/x\x01"),
    # scheme and host lower-cased, nothing else
    ("HTTP://Example.COM/A.JPG", "http://example.com/A.JPG"),
    ("HtTpS://WWW.Example.com/Path/To/IMG.png?Q=Big", "https://www.example.com/Path/To/IMG.png?Q=Big"),
    ("Svn+SSH://Host.Example/x", "svn+ssh://host.example/x"),
    ("hTtPs://EXAMPLE.com./x", "https://example.com./x"),
    # no scheme://: opaque, only trimmed
    ("example.com/a.jpg", "example.com/a.jpg"),
    ("  Example.COM/A.jpg#frag ", "Example.COM/A.jpg#frag"),
    ("//Example.com/a.jpg", "//Example.com/a.jpg"),
    ("data:image/png;base64,AAA=", "data:image/png;base64,AAA="),
    ("mailto:Someone@Example.com", "mailto:Someone@Example.com"),
    ("1http://example.com/", "1http://example.com/"),
    # default ports
    ("http://example.com:80/a", "http://example.com/a"),
    ("https://example.com:443/a", "https://example.com/a"),
    ("http://example.com:443/a", "http://example.com:443/a"),
    ("https://example.com:80/a", "https://example.com:80/a"),
    ("http://example.com:8080/a", "http://example.com:8080/a"),
    ("http://example.com:080/a", "http://example.com:080/a"),
    ("http://example.com:/a", "http://example.com/a"),
    ("HTTP://EXAMPLE.COM:80", "http://example.com/"),
    ("ws://example.com:80/", "ws://example.com:80/"),
    ("FTP://Example.com:21/a", "ftp://example.com:21/a"),
    # empty path becomes '/'
    ("http://example.com", "http://example.com/"),
    ("http://example.com?q=1", "http://example.com/?q=1"),
    ("http://", "http:///"),
    ("http:///a", "http:///a"),
    ("file:///C:/x", "file:///C:/x"),
    # fragments dropped, also a '#' inside the query
    ("http://example.com/a.jpg#frag", "http://example.com/a.jpg"),
    ("http://example.com#top", "http://example.com/"),
    ("http://example.com/a?x=1#frag?y=2", "http://example.com/a?x=1"),
    ("http://example.com/a?x=#1&y=2", "http://example.com/a?x="),
    ("http://example.com/a.jpg \t#frag", "http://example.com/a.jpg"),
    ("http://example.com/a#", "http://example.com/a"),
    ("http://example.com/a?b?c=d", "http://example.com/a?b?c=d"),
    # path and query otherwise byte for byte
    ("http://example.com/a/../b/./c.jpg", "http://example.com/a/../b/./c.jpg"),
    ("http://example.com/a//b/", "http://example.com/a//b/"),
    ("http://example.com/a?b=2&a=1", "http://example.com/a?b=2&a=1"),
    ("http://example.com/фото/ünïcode.jpg?q=é", "http://example.com/фото/ünïcode.jpg?q=é"),
    ("http://example.com/a+b%20c%2B", "http://example.com/a+b%20c%2B"),
    ("http://Example.com\\a\\b", "http://example.com\\a\\b/"),
    # percent-escapes: upper-cased, unreserved ones decoded, invalid ones left as is
    ("http://example.com/%7e/%7E/%41%42%2d%2e%5f%30", "http://example.com/~/~/AB-._0"),
    ("http://example.com/%4a%6A%5a%7A%61", "http://example.com/JjZza"),
    ("http://example.com/a%2fb%2Fc", "http://example.com/a%2Fb%2Fc"),
    ("http://example.com/caf%c3%a9.jpg", "http://example.com/caf%C3%A9.jpg"),
    ("http://example.com/%aa%Ab%aB%fF%0a", "http://example.com/%AA%AB%AB%FF%0A"),
    ("http://example.com/%zz%4g%", "http://example.com/%zz%4g%"),
    ("http://example.com/100%", "http://example.com/100%"),
    ("http://example.com/a%2", "http://example.com/a%2"),
    ("http://example.com/100%25", "http://example.com/100%25"),
    ("http://example.com/%2541", "http://example.com/%2541"),
    ("http://example.com/%zz%7e%41%2f", "http://example.com/%zz~A%2F"),
    ("http://example.com/caf%C3%A9?q=%e2%82%ac#x%41", "http://example.com/caf%C3%A9?q=%E2%82%AC"),
    # ... a hex-digit escape right after an invalid '%' stays encoded (idempotence guard)
    ("http://example.com/%%34%31", "http://example.com/%%341"),
    ("http://example.com/%4%31", "http://example.com/%4%31"),
    ("http://example.com/%%7e", "http://example.com/%~"),
    ("http://example.com/%%%41%41%", "http://example.com/%%%41A%"),
    ("http://example.com/%g%41", "http://example.com/%gA"),
    # userinfo kept as is (case and escapes)
    ("http://User:PaSs@Example.com:80/a", "http://User:PaSs@example.com/a"),
    ("http://us%7eer@Example.com/", "http://us%7eer@example.com/"),
    ("http://a@b@EXAMPLE.com/", "http://a@b@example.com/"),
    ("http://user:@Example.com:/", "http://user:@example.com/"),
    # IPv6 literals
    ("http://[::1]/a", "http://[::1]/a"),
    ("http://[2001:DB8::1]:80/a", "http://[2001:db8::1]/a"),
    ("https://[2001:db8::1]:443", "https://[2001:db8::1]/"),
    ("http://[2001:db8::1]:8080/a", "http://[2001:db8::1]:8080/a"),
    ("http://[::FFFF:192.0.2.1]:/x", "http://[::ffff:192.0.2.1]/x"),
    ("http://User@[::1]:80/", "http://User@[::1]/"),
    ("http://[::1", "http://[::1/"),
    # IDN hosts to punycode (UTS #46, IDNA2008)
    ("http://bücher.de/a.jpg", "http://xn--bcher-kva.de/a.jpg"),
    ("http://BÜCHER.DE/a.jpg", "http://xn--bcher-kva.de/a.jpg"),
    ("http://BüCHer.de/a.jpg", "http://xn--bcher-kva.de/a.jpg"),
    ("https://пример.рф:443/путь/фото.jpg", "https://xn--e1afmkfd.xn--p1ai/путь/фото.jpg"),
    ("http://ПРИМЕР.РФ", "http://xn--e1afmkfd.xn--p1ai/"),
    ("http://München.example:8080/", "http://xn--mnchen-3ya.example:8080/"),
    ("http://faß.de/", "http://xn--fa-hia.de/"),
    ("http://例え.テスト/", "http://xn--r8jz45g.xn--zckzah/"),
    ("http://user:Pw@Bücher.de:80/x#y", "http://user:Pw@xn--bcher-kva.de/x"),
    ("http://xn--BCHER-KVA.de/", "http://xn--bcher-kva.de/"),
    # ... IDNA fails (underscore): only lower-cased
    ("http://Bü_cher.DE/", "http://bü_cher.de/"),
    # very long
    ("http://Example.com/" + LONG_PATH + ".jpg", "http://example.com/" + LONG_PATH + ".jpg"),
    ("http://example.com/" + "%7e" * 3000 + "%2f", "http://example.com/" + "~" * 3000 + "%2F"),
    ("http://example.com/%" + "%41" * 3000, "http://example.com/%%41" + "A" * 2999),
]


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    c = duckdb.connect(config={"threads": 2})
    register_canonical(c)
    yield c
    c.close()


def sql_canonical(con: duckdb.DuckDBPyConnection, urls: list[str | None]) -> list[str | None]:
    rows = con.execute(
        "SELECT canonical_url(u) FROM unnest($urls) WITH ORDINALITY AS t(u, i) ORDER BY i",
        {"urls": urls},
    ).fetchall()
    return [r[0] for r in rows]


def _id(v: tuple[str | None, str | None]) -> str:
    return repr(v[0])[:60]


@pytest.mark.parametrize(("url", "expected"), VECTORS, ids=[_id(v) for v in VECTORS])
def test_python_reference_matches_hand_written(url: str | None, expected: str | None) -> None:
    assert canonical_url(url) == expected


def test_sql_matches_hand_written(con: duckdb.DuckDBPyConnection) -> None:
    urls = [u for u, _ in VECTORS]
    got = sql_canonical(con, urls)
    mismatches = [(u, e, g) for (u, e), g in zip(VECTORS, got, strict=True) if g != e]
    assert not mismatches


@pytest.mark.parametrize(("url", "expected"), VECTORS, ids=[_id(v) for v in VECTORS])
def test_sql_one_value_at_a_time(con: duckdb.DuckDBPyConnection, url: str | None, expected: str | None) -> None:
    """A bound scalar (constant-folded) takes the same paths as a column."""
    assert con.execute("SELECT canonical_url($u)", {"u": url}).fetchall() == [(expected,)]


def test_hand_written_are_idempotent(con: duckdb.DuckDBPyConnection) -> None:
    expected = [e for _, e in VECTORS]
    assert [canonical_url(e) for e in expected] == expected
    assert sql_canonical(con, expected) == expected


def test_url_sha256_python_and_sql() -> None:
    want = hashlib.sha256(b"http://xn--bcher-kva.de/~").hexdigest()
    assert url_sha256("  HTTP://Bücher.DE:80/%7e#x ") == want
    assert url_sha256(None) is None
    assert url_sha256(" ") is None
    c = duckdb.connect()
    register_canonical(c)
    register_canonical(c)  # idempotent
    assert c.execute("SELECT url_sha256('  HTTP://Bücher.DE:80/%7e#x ')").fetchall() == [(want,)]
    assert c.execute("SELECT url_sha256(NULL), url_sha256('')").fetchall() == [(None, None)]


def test_macros_work_in_ordinary_queries(con: duckdb.DuckDBPyConnection) -> None:
    """Columns named like the macros' parameters do not leak into them; filters and joins work."""
    rows = con.execute(
        """
        WITH src(t, u, s, relake_p) AS (
            VALUES ('HTTP://A.com/%7e', 'x', 'y', 'z'), ('http://a.com/~#f', 'x', 'y', 'z'), (NULL, 'x', 'y', 'z')
        )
        SELECT canonical_url(t), count(*) FROM src
        WHERE canonical_url(t) IS NOT NULL GROUP BY ALL
        """
    ).fetchall()
    assert rows == [("http://a.com/~", 2)]


def test_every_canonical_query_file_is_registered() -> None:
    files = {name for name in all_queries() if name.startswith("canonical/")}
    assert files == set(MACRO_QUERIES)


def test_rule_is_documented() -> None:
    assert CANONICAL_VERSION == "1"
    for phrase in ("trim", "fragment", "idna", ":80", ":443", "unreserved", "userinfo", "idempotent"):
        assert phrase in CANONICAL_RULE


# --- random URLs from a grammar: SQL == Python reference, and idempotence --------------------------

HEX = "0123456789abcdefABCDEF"
_escape = st.builds(lambda a, b: f"%{a}{b}", st.sampled_from(HEX), st.sampled_from(HEX))
_bad_escape = st.sampled_from(["%", "%z", "%4", "%4g", "%%", "%Ä"])
_path_char = st.sampled_from([*"abzAZ09/.-_~?&=+ é€ü!$'()*,;:@[]\\", "\n", "\t"])
_path = st.lists(st.one_of(_path_char, _path_char, _escape, _bad_escape), max_size=12).map("".join)
_label = st.text(alphabet="abxXYZ09-_üÜßпРé", min_size=1, max_size=8)
_host = st.one_of(
    st.lists(_label, min_size=1, max_size=3).map(".".join),
    st.sampled_from(["[::1]", "[2001:DB8::A]", "[::1", "", "EXAMPLE.com", "example.com"]),
)
_url = st.builds(
    lambda ws1, scheme, userinfo, host, port, path, frag, ws2: f"{ws1}{scheme}{userinfo}{host}{port}{path}{frag}{ws2}",
    st.sampled_from(["", " ", "\t", "\r\n"]),
    st.sampled_from(["http://", "HTTP://", "https://", "HtTpS://", "ftp://", "ws://", "", "//", "x:"]),
    st.sampled_from(["", "", "user@", "User:Pa%7eSS@", "a@b@", "@"]),
    _host,
    st.sampled_from(["", "", ":", ":80", ":443", ":8080", ":0443", "::"]),
    st.one_of(st.just(""), _path.map(lambda p: "/" + p), _path),
    st.one_of(st.just(""), _path.map(lambda p: "#" + p)),
    st.sampled_from(["", " ", "\n", " \t"]),
)
_noise = st.text(alphabet="hHtTpPsS:/?#@[]%.aA09fF~é \t", max_size=30)
_urls = st.lists(st.one_of(_url, _url, _url, _noise), min_size=1, max_size=40)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(urls=_urls)
def test_sql_equals_python_and_is_idempotent(con: duckdb.DuckDBPyConnection, urls: list[str]) -> None:
    py = [canonical_url(u) for u in urls]
    assert [canonical_url(c) for c in py] == py
    # one query an example (binding the big macro is what costs): the URLs, then their canonical forms
    sql = sql_canonical(con, [*urls, *py])
    assert sql[: len(urls)] == py
    assert sql[len(urls) :] == py
