"""Maintainer commands: blocklist add/list, build."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from relake import console
from relake.cli.app import MAINTAIN, Group, app, handled, lake
from relake.cli.options import EngineOpt, JsonOpt, MemOpt, RayAddressOpt, ThreadsOpt
from relake.engine import EngineKind, get_engine
from relake.errors import SpecError
from relake.kinds import BLOCKLIST_KINDS
from relake.lake import check_user_path
from relake.report import plural

if TYPE_CHECKING:
    from relake.build import BuildPlan

# Each command imports the library it calls in its body, so that ``relake`` starts without loading every command's
# modules (STYLE 14 allows it in the CLI layer only; tests/test_architecture.py).


def kind_help() -> str:
    """--kind's help, from the registry of blocklist kinds. Called where the option is declared: annotations are
    strings here (``from __future__ import annotations``), evaluated each time typer builds the command."""
    return "Kind of entries: " + ", ".join(f"{k.name} ({k.help})" for k in BLOCKLIST_KINDS.values()) + "."


blocklist_app = typer.Typer(cls=Group, help="Import, revise, list and show blocklists.", no_args_is_help=True)
app.add_typer(blocklist_app, name="blocklist", rich_help_panel=MAINTAIN)


@blocklist_app.command("add")
@handled
def blocklist_add(
    name: Annotated[str, typer.Argument(help="Name for the blocklist in the lake.")],
    file: Annotated[str, typer.Argument(help="A .txt (one entry a line), .csv/.tsv or .parquet file.")],
    kind: Annotated[str, typer.Option("--kind", metavar="KIND", help=kind_help())],
    hash_of: Annotated[str | None, typer.Option("--hash-of", metavar="WHAT",
                                                help="url-* hashes: of the 'canonical' (default) "
                                                                  "or 'raw' URL.")] = None,
    column: Annotated[str | None, typer.Option("--column", metavar="COL",
                                               help="Column to read (csv/tsv/parquet).")] = None,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="Skip malformed entries.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Import a blocklist: strictly parsed, normalised, de-duplicated, content-hashed."""
    from relake.blocklist import add_blocklist

    b = add_blocklist(lake(), name, check_user_path(file), kind, hash_of=hash_of, column=column,
                      skip_invalid=skip_invalid)
    if as_json:
        console.print_json(b.to_dict())
        return
    if not b.added:
        console.out.print(f"blocklist {b.ref} ({b.kind}) already holds these {plural(b.unique_entries, 'entry')}; "
                          "no new revision")
        return
    console.out.print(f"added blocklist {b.name}" + (f" revision {b.revision}" if b.revision > 1 else "")
                      + f" ({b.kind}): {b.unique_entries:,} unique of {plural(b.raw_entries, 'entry')}, "
                      f"sha256 {b.sha256[:16]}…")
    if b.skipped:
        console.warn(f"skipped {b.skipped:,} malformed entries (--skip-invalid)")
    if b.invisible_stripped:
        console.warn(f"stripped invisible characters (byte-order marks, zero-width or Unicode spaces) from "
                     f"{plural(b.invisible_stripped, 'entry')}")


@blocklist_app.command("list")
@handled
def blocklist_list(as_json: JsonOpt = False) -> None:
    """List the lake's blocklists."""
    from relake.blocklist import list_blocklists

    listing = list_blocklists(lake())
    if as_json:
        console.print_json(listing.to_dict())
        return
    console.table("blocklists (latest revisions)", ["name", "revision", "kind", "entries", "raw", "skipped", "sha256"],
                  [(b.name, b.revision, b.kind + (f" ({b.hash_of})" if b.hash_of else ""), f"{b.unique_entries:,}",
                    f"{b.raw_entries:,}", f"{b.skipped:,}", b.sha256[:16] + "…") for b in listing.blocklists])


@blocklist_app.command("show")
@handled
def blocklist_show(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The blocklist.")],
    as_json: JsonOpt = False,
) -> None:
    """A blocklist's revisions and the versions built with each: how many of its entries matched rows."""
    from relake.blocklist import show_blocklist

    r = show_blocklist(lake(), name)
    if as_json:
        console.print_json(r.to_dict())
        return
    console.table(f"blocklist {r.name}", ["revision", "kind", "entries", "sha256"],
                  [(b.revision, b.kind + (f" ({b.hash_of})" if b.hash_of else ""), f"{b.unique_entries:,}",
                    b.sha256[:16] + "…") for b in r.revisions])
    if not r.used_by:
        console.info(f"no version of this lake was built with {r.name}")
        return
    console.table("used by", ["version", "rule", "revision", "entries", "matched entries", "rows removed"],
                  [(u.version, u.rule, "?" if u.revision is None else u.revision, f"{u.entries:,}",
                    "?" if u.matched_entries is None else f"{u.matched_entries:,}",
                    "?" if u.removed_rows is None else f"{u.removed_rows:,}") for u in r.used_by])


