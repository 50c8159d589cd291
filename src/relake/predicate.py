"""A rule's ``where``: a deterministic boolean expression over the base's columns and ``[params]``, nothing more.

This is the only user text relake splices into SQL, so it is held to that twice:

1. **By its parse tree.** The predicate is parsed by DuckDB exactly where it will run (as the one select item of
   ``SELECT (<where>) AS relake_p, filename, file_row_number FROM base``, the very text the build's match query
   embeds as its subquery) and serialised with
   ``json_serialize_sql``. The statement must be that one select item over ``base`` and nothing else (no FROM
   of its own, no WHERE, GROUP BY, CTE, ...). Every node of the expression must be of an allowed class (columns,
   constants, ``$params``, functions, comparisons, AND/OR/NOT, IN, BETWEEN, CASE, CAST, lambdas): no subquery, no
   ``*``/``COLUMNS``, no window. Every function must be deterministic (DuckDB's ``duckdb_functions()`` says
   ``CONSISTENT`` for every overload), a relake macro, or one of a few vetted built-in macros; ``error()``,
   ``random()``, ``now()``, ``current_setting()``, ``getenv()`` and table functions are refused by name.
   Its type, bound over the base's schema with ``LIMIT 0`` (no row read), must be BOOLEAN.
2. **By where it runs.** The build's DuckDB is opened with external access off (only the lake, the base's and
   side tables' folders and relake's own temp folders are readable), extension auto-install and auto-load off, and
   its configuration locked (``db.connect(readable=...)``), so even a predicate that slipped past (1) reaches
   nothing.

Messages name the rule and the offending construct (the spec's own code), never the content of a file or row.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

import duckdb

from relake.errors import InputError, SpecError, duckdb_errors
from relake.sql import query

SLOT = "/*PREDICATE*/ SELECT FALSE AS relake_p, filename, file_row_number FROM base"  # in build/match_where.sql
_TAIL_COLUMNS = ("filename", "file_row_number")

# expression node classes a predicate may contain (json_serialize_sql's "class" values)
_ALLOWED_CLASSES = frozenset({
    "CONSTANT", "COLUMN_REF", "PARAMETER", "FUNCTION", "COMPARISON", "CONJUNCTION", "OPERATOR", "CASE", "CAST",
    "BETWEEN", "LAMBDA", "LAMBDA_REF", "COLLATE", "TYPE",
})
_CLASS_REASONS = {
    "SUBQUERY": "a subquery (a rule reads only the base's own row)",
    "STAR": "'*' or COLUMNS(...) (name the columns)",
    "WINDOW": "a window function (a rule sees one row at a time)",
    "DEFAULT": "DEFAULT",
}
# built-in DuckDB macros that are plain functions of their arguments
_SAFE_MACROS = re.compile(r"(list|array)_[a-z_]+|map_contains_(entry|value)|if|nullif|split_part|fdiv|days_in_month"
                          r"|date_add|md5_number_(lower|upper)")
_UNSAFE_MACROS = frozenset({"list_string_agg", "generate_subscripts"})
_NAMED_REASONS = {
    "error": "error() (its message would carry data into the output)",
    "getenv": "getenv() (reads the environment)",
    "current_setting": "current_setting() (reads the configuration)",
    "getvariable": "getvariable() (reads session state)",
}


def select_text(where: str) -> str:
    """The one statement a predicate is checked and run as. The predicate stands on lines of its own, so a
    trailing ``--`` comment in it ends at the newline."""
    # the one place user text becomes SQL: vetted by check_where, never run otherwise
    return "SELECT (\n" + where + "\n) AS relake_p, filename, file_row_number FROM base"  # noqa: S608


def embed(template: str, where: str) -> str:
    """The match query with :func:`select_text` in its slot: exactly the text :func:`check_where` vetted."""
    if template.count(SLOT) != 1:
        raise SpecError("the match query must hold exactly one predicate slot")
    return template.replace(SLOT, select_text(where))


def check_where(con: duckdb.DuckDBPyConnection, rule: str, where: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Refuse anything but a deterministic boolean expression over view ``base``; the bound params it uses.

    ``con`` must have view ``base`` (the base's columns) and relake's macros; nothing is read but the schema."""
    wrapped = select_text(where)
    tree = json.loads(str(query("db/serialize_sql").rows(con, sql=wrapped)[0][0]))
    if tree.get("error"):
        raise SpecError(f"rule {rule!r}: 'where' does not parse as one SQL expression: {_parse_message(tree)}")
    statements = tree.get("statements") or []
    if len(statements) != 1:
        raise SpecError(f"rule {rule!r}: 'where' must be one SQL expression, not several statements")
    node = statements[0].get("node") or {}
    _check_shape(rule, node)
    functions = _functions(con)
    for cls, fn in _nodes(node["select_list"][0]):
        if cls not in _ALLOWED_CLASSES:
            raise SpecError(f"rule {rule!r}: 'where' may not use {_CLASS_REASONS.get(cls, cls.lower())}")
        if fn is not None:
            _check_function(rule, fn, functions)
    used = _params_used(con, wrapped)
    missing = sorted(used - set(params))
    if missing:
        raise SpecError(f"rule {rule!r}: 'where' uses ${', $'.join(missing)}, not given under [params]")
    bound = {k: params[k] for k in sorted(used)}
    # binding errors quote the spec's own code (column and function names); anything else is withheld strictly
    with duckdb_errors(f"rule {rule!r}: 'where' cannot be bound over the base:", as_=SpecError, strict=True,
                       planning=f"rule {rule!r}: 'where' is not valid over the base:"):
        description = con.execute(wrapped + " LIMIT 0", bound).description
    kind = str(description[0][1]) if description else "unknown"
    if kind != "BOOLEAN":
        raise SpecError(f"rule {rule!r}: 'where' must be a boolean (true removes the row), but it is {kind}; "
                        "compare it, e.g. punsafe > 0.9")
    return bound


