"""The SQL in ``queries/``: one statement per file, loaded through DuckDB's own parser.

Every file opens with a comment block; its ``-- params:`` line declares the ``$name``
parameters the statement uses (``-- params: none`` when it has none). At load time the
declaration is checked against ``named_parameters`` from DuckDB's parser, and every call
must pass exactly the declared names, so a typo fails in the test suite, not in production.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import duckdb

from relake.errors import QueryError, duckdb_errors

_PARAMS_LINE = re.compile(r"^--\s*params:\s*(.*)$", re.IGNORECASE | re.MULTILINE)


def queries_dir() -> Traversable:
    """The package's ``queries/`` folder (``relake/queries`` inside the package; a checkout's top-level
    ``queries`` is a link to it), read through ``importlib.resources`` so it works from a wheel too."""
    root = resources.files("relake") / "queries"
    if not root.is_dir():
        raise QueryError(f"cannot find relake's queries/ folder ({root}); reinstall relake")
    return root


def _sql_files(folder: Traversable, prefix: str = "") -> Iterator[tuple[str, Traversable]]:
    """``(name, file)`` for every ``.sql`` file below ``folder``, names like ``build/match_url``, sorted."""
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            yield from _sql_files(entry, f"{prefix}{entry.name}/")
        elif entry.name.endswith(".sql"):
            yield f"{prefix}{entry.name[: -len('.sql')]}", entry


@dataclass(frozen=True)
class Query:
    name: str  # e.g. "ingest/shard_stats"
    text: str
    params: frozenset[str]
    sha256: str
    doc: str

    def run(self, con: duckdb.DuckDBPyConnection, **params: Any) -> duckdb.DuckDBPyConnection:
        """Execute with exactly the declared parameters (values are bound, never formatted)."""
        self._check(params)
        return con.execute(self.text, params) if params else con.execute(self.text)

    def _check(self, params: dict[str, Any]) -> None:
        given = frozenset(params)
        if given != self.params:
            missing = sorted(self.params - given)
            extra = sorted(given - self.params)
            raise QueryError(f"query {self.name}: missing params {missing}, unexpected params {extra}")

    def relation(self, con: duckdb.DuckDBPyConnection, **params: Any) -> duckdb.DuckDBPyRelation:
        """A lazy relation (for streaming to Arrow), with exactly the declared parameters bound."""
        self._check(params)
        return con.sql(self.text, params=params) if params else con.sql(self.text)

    def rows(self, con: duckdb.DuckDBPyConnection, **params: Any) -> list[tuple[Any, ...]]:
        return self.run(con, **params).fetchall()


def parse_query(name: str, text: str, con: duckdb.DuckDBPyConnection | None = None) -> Query:
    """Parse one file: exactly one statement, declared params equal to the parser's. Pass ``con`` to reuse
    one connection when parsing many files (opening a DuckDB connection costs ~20 ms)."""
    own = con is None
    parser = duckdb.connect() if con is None else con
    try:
        with duckdb_errors(f"query {name}: does not parse:", as_=QueryError):
            statements = parser.extract_statements(text)
    finally:
        if own:
            parser.close()
    if len(statements) != 1:
        raise QueryError(f"query {name}: expected exactly one statement, found {len(statements)}")
    doc_lines = []
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        doc_lines.append(line[2:].strip())
    match = _PARAMS_LINE.search("\n".join(f"-- {d}" for d in doc_lines))
    if match is None:
        raise QueryError(f"query {name}: the opening comment lacks a '-- params:' line")
    declared_text = match.group(1).strip()
    declared = (
        frozenset()
        if declared_text.lower() == "none"
        else frozenset(p.strip().lstrip("$") for p in declared_text.split(",") if p.strip())
    )
    found = frozenset(statements[0].named_parameters)
    if declared != found:
        raise QueryError(
            f"query {name}: declares params {sorted(declared)} but uses {sorted(found)}"
        )
    return Query(
        name=name,
        text=text,
        params=declared,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        doc="\n".join(doc_lines),
    )


# The queries parsed so far, by name: query() parses a file the first time it is asked for (a command runs a few of
# the ~150), all_queries() the rest, and returns this dict (so an entry a test swaps in is what query() gives).
_LOADED: dict[str, Query] = {}
_PARSERS: dict[int, duckdb.DuckDBPyConnection] = {}  # the database files are parsed on, by process (a fork: its own)


def _load(name: str, entry: Traversable) -> Query:
    """Parse one file on a cursor of this process's parsing database, opened the first time (opening a database
    costs ~20 ms, a cursor ~0.03 ms; a cursor per parse lets threads load queries at once)."""
    base = _PARSERS.get(os.getpid())
    if base is None:
        base = _PARSERS[os.getpid()] = duckdb.connect()
    cursor = base.cursor()
    try:
        return parse_query(name, entry.read_text(encoding="utf-8"), cursor)
    finally:
        cursor.close()


@cache
def all_queries() -> dict[str, Query]:
    """Every query of ``queries/``, each parsed and checked, in file order."""
    every = {name: _LOADED.get(name) or _load(name, entry) for name, entry in _sql_files(queries_dir())}
    _LOADED.clear()
    _LOADED.update(every)
    return _LOADED


def query(name: str) -> Query:
    """The query of ``queries/<name>.sql``; its file is parsed and checked the first time it is asked for."""
    found = _LOADED.get(name)
    if found is None:
        parts = name.split("/")
        entry = queries_dir().joinpath(*parts[:-1], parts[-1] + ".sql")
        if any(part in ("", ".", "..") for part in parts) or not entry.is_file():
            raise QueryError(f"no query named {name!r} in {queries_dir()}")
        found = _LOADED[name] = _load(name, entry)
    return found


def query_hashes(names: list[str]) -> dict[str, str]:
    return {n: query(n).sha256 for n in sorted(set(names))}
