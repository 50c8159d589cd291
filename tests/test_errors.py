"""DuckDB's errors are translated in one place (errors.py): real DuckDB errors map to relake's classes with row values
withheld, an interrupted query ends as the interrupt, and no other module catches a DuckDB error itself."""

from __future__ import annotations

import ast
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import duckdb
import pytest
from typer.testing import Result

import relake.fingerprint
from helpers import Cli, error_line
from relake.db import Db, connect
from relake.engine import RayEngine, get_engine, task_error
from relake.errors import (
    EngineError,
    InputError,
    QueryError,
    RelakeError,
    ResourceError,
    SpecError,
    duckdb_errors,
    duckdb_resources,
    first_line,
    from_duckdb,
)
from relake.record import Fingerprint

SRC = Path(__file__).resolve().parents[1] / "src" / "relake"
# a GROUP BY whose groups hold far more than 1 MB of strings: DuckDB runs out of memory at once under a 1 MB limit
BIG = "SELECT i % 100000 AS k, string_agg(i::VARCHAR, ',') FROM range(1000000) t(i) GROUP BY k"
ENDLESS = "SELECT count(*) FROM range(1000000000000) t(i) WHERE hash(i) % 7 = 1"


def duckdb_error(sql: str, con: duckdb.DuckDBPyConnection | None = None) -> duckdb.Error:
    """The error DuckDB raises for ``sql`` (a test of the translator starts from a real one)."""
    con = con or duckdb.connect()
    with pytest.raises(duckdb.Error) as info:
        con.execute(sql).fetchall()
    return info.value


# --- the translator on real DuckDB errors --------------------------------------------------------------------------


def test_out_of_memory_is_a_resource_error_with_advice() -> None:
    exc = duckdb_error(BIG, duckdb.connect(config={"memory_limit": "1MB", "threads": 1}))
    assert isinstance(exc, duckdb.OutOfMemoryException)
    err = from_duckdb(exc, "x.parquet: cannot scan", spill="/lake/tmp")
    assert type(err) is ResourceError
    assert str(err).startswith("x.parquet: cannot scan: DuckDB ran out of memory or disk space (Out of Memory Error: ")
    assert "raise --memory-limit, or free disk space in /lake/tmp" in str(err)
    assert "\n" not in str(err)


def test_a_full_disk_is_a_resource_error_and_other_io_errors_name_the_file(tmp_path: Path) -> None:
    full = duckdb.IOException('IO Error: Could not write file "/lake/tmp/x.block": No space left on device')
    assert type(from_duckdb(full, "building from orig failed:", as_=SpecError)) is ResourceError
    missing = tmp_path / "missing.parquet"
    exc = duckdb_error(f"SELECT * FROM read_parquet('{missing}')")  # noqa: S608  (a test's own path)
    assert isinstance(exc, duckdb.IOException)
    err = from_duckdb(exc, "rule 'r' failed:", as_=SpecError)  # an unreadable file is an input error, even in a rule
    assert type(err) is InputError
    assert str(missing) in str(err) and str(err).startswith("rule 'r' failed: IO Error: ")


@pytest.mark.parametrize(
    ("sql", "secret"),
    [
        ("SELECT CAST('secret-value-123' AS INTEGER)", "secret-value-123"),  # quoted string
        ("SELECT CAST('http://img.example.com/a.jpg' AS DATE)", "example"),  # quoted, after a colon
        ("SELECT CAST(12345678901 AS INTEGER)", "12345678901"),  # "with value N"
        ("SELECT CAST(-987654 AS UTINYINT)", "987654"),
        ("SELECT CAST(98765432109876543210.5 AS DECIMAL(18,3))", "98765432109876543210"),
        ("SELECT 2147480001::INTEGER * 7", "2147480001"),  # an overflow quotes both operands
        ("SELECT make_date(2020, 97, 1)", "97"),  # "Date out of range: 2020-97-1", unquoted
        ("SELECT strptime('secret 2020', '%Y-%m-%d')", "secret"),  # an invalid-input error: "string '...'"
    ],
)
def test_row_values_in_messages_are_withheld(sql: str, secret: str) -> None:
    exc = duckdb_error(sql)
    assert secret in str(exc)  # DuckDB does quote it
    err = from_duckdb(exc, "x.parquet: cannot scan")
    assert type(err) is InputError
    assert secret not in str(err) and "(withheld)" in str(err)
    assert str(err).startswith("x.parquet: cannot scan (")