def _check_shape(rule: str, node: dict[str, Any]) -> None:
    """The statement is exactly ``SELECT (<one expression>) AS relake_p, filename, file_row_number FROM base``."""
    table = node.get("from_table") or {}
    items = node.get("select_list") or []
    tail = [(i.get("class"), (i.get("column_names") or [None])[-1], i.get("alias")) for i in items[1:]]
    plain = (
        node.get("type") == "SELECT_NODE"
        and len(items) == 1 + len(_TAIL_COLUMNS)
        and items[0].get("alias") == "relake_p"
        and tail == [("COLUMN_REF", c, "") for c in _TAIL_COLUMNS]
        and table.get("type") == "BASE_TABLE"
        and table.get("table_name") == "base"
        and not table.get("schema_name") and not table.get("catalog_name")
        and node.get("where_clause") is None
        and not node.get("group_expressions")
        and node.get("having") is None
        and node.get("qualify") is None
        and node.get("sample") is None
        and not node.get("modifiers")
        and not (node.get("cte_map") or {}).get("map")
    )
    if not plain:
        raise SpecError(f"rule {rule!r}: 'where' must be one expression over the base's columns, nothing around it "
                        "(no FROM, WHERE, AS, LIMIT, UNION, WITH, ',' or ';')")


def _nodes(tree: Any) -> Iterator[tuple[str, str | None]]:
    """Every expression node below ``tree``: (class, function name or None)."""
    if isinstance(tree, dict):
        cls = tree.get("class")
        if isinstance(cls, str):
            name = tree.get("function_name") if cls == "FUNCTION" else None
            if cls == "FUNCTION" and (tree.get("schema") or tree.get("catalog")):
                name = f"{tree.get('catalog') or ''}.{tree.get('schema') or ''}.{name}"
            yield cls, name
        for value in tree.values():
            yield from _nodes(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _nodes(value)


def _functions(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Function name -> 'ok', or why it is refused, from the connection's own catalog.

    A scalar name is refused when any overload is volatile, or none is consistent. Date-time names (``+``, ``-``,
    ``year``, ``strftime`` ...) have consistent overloads and ``TIMESTAMPTZ`` ones that are consistent within a
    query only, as they read the session's time zone; they are allowed, because the connection rules run on pins
    the time zone to UTC (``db.connect(readable=...)``), so those overloads give the same answer everywhere."""
    rows = query("db/functions").rows(con)
    verdict: dict[str, str] = {}
    stabilities: dict[str, set[str]] = {}
    for name, ftype, stability, internal in rows:
        name = str(name)
        if ftype == "scalar":
            stabilities.setdefault(name, set()).add(str(stability))
            why = "ok"
        elif ftype == "macro":
            safe = not internal or (_SAFE_MACROS.fullmatch(name) is not None and name not in _UNSAFE_MACROS)
            why = "ok" if safe else f"{name}()"
        elif ftype == "table" or ftype == "table_macro":
            why = f"{name}() (a table function: a rule reads only the base's own row)"
        else:
            why = f"{name}() (an {ftype} function)" if ftype == "aggregate" else f"{name}() ({ftype})"
        if verdict.get(name, "ok") == "ok":  # one refused overload refuses the name
            verdict[name] = why
    for name, kinds in stabilities.items():
        if verdict.get(name) != "ok":
            continue
        if "VOLATILE" in kinds or "CONSISTENT" not in kinds:
            worst = "volatile" if "VOLATILE" in kinds else sorted(kinds)[0].lower()
            verdict[name] = f"{name}() (not deterministic: {worst})"
    return verdict


def _check_function(rule: str, name: str, functions: Mapping[str, str]) -> None:
    if name in _NAMED_REASONS:
        raise SpecError(f"rule {rule!r}: 'where' may not use {_NAMED_REASONS[name]}")
    verdict = functions.get(name)
    if verdict is None:
        if "." in name:
            raise SpecError(f"rule {rule!r}: 'where' may not name a function by schema or catalog ({name})")
        raise SpecError(f"rule {rule!r}: 'where' uses an unknown function {name}()")
    if verdict != "ok":
        raise SpecError(f"rule {rule!r}: 'where' may not use {verdict}")


def _params_used(con: duckdb.DuckDBPyConnection, text: str) -> set[str]:
    statements = con.extract_statements(text)
    return set(statements[0].named_parameters)


def _parse_message(tree: dict[str, Any]) -> str:
    message = str(tree.get("error_message") or "syntax error").strip().splitlines()
    return message[0] if message else "syntax error"


# ------------------------------------------------------------------------------ a whole query (relake sql)


def check_select(con: duckdb.DuckDBPyConnection, text: str) -> frozenset[str]:
    """Vet the text of ``relake sql``: exactly one SELECT statement (DuckDB's ``json_serialize_sql`` serialises
    nothing else: no PRAGMA, COPY, ATTACH, SET, INSTALL, DDL or DML), no table function (``read_csv``,
    ``query_table``, ``glob`` ...; a query reads the lake's versions only), no function that reads the environment or
    the configuration, tables named without schema or catalog. Returns the names of the tables it reads (CTEs
    left out): the caller binds each as the version of that name, and refuses any other. The text is then run as
    it is, on a sandboxed connection (``db.connect(readable=...)``), never spliced into other SQL."""
    tree = json.loads(str(query("db/serialize_sql").rows(con, sql=text)[0][0]))
    if tree.get("error"):
        message = _parse_message(tree)
        if "Only SELECT" in message:
            raise InputError("relake sql runs one SELECT statement (no PRAGMA, SET, COPY, ATTACH, CREATE, INSERT "
                             "...)")
        raise InputError(f"the query does not parse: {message}")
    statements = tree.get("statements") or []
    if not statements:
        raise InputError("relake sql needs one SELECT statement; the query is empty")
    if len(statements) != 1:
        raise InputError("relake sql runs one SELECT statement, not several")
    tables: set[str] = set()
    _walk_query(statements[0].get("node"), tables, frozenset())
    for _cls, fn in _nodes(statements[0].get("node")):
        if fn is not None and fn in _NAMED_REASONS:
            raise InputError(f"the query may not use {_NAMED_REASONS[fn]}")
    return frozenset(tables)


def _walk_query(tree: Any, tables: set[str], visible: frozenset[str]) -> None:
    """Collect into ``tables`` every table name a CTE in scope does not define: a CTE is visible in the query node
    that defines it and below (never in a sibling branch, where DuckDB would read the name as a file)."""
    if isinstance(tree, dict):
        defined = [str(entry.get("key")) for entry in (tree.get("cte_map") or {}).get("map") or []]
        visible = visible | frozenset(defined)
        kind = tree.get("type")
        if kind == "TABLE_FUNCTION":
            fn = (tree.get("function") or {}).get("function_name") or "a table function"
            raise InputError(f"the query may not call {fn}() (a table function): it reads the lake's versions, "
                             "each a view named as the version")
        if kind == "BASE_TABLE":
            if tree.get("schema_name") or tree.get("catalog_name"):
                raise InputError(f"name the version {tree.get('table_name')!r} without a schema or catalog")
            if str(tree.get("table_name")) not in visible:
                tables.add(str(tree.get("table_name")))
        for value in tree.values():
            _walk_query(value, tables, visible)
    elif isinstance(tree, list):
        for value in tree:
            _walk_query(value, tables, visible)
