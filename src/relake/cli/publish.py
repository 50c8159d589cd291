"""Release commands: manifest, publish, lookup."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from relake import console
from relake.cli.app import RELEASE, app, handled, lake
from relake.cli.options import CrowdOpt, EngineOpt, JsonOpt, RayAddressOpt
from relake.engine import EngineKind, get_engine
from relake.errors import ExitCode
from relake.lake import check_user_path
from relake.report import plural

# Each command imports the library it calls in its body, so that ``relake`` starts without loading every command's
# modules (STYLE 14 allows it in the CLI layer only; tests/test_architecture.py).


@app.command(rich_help_panel=RELEASE)
@handled
def manifest(
    a: Annotated[str, typer.Argument(help="The earlier version.")],
    b: Annotated[str, typer.Argument(help="A version built from it (any number of generations).")],
    out: Annotated[str, typer.Option("--out", metavar="DIR", help="New folder to write the manifest into.")],
    private: Annotated[bool, typer.Option("--private", help="The audit copy: URLs, keys, shards, rules.")] = False,
    image_hashes: Annotated[bool, typer.Option("--image-hashes", help="Add image hashes that came from the base "
                                                                      "data (never a partner's list).")] = False,
    min_crowd: CrowdOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Removal manifest from A to B: public (hashed, categorised) by default, --private for the audit copy."""
    from relake.publish import write_manifest

    if private:
        console.warn("--private writes removed URLs and captions: keep it to the audit team (owner-only files)")
    m = write_manifest(lake(), a, b, Path(check_user_path(out)), private=private, image_hashes=image_hashes,
                       min_crowd=min_crowd)
    if as_json:
        console.print_json(m.to_dict())
        return
    console.out.print(f"wrote {'private' if m.private else 'public'} manifest {a} → {b} to {m.out}: "
                      f"{plural(m.rows, 'row')}")
    console.table("removed URL hashes by public category", ["category", "hashes"],
                  [(c, f"{n:,}") for c, n in m.counts.items()])


@app.command(rich_help_panel=RELEASE)
@handled
def publish(
    name: Annotated[str, typer.Argument(help="Version to release.")],
    out: Annotated[str, typer.Argument(help="New release folder.")],
    min_crowd: CrowdOpt = None,
    since: Annotated[str | None, typer.Option("--since", metavar="VERSION",
                                              help="Ancestor the manifest starts from (default: the "
                                                               "lineage's original, so it cleans its copies).")] = None,
    engine: EngineOpt = EngineKind.local,
    ray_address: RayAddressOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A release folder: data shards, version.json, SHA256SUMS, CHANGELOG.md, report.html and the public manifest
    of every row removed since the original (or --since VERSION)."""
    from relake.publish import publish_report

    r = publish_report(lake(), name, Path(check_user_path(out)), min_crowd=min_crowd, since=since,
                       engine=get_engine(engine, ray_address))
    if as_json:
        console.print_json(r.to_dict())
        return
    path = r.out
    console.out.print(f"published {name} to {path}")
    console.info(f"check it with: cd {path} && sha256sum -c SHA256SUMS   (or: relake verify {path})")


FileOpt = Annotated[str | None, typer.Option(
    "--file", metavar="FILE", help="Also read URLs from FILE, one a line (blank lines skipped); - reads stdin.")]


@app.command(rich_help_panel=RELEASE)
@handled
def lookup(
    manifest_dir: Annotated[str, typer.Option("--manifest", metavar="DIR", help="A public removal manifest folder.")],
    urls: Annotated[list[str] | None, typer.Argument(metavar="URL", help="URLs to look up.")] = None,
    file: FileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Whether URLs (canonicalised the same way) are listed in a removal manifest; exit 1 if any is."""
    from relake.publish import lookup_urls

    found = lookup_urls(_batch(urls, file), Path(check_user_path(manifest_dir)))
    if as_json:
        console.print_json(found.to_dict())
    else:
        for u in found.urls:
            listed = "no URL" if u.url_sha256 is None else f"LISTED {u.category}" + (
                " (some rows of this URL)" if u.some_rows_only else "") if u.category else "not listed"
            console.out.print(console.literal(f"{listed:<20} {u.url}"))
    if found.any_listed:
        raise typer.Exit(ExitCode.FOUND)


@app.command(rich_help_panel=RELEASE)
@handled
def canon(
    urls: Annotated[list[str] | None, typer.Argument(metavar="URL", help="URLs to canonicalise.")] = None,
    file: FileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Each URL's canonical form and its sha256: what public manifests and url-sha256 blocklists hold."""
    from relake.publish import canon_urls

    r = canon_urls(_batch(urls, file))
    if as_json:
        console.print_json(r.to_dict())
        return
    for u in r.urls:
        console.out.print(console.literal(f"{u.url_sha256 or '-':<64}  {u.canonical or '(no URL)'}"))


def _batch(urls: list[str] | None, file: str | None) -> list[str]:
    """The URLs given as arguments, then those of --file (- for stdin); at least one."""
    from relake.publish import read_url_file, url_lines

    out = list(urls or [])
    if file == "-":
        out += url_lines(sys.stdin.read())
    elif file is not None:
        out += read_url_file(check_user_path(file))
    if not out and file is None:
        raise typer.BadParameter("give URLs, or --file FILE (- for stdin)", param_hint="URL")
    return out
