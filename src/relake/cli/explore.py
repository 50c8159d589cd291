"""Commands for a first look at the data: head, sql."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from relake import console
from relake.cli.app import LOOK, app, handled, lake
from relake.cli.options import MAX_COUNT, JsonOpt
from relake.report import plural

if TYPE_CHECKING:
    from relake.explore import Rows

# Each command imports the library it calls in its body, so that ``relake`` starts without loading every command's
# modules (STYLE 14 allows it in the CLI layer only; tests/test_architecture.py).


@app.command(rich_help_panel=LOOK)
@handled
def head(
    target: Annotated[str, typer.Argument(metavar="VERSION", help="Version name, or parquet file/folder.")],
    n: Annotated[int, typer.Option("-n", "--rows", min=0, max=MAX_COUNT, metavar="N", help="How many rows.")] = 10,
    where: Annotated[str | None, typer.Option(
        "--where", metavar="EXPR", help="Only rows this SQL expression is true for (vetted as a build rule's "
                                        "'where': columns, constants, deterministic functions).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The first rows of a version, in file order (with --where, the first it picks)."""
    from relake.explore import head_rows

    _render(head_rows(lake(), target, n, where), as_json, f"{target}: first {plural(n, 'row')}" + (
        f" where {where}" if where is not None else ""))


@app.command(rich_help_panel=LOOK)
@handled
def sql(
    text: Annotated[str, typer.Argument(metavar="QUERY", help="One SELECT; every version is a view of its name, "
                                                              "e.g. SELECT count(*) FROM \"research-safe\".")],
    limit: Annotated[int, typer.Option("--limit", min=0, max=MAX_COUNT, metavar="N", help="At most N rows.")] = 1000,
    as_json: JsonOpt = False,
) -> None:
    """Run one read-only SELECT over the lake's versions (sandboxed as build rules are: no files, no network)."""
    from relake.explore import run_sql

    _render(run_sql(lake(), text, limit), as_json, "")


def _render(rows: Rows, as_json: bool, title: str) -> None:
    if as_json:
        console.print_json(rows.to_dict())
        return
    console.rows(title, [c.name for c in rows.columns], [["NULL" if v is None else v for v in r] for r in rows.rows])
    if rows.truncated:
        console.warn(f"only the first {plural(rows.limit, 'row')} are shown (--limit)")
