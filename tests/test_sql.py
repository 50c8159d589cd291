"""sql.py: every file in queries/ loads through DuckDB's parser with exactly its declared params;
malformed queries and wrong calls fail loudly."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from relake.errors import QueryError
from relake.sql import Query, all_queries, parse_query, queries_dir, query, query_hashes

REPO = Path(__file__).resolve().parent.parent
REPO_QUERIES = REPO / "src" / "relake" / "queries"
SQL_FILES = sorted(REPO_QUERIES.rglob("*.sql"))


def test_queries_dir_is_the_package_folder() -> None:
    assert Path(str(queries_dir())).resolve() == REPO_QUERIES.resolve()
    assert SQL_FILES, "queries/ holds no .sql files"
    # one source of truth: the checkout's top-level queries is a link to the package's folder, not a copy
    top = REPO / "queries"
    assert top.is_symlink() and top.resolve() == REPO_QUERIES.resolve()


def test_all_queries_loads_every_file() -> None:
    names = {p.relative_to(REPO_QUERIES).with_suffix("").as_posix() for p in SQL_FILES}
    assert set(all_queries()) == names


@pytest.mark.parametrize("path", SQL_FILES, ids=lambda p: p.relative_to(REPO_QUERIES).as_posix())
def test_query_file_is_one_statement_with_declared_params(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    # the opening comment: what it returns, what it reads, its params
    opening = []
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        opening.append(line)
    assert opening, f"{path}: no opening comment"
    # what it returns: "Returns: ..." (or, for an audit, "Audit (must return zero rows): ...")
    assert re.match(r"--\s*(Returns:|Audit\b)", opening[0]), f"{path}: opening comment does not say what it returns"
    assert any(re.match(r"--\s*Reads:", ln) for ln in opening), f"{path}: opening comment lacks 'Reads:'"
    params_lines = [ln for ln in opening if re.match(r"--\s*params:", ln)]
    assert len(params_lines) == 1, f"{path}: needs exactly one '-- params:' line"
    declared_text = params_lines[0].split(":", 1)[1].strip()
    declared = set() if declared_text == "none" else {p.strip().lstrip("$") for p in declared_text.split(",")}

    # independently of relake: DuckDB's own parser
    con = duckdb.connect()
    try:
        statements = con.extract_statements(text)
    finally:
        con.close()
    assert len(statements) == 1, f"{path}: {len(statements)} statements"
    assert set(statements[0].named_parameters) == declared

    q = query(path.relative_to(REPO_QUERIES).with_suffix("").as_posix())
    assert q.params == frozenset(declared)
    assert q.text == text
    assert re.fullmatch(r"[0-9a-f]{64}", q.sha256)
    assert q.doc.splitlines()[0] == opening[0][2:].strip()


GOOD = "-- Returns: one row.\n-- Reads: nothing.\n-- params: $a, $b\nSELECT $a + $b AS s\n"


def test_parse_good_query_and_run() -> None:
    q = parse_query("t/good", GOOD)
    assert q.params == {"a", "b"}
    assert q.doc == "Returns: one row.\nReads: nothing.\nparams: $a, $b"
    con = duckdb.connect()
    try:
        assert q.rows(con, a=2, b=40) == [(42,)]
        none = parse_query("t/none", "-- Returns: x\n-- params: none\nSELECT 1\n")
        assert none.params == frozenset() and none.rows(con) == [(1,)]
    finally:
        con.close()


def test_values_are_bound_not_formatted() -> None:
    q = parse_query("t/concat", "-- params: $s\nSELECT $s || '' AS s, length($s) AS n\n")
    con = duckdb.connect()
    try:
        hostile = "'); DROP TABLE x; --"
        assert q.rows(con, s=hostile) == [(hostile, len(hostile))]
    finally:
        con.close()


def test_run_rejects_missing_and_extra_params() -> None:
    q = parse_query("t/good", GOOD)
    con = duckdb.connect()
    try:
        with pytest.raises(QueryError) as info:
            q.run(con, a=1)
        assert str(info.value) == "query t/good: missing params ['b'], unexpected params []"
        with pytest.raises(QueryError) as info:
            q.run(con, a=1, b=2, c=3)
        assert str(info.value) == "query t/good: missing params [], unexpected params ['c']"
        with pytest.raises(QueryError, match=r"missing params \['a', 'b'\], unexpected params \['x'\]"):
            q.rows(con, x=1)
        with pytest.raises(QueryError):
            q.run(con)
    finally:
        con.close()
        with pytest.raises(QueryError, match=r"missing params \['names'\], unexpected params \['files'\]"):
            query("fingerprint/buckets").run(con, files=["x"])


BAD = {
    "two statements": (
        "-- params: none\nSELECT 1;\nSELECT 2;\n",
        "query t/bad: expected exactly one statement, found 2",
    ),
    "no statement": ("-- params: none\n-- just a comment\n", "query t/bad: expected exactly one statement, found 0"),
    "undeclared param": (
        "-- Returns: x\n-- params: $a\nSELECT $a, $b\n",
        "query t/bad: declares params ['a'] but uses ['a', 'b']",
    ),
    "declared but unused": (
        "-- params: $a, $typo\nSELECT $a\n",
        "query t/bad: declares params ['a', 'typo'] but uses ['a']",
    ),
    "none but uses one": ("-- params: none\nSELECT $a\n", "query t/bad: declares params [] but uses ['a']"),
    "missing params line": (
        "-- Returns: x\n-- Reads: y\nSELECT 1\n",
        "query t/bad: the opening comment lacks a '-- params:' line",
    ),
    "params line not in the opening comment": (
        "-- Returns: x\nSELECT 1\n-- params: none\n",
        "query t/bad: the opening comment lacks a '-- params:' line",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_queries_raise(case: str) -> None:
    text, message = BAD[case]
    with pytest.raises(QueryError) as info:
        parse_query("t/bad", text)
    assert str(info.value) == message


def test_unparsable_query_raises() -> None:
    with pytest.raises(QueryError, match=r"^query t/bad: does not parse: "):
        parse_query("t/bad", "-- params: none\nSELEC 1 FRM\n")


def test_unknown_query_name() -> None:
    with pytest.raises(QueryError, match=r"no query named 'nope/nothing' in "):
        query("nope/nothing")
    with pytest.raises(QueryError):
        query_hashes(["fingerprint/buckets", "nope/nothing"])


def test_a_query_name_is_a_file_below_queries_not_a_path_out_of_it() -> None:
    some = next(iter(all_queries()))
    for name in ("", "/" + some, f"{some}/", f"./{some}", f"x/../{some}", f"../queries/{some}", some + ".sql"):
        with pytest.raises(QueryError, match=r"no query named "):
            query(name)


def test_query_parses_only_the_file_asked_for_and_all_queries_the_rest() -> None:
    """A command loads the few queries it runs, not every file (a fresh process: this one has loaded them all);
    all_queries() then keeps the query already parsed, and query() reads the dict it returns."""
    code = """
import relake.sql as sql
first = sql.query("fingerprint/buckets")
print(sorted(sql._LOADED))
every = sql.all_queries()
print(every["fingerprint/buckets"] is first, sql.query("fingerprint/buckets") is first, len(every))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["['fingerprint/buckets']", f"True True {len(SQL_FILES)}"]


def test_query_hashes_are_file_sha256() -> None:
    import hashlib

    hashes = query_hashes(["ingest/shard_rows", "fingerprint/buckets", "ingest/shard_rows"])
    assert list(hashes) == ["fingerprint/buckets", "ingest/shard_rows"]
    for name, digest in hashes.items():
        assert digest == hashlib.sha256((REPO_QUERIES / f"{name}.sql").read_bytes()).hexdigest()


def test_query_is_frozen() -> None:
    q = parse_query("t/good", GOOD)
    assert isinstance(q, Query)
    with pytest.raises(AttributeError):
        q.text = "SELECT 2"  # type: ignore[misc]