def test_first_line_keeps_code_and_paths() -> None:
    """Planning errors quote the SQL's own names and I/O errors the file: both stay readable."""
    assert first_line(duckdb_error("SELECT nosuch FROM range(3)")) == (
        'Binder Error: Referenced column "nosuch" not found in FROM clause!')
    assert first_line(duckdb_error("SELECT CAST(9.99 AS DECIMAL(2,1))")).startswith(
        "Conversion Error: Casting value (withheld) to type DECIMAL(2,1)")  # the type's own numbers stay
    assert first_line(ValueError("")) == "ValueError"


def test_strict_cuts_at_the_first_quote_but_planning_errors_keep_their_names() -> None:
    parse = duckdb_error("SELECT strptime('x', '%Y-%m-%d')")
    strict = str(from_duckdb(parse, "rule 'r': 'where' failed:", as_=SpecError, strict=True))
    assert "%Y" not in strict and strict.endswith("(value withheld)")
    binder = duckdb_error("SELECT nosuch FROM range(3)")
    err = from_duckdb(binder, "failed:", as_=SpecError, strict=True, planning="rule 'r': 'where' is not valid:")
    assert type(err) is SpecError and str(err) == ("rule 'r': 'where' is not valid: Binder Error: Referenced column "
                                                   '"nosuch" not found in FROM clause!')


def test_duckdb_errors_raises_the_sites_class_and_runs_its_check_first() -> None:
    with pytest.raises(QueryError, match=r"^query t/x: does not parse: Parser Error: syntax error at or near"):
        with duckdb_errors("query t/x: does not parse:", as_=QueryError):
            duckdb.connect().extract_statements("SELEC 1")
    def changed() -> None:
        raise InputError("a base shard changed")

    with pytest.raises(InputError, match="a base shard changed"):  # the check's error wins over the translation
        with duckdb_errors("building failed:", check=changed):
            duckdb.connect().execute("SELECT CAST('x' AS INTEGER)").fetchall()
    with pytest.raises(ValueError, match="not DuckDB's"):  # anything else passes unchanged
        with duckdb_errors("x"):
            raise ValueError("not DuckDB's")
    with pytest.raises(RuntimeError, match="another runtime error"):
        with duckdb_errors("x"):
            raise RuntimeError("another runtime error")


# --- interrupts ----------------------------------------------------------------------------------------------------


