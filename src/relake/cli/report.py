"""The report command: two versions as one self-contained HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from relake import console
from relake.cli.app import LOOK, app, handled, lake
from relake.cli.options import JsonOpt
from relake.errors import InputError
from relake.lake import check_user_path

if TYPE_CHECKING:
    from relake.page import PairReport

# Each command imports the library it calls in its body, so that ``relake`` starts without loading every command's
# modules (STYLE 14 allows it in the CLI layer only; tests/test_architecture.py).


@app.command(rich_help_panel=LOOK)
@handled
def report(
    a: Annotated[str, typer.Argument(metavar="A", help="The earlier version.")],
    b: Annotated[str, typer.Argument(metavar="B", help="The version to compare with A (built from it, or any).")],
    out: Annotated[str | None, typer.Option("--out", metavar="FILE",
                                            help="The HTML file to write (needed unless --json).")] = None,
    public: Annotated[bool, typer.Option("--public", help="Only what the release's public manifest discloses: no "
                                                          "rules, hosts, shards, URLs or example rows.")] = False,
    top: Annotated[int, typer.Option("--top", min=1, metavar="N", help="How many hosts to chart.")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """One self-contained HTML file (charts inline, opens from disk with no network): both versions, their lineage,
    removals by rule, category, shard and host, changed columns and example rows (a diff of unrelated versions),
    and the crowd rule's numbers. Rows a sensitive rule removed are counted, never shown."""
    from relake.page import report_pair, write_report

    if out is None and not as_json:
        raise InputError("relake report needs --out FILE (the HTML page to write), or --json for the data")
    path = Path(check_user_path(out)) if out is not None else None
    with console.progress("report", None):
        r = report_pair(lake(), a, b, public=public, top=top)
        if path is not None:
            write_report(r, path)
    if as_json:
        console.print_json(r.to_dict())
        return
    _render(r, path)


def _render(r: PairReport, path: Path | None) -> None:
    items: list[tuple[str, object]] = [("rows in A", f"{r.rows_a:,}"), ("rows in B", f"{r.rows_b:,}"),
                                       ("removed", f"{r.removed:,}")]
    if r.relation != "derived":
        items += [("added", f"{r.added:,}"), ("changed", f"{r.changed:,}")]
    if not r.public:
        items.append(("sensitive", f"{r.sensitive:,} (counted, never shown)"))
    if r.min_crowd is not None:
        items.append(("crowd K", f"{r.min_crowd:,}"))
    console.kv(f"{'public ' if r.public else ''}report {r.a.name} → {r.b.name} ({r.relation})", items)
    if path is not None:
        console.out.print(console.literal(f"wrote {path}"))