@app.command(rich_help_panel=MAINTAIN)
@handled
def build(
    name: Annotated[str, typer.Argument(help="Name of the new version.")],
    spec_file: Annotated[str | None, typer.Option("--spec", metavar="FILE", help="Release spec (TOML).")] = None,
    base: Annotated[str | None, typer.Option("--base", metavar="VERSION",
                                             help="Base version (flag form, without --spec).")] = None,
    blocklist: Annotated[list[str] | None, typer.Option("--blocklist", metavar="NAME[:REV]",
                                                        help="Flag form: a blocklist rule.")] = None,
    where: Annotated[list[str] | None, typer.Option("--where", metavar="EXPR",
                                                    help="Flag form: an SQL predicate rule.")] = None,
    category: Annotated[str, typer.Option("--category", metavar="NAME",
                                          help="Flag form: the rules' public category.")] = "removed",
    sensitive: Annotated[bool, typer.Option("--sensitive", help="Flag form: mark the rules sensitive.")] = False,
    threads: ThreadsOpt = None,
    memory_limit: MemOpt = None,
    full_audit: Annotated[bool, typer.Option(
        "--full-audit", help="Also re-run every rule over the written shards (a second matching pass; the default "
        "audits of counts, hash sums and matched-vs-removed rows already imply it for row-wise rules).")] = False,
    fast_audit: Annotated[bool, typer.Option("--fast-audit", hidden=True,
                                             help="Accepted for old scripts; the default now.")] = False,
    materialize: Annotated[bool, typer.Option(
        "--materialize", help="Write the kept rows as new shards in the lake (as `relake publish` would) instead of "
        "storing the version as a deletion vector over its lineage's original.")] = False,
    engine: EngineOpt = EngineKind.local,
    ray_address: RayAddressOpt = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Only plan: run the rules and print every rule's count (0 included), the list entries "
        "that matched nothing and the rows kept and removed; nothing is written to the lake.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Build a derived version from a base plus rules, with a reason for every removed row."""
    from relake.build import build_version, plan_build, planned_shards, rules_from_flags
    from relake.spec import Spec, load_spec

    if spec_file is not None:
        if base or blocklist or where:
            raise SpecError("give either --spec or the flag form (--base, --blocklist, --where), not both")
        spec = load_spec(Path(check_user_path(spec_file)))
        if spec.name != name:
            raise SpecError(f"{spec_file}: the spec builds {spec.name!r}, not {name!r}; make them agree")
    else:
        if base is None or not (blocklist or where):
            raise SpecError("give --spec SPEC.toml, or --base with at least one --blocklist or --where")
        spec = Spec(name=name, base=base, rules=tuple(rules_from_flags(blocklist or [], where or [], category,
                                                                         sensitive)))
    if full_audit and fast_audit:
        raise typer.BadParameter("--full-audit and --fast-audit exclude each other", param_hint="--full-audit")
    if dry_run:
        plan = plan_build(lake(), spec, threads=threads, memory_limit=memory_limit)
        if as_json:
            console.print_json(plan.to_dict())
            return
        _render_plan(plan)
        return
    runner = get_engine(engine, ray_address, threads)
    with console.progress("build", planned_shards(lake(), spec)) as advance:
        result = build_version(lake(), spec, threads=threads, memory_limit=memory_limit, progress=advance,
                               full_audit=full_audit, engine=runner, materialize=materialize)
    if as_json:
        console.print_json(result.to_dict())
        return
    console.out.print(f"built {result.name} from {result.base}: {plural(result.rows, 'row')} kept, {result.removed:,} "
                      f"removed in {plural(len(result.version.shards), 'shard')} ({result.seconds:.1f} s)")
    _render_rules("removed by rule", result.by_rule, result.unmatched_entries, "matched")


def _render_plan(plan: BuildPlan) -> None:
    console.out.print(f"plan for {plan.name} from {plan.base} (dry run, nothing written): {plan.kept:,} of "
                      f"{plural(plan.rows, 'row')} kept, {plan.removed:,} removed ({plan.seconds:.1f} s)")
    _render_rules("rows each rule would remove", plan.by_rule, plan.unmatched_entries, "would match")


def _render_rules(title: str, by_rule: dict[str, int], unmatched: dict[str, int], verb: str) -> None:
    """Every rule's count (0 included) and, for blocklist rules, the list entries that matched no row."""
    console.table(title, ["rule", "rows", "list entries that matched no row"],
                  [(r, f"{n:,}", f"{unmatched[r]:,}" if r in unmatched else "") for r, n in by_rule.items()])
    for r, n in by_rule.items():
        if n == 0:
            hint = " (check the list's --kind and --hash-of)" if r in unmatched else ""
            console.warn(f"rule {r!r} {verb} no rows{hint}")