@contextmanager
def interrupting(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Interrupt ``con``'s query (``interrupt()``, as DuckDB does on a signal) until the block ends."""
    done = threading.Event()

    def keep_interrupting() -> None:
        while not done.wait(0.02):
            con.interrupt()

    thread = threading.Thread(target=keep_interrupting)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def test_an_interrupted_query_is_a_keyboard_interrupt_not_a_data_error() -> None:
    con = duckdb.connect(config={"threads": 1})
    with pytest.raises(KeyboardInterrupt) as info:
        with duckdb_errors("x.parquet: cannot scan"), interrupting(con):
            con.execute(ENDLESS).fetchall()
    assert isinstance(info.value.__cause__, duckdb.InterruptException)
    with pytest.raises(KeyboardInterrupt):  # what DuckDB raises when a signal stops a query
        with duckdb_resources():
            raise RuntimeError("Query interrupted")


def test_a_connection_translates_only_resources_and_interrupts(tmp_path: Path) -> None:
    with pytest.raises(ResourceError, match=r"^DuckDB ran out of memory or disk space \(Out of Memory Error: .*"
                                            r"free disk space in /"):
        with connect(memory_limit="1MB", threads=1) as db:
            db.con.execute(BIG).fetchall()
    with pytest.raises(duckdb.ConversionException):  # not expected this far: loud
        with connect() as db:
            db.con.execute("SELECT CAST('x' AS INTEGER)").fetchall()


def _scan_with(sql: str, before: str = "", *, interrupted: bool = False) -> Callable[[Db], Fingerprint]:
    """A stand-in for ``fingerprint_src`` whose query fails (or is interrupted) inside the command's connection."""
    def scan(db: Db) -> Fingerprint:
        if before:
            db.con.execute(before)
        with interrupting(db.con) if interrupted else nullcontext():
            db.con.execute(sql).fetchall()
        raise AssertionError("the query should have failed")

    return scan


def _fingerprint(cli: Cli, src: list[Path], *args: str) -> Result:
    return cli("fingerprint", str(src[0]), *args)


def test_cli_ends_an_interrupted_query_as_an_interrupt(
    cli: Cli, src: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(relake.fingerprint, "fingerprint_src", _scan_with(ENDLESS, interrupted=True))
    r = _fingerprint(cli, src)
    assert r.exit_code == 130, r.stderr
    assert "interrupted; nothing was published" in r.stderr and "Traceback" not in r.stderr


def test_cli_reports_out_of_memory_in_one_line(cli: Cli, src: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(relake.fingerprint, "fingerprint_src", _scan_with(BIG))
    r = _fingerprint(cli, src, "--memory-limit", "1MB")
    assert r.exit_code == 2
    assert error_line(r).startswith(f"Error: {src[0]}: cannot scan: DuckDB ran out of memory or disk space (")
    assert "raise --memory-limit" in error_line(r)


def test_cli_withholds_values_of_a_failed_scan(cli: Cli, src: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    rows = "CREATE OR REPLACE VIEW src AS SELECT 'http://s.example.com/1' AS URL"
    monkeypatch.setattr(relake.fingerprint, "fingerprint_src", _scan_with("SELECT CAST(URL AS INTEGER) FROM src", rows))
    r = _fingerprint(cli, src)
    assert r.exit_code == 2
    assert error_line(r) == (f"Error: {src[0]}: cannot scan (Conversion Error: Could not convert string (withheld) to "
                             "INT32 when casting from source column URL)")


# --- the engine's errors -------------------------------------------------------------------------------------------


def test_engine_errors_have_their_own_classes(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(EngineError, match="--ray-address only applies with --engine ray"):
        get_engine("local", "ray://head:10001")
    with pytest.raises(EngineError, match="unknown engine 'spark'"):
        get_engine("spark")
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(EngineError, match=r"pip install 'relake\[ray\]'"):
        RayEngine()


def test_a_failed_task_keeps_its_errors_class() -> None:
    err = task_error("_fingerprint_job", "a.parquet", InputError("a.parquet: cannot scan (IO Error: gone)"))
    assert type(err) is InputError
    assert str(err) == ("Ray task _fingerprint_job for a.parquet failed: InputError: a.parquet: cannot scan "
                        "(IO Error: gone); the lake is unchanged")
    oom = duckdb_error(BIG, duckdb.connect(config={"memory_limit": "1MB", "threads": 1}))
    assert type(task_error("_write_shard", "part-1", oom)) is ResourceError
    conversion = duckdb_error("SELECT CAST('secret-value-123' AS INTEGER)")
    err = task_error("_write_shard", "part-1", conversion)
    assert type(err) is InputError and "secret" not in str(err)
    assert str(err).endswith("; the lake is unchanged")
    died = task_error("_write_shard", "part-1", RuntimeError("worker died"))
    assert type(died) is EngineError and isinstance(died, RelakeError)


# --- one place -----------------------------------------------------------------------------------------------------

ALLOWED = {"errors.py"}  # the translator itself


def duckdb_handlers(source: str) -> list[int]:
    """The lines of the ``except`` clauses that name a DuckDB exception (``duckdb.X``, or a name imported from
    duckdb), alone or in a tuple."""
    tree = ast.parse(source)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.asname or a.name for a in node.names if a.name.split(".")[0] in ("duckdb", "_duckdb"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("duckdb", "_duckdb"):
            names.update(a.asname or a.name for a in node.names)
    return sorted(node.lineno for node in ast.walk(tree)
                  if isinstance(node, ast.ExceptHandler) and node.type is not None
                  and any(isinstance(n, ast.Name) and n.id in names for n in ast.walk(node.type)))


def test_the_walk_finds_every_form_of_a_duckdb_except() -> None:
    source = """
import duckdb
import duckdb as ddb
from duckdb import IOException as IOE
try:
    pass
except duckdb.Error:
    pass
except (ValueError, ddb.OutOfMemoryException):
    pass
except IOE as exc:
    pass
except ValueError:
    pass
"""
    assert duckdb_handlers(source) == [7, 9, 11]


def test_no_module_but_errors_catches_duckdb_errors() -> None:
    found = [f"{path.relative_to(SRC)}:{line}" for path in sorted(SRC.rglob("*.py"))
             if str(path.relative_to(SRC)) not in ALLOWED
             for line in duckdb_handlers(path.read_text(encoding="utf-8"))]
    assert found == [], "use relake.errors.duckdb_errors (or from_duckdb) instead of catching DuckDB errors"
