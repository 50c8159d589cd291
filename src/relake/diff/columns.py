"""The column layout of a diff and the projections both the local diff and the shuffle use.

A column is compared when both sides have it (``--map A_COL=B_COL`` pairs differently named ones); it is named
by A's name, and compared as text when its types differ. ``key_expr`` and ``struct_expr`` project a side into
the fixed shape ``k`` (the key) and ``r`` (the other compared values) that ``queries/diff/`` reads, the same
way on the driver (``diff.local``) and in the shuffle's map tasks (``diff.shuffle``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
from duckdb import CaseExpression, ColumnExpression, ConstantExpression, Expression, FunctionExpression

from relake.errors import InputError
from relake.record import Column
from relake.sources import Side

_VARCHAR = duckdb.sqltypes.VARCHAR  # a constant: duckdb.sqltype() would open the default connection at import


@dataclass(frozen=True)
class Compared:
    """A column compared on both sides: its name in the diff (A's) and its source name on each side."""

    name: str
    a: str
    b: str
    as_text: bool  # the types differ: both sides compared as VARCHAR


@dataclass(frozen=True)
class SchemaChanges:
    added: tuple[Column, ...]  # only in B (B's names)
    removed: tuple[Column, ...]  # only in A
    retyped: tuple[tuple[str, str, str], ...]  # (name, type in A, type in B)
    mapped: tuple[tuple[str, str], ...]  # (A name, B name) actually applied


def parse_maps(items: Sequence[str]) -> list[tuple[str, str]]:
    """``A_COL=B_COL`` pairs; each column at most once per side."""
    pairs: list[tuple[str, str]] = []
    for item in items:
        a, sep, b = item.partition("=")
        if not sep or not a or not b:
            raise InputError(f"--map {item!r}: expected A_COLUMN=B_COLUMN, e.g. --map URL=url")
        pairs.append((a, b))
    for i, side in ((0, "A"), (1, "B")):
        names = [p[i] for p in pairs]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise InputError(f"--map names {side}'s column {dup[0]!r} more than once")
    return pairs


def compare_layout(a: Side, b: Side, maps: Sequence[tuple[str, str]]) -> tuple[list[Compared], SchemaChanges]:
    a_types = {c.name: c.type for c in a.columns}
    b_types = {c.name: c.type for c in b.columns}
    for a_name, b_name in maps:
        if a_name not in a_types:
            raise InputError(f"--map {a_name}={b_name}: A ({a.spec}) has no column {a_name!r} "
                             f"(columns: {', '.join(a_types)})")
        if b_name not in b_types:
            raise InputError(f"--map {a_name}={b_name}: B ({b.spec}) has no column {b_name!r} "
                             f"(columns: {', '.join(b_types)})")
    a_to_b = dict(maps)
    mapped_b = set(a_to_b.values())
    compared: list[Compared] = []
    used_b: set[str] = set()
    for c in a.columns:
        if c.name in a_to_b:
            bn: str | None = a_to_b[c.name]
        elif c.name in b_types and c.name not in mapped_b:
            bn = c.name
        else:
            bn = None
        if bn is None:
            continue
        used_b.add(bn)
        compared.append(Compared(c.name, c.name, bn, as_text=c.type != b_types[bn]))
    lower = [x.name.lower() for x in compared]
    if len(set(lower)) != len(lower):
        raise InputError("compared columns differ only by case; DuckDB cannot tell them apart")
    changes = SchemaChanges(
        added=tuple(c for c in b.columns if c.name not in used_b),
        removed=tuple(c for c in a.columns if c.name not in {x.a for x in compared}),
        retyped=tuple((x.name, a_types[x.a], b_types[x.b]) for x in compared if x.as_text),
        mapped=tuple((a_name, b_name) for a_name, b_name in maps),
    )
    return compared, changes


def role_hints(a: Side, b: Side, compared: Sequence[Compared]) -> list[str]:
    """Suggest --map for role columns (URL/url, TEXT/caption, …) that are named differently on each side."""
    names = {x.name for x in compared}
    hints = []
    for role in ("url", "caption", "id"):
        ca, cb = getattr(a.roles, role), getattr(b.roles, role)
        if ca and cb and ca != cb and ca not in names:
            hints.append(f"A's {ca} and B's {cb} both look like the {role} column; compare them with --map {ca}={cb}")
    return hints



@dataclass
class KeyProblem:
    """Duplicated or NULL keys on one side: why a keyed diff is refused."""

    side: str
    dup_keys: int
    dup_rows: int
    null_rows: int
    examples: list[str]


def _source(x: Compared, side: str) -> Expression:
    e = ColumnExpression(x.a if side == "a" else x.b)
    return e.cast(_VARCHAR) if x.as_text else e


def key_expr(keys: Sequence[Compared], side: str) -> Expression:
    """A single key column as itself; several as a STRUCT (A's names). Parts of a STRUCT key match NULL-safely
    (NULL equals NULL, e.g. a NULL caption in url+caption); the key is NULL only when every part is."""
    if len(keys) == 1:
        return _source(keys[0], side)
    all_null = _source(keys[0], side).isnull()
    for x in keys[1:]:
        all_null = all_null & _source(x, side).isnull()
    packed = FunctionExpression("struct_pack", *[_source(x, side).alias(x.name) for x in keys])
    return CaseExpression(all_null, ConstantExpression(None)).otherwise(packed)


def struct_expr(values: Sequence[Compared], side: str) -> Expression:
    """The compared values as one STRUCT (A's names); NULL when there are none."""
    if not values:
        return ConstantExpression(None)
    return FunctionExpression("struct_pack", *[_source(x, side).alias(x.name) for x in values])


def json_pointer(name: str) -> str:
    """RFC 6901 JSON pointer to a top-level field."""
    return "/" + name.replace("~", "~0").replace("/", "~1")


BARE = "\x00"  # prefixes the key of a sensitive row without a URL in view sensitive_removed


def withhold(src: duckdb.DuckDBPyRelation, url: str | None, key: str | None,
             sensitive: duckdb.DuckDBPyRelation) -> duckdb.DuckDBPyRelation:
    """``src`` without the rows a sensitive rule removed (``sensitive``: view ``sensitive_removed`` of
    :func:`relake.diff.local.sensitive_removals`, column ``relake_sensitive``). A side with a URL column is
    compared by URL, and its rows without a URL by key against the keys of sensitive rows that had none (stored
    with the prefix ``BARE``); a side without one, by key. One hash anti-join either way."""
    col = url if url is not None else key
    if col is None:
        return src
    probe = ColumnExpression(col).cast(duckdb.sqltypes.VARCHAR)
    if url is not None and key is not None:
        bare = FunctionExpression("concat", ConstantExpression(BARE), ColumnExpression(key).cast(
            duckdb.sqltypes.VARCHAR))
        probe = CaseExpression(ColumnExpression(url).isnull(), bare).otherwise(probe)
    return src.join(sensitive, probe == ColumnExpression("relake_sensitive"), how="anti")
