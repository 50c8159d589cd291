"""Downstream-copy commands: synth-copy, check, clean.

``check`` and ``clean`` never print a URL or caption of an affected row: only shards, keys, positions, counts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from relake import console
from relake.cli.app import COPIES, LazyHelp, app, handled, lake
from relake.cli.options import (
    EngineOpt,
    ImageColOpt,
    JsonOpt,
    KeepOnlyOpt,
    ManifestOpt,
    MaxDistanceOpt,
    MemOpt,
    MinQualityOpt,
    PdqBlocklistOpt,
    RayAddressOpt,
    UrlColOpt,
    clamp_threads,
)
from relake.engine import Engine, EngineKind, get_engine
from relake.errors import ExitCode, InputError
from relake.kinds import DEFAULT_MAX_DISTANCE, DEFAULT_MIN_QUALITY
from relake.lake import check_user_path
from relake.report import plural

if TYPE_CHECKING:
    from relake.copies import CheckReport, CleanReport
    from relake.copies.perceptual import PdqCheck

# Each command imports the library it calls in its body, so that ``relake`` starts without loading every command's
# modules (STYLE 14 allows it in the CLI layer only; tests/test_architecture.py); the help texts made from the
# layouts' registry are LazyHelp, written when --help shows them.

_KEYS_SHOWN = 5
_SHARDS_SHOWN = 50


def _format_help() -> str:
    """synth-copy's --format help: the formats it writes, from the layouts' registry."""
    from relake.synthcopy import synth_help

    return synth_help()


def _copy_help() -> str:
    """check's COPY help: the layouts it reads, from their registry."""
    from relake.copies import LAYOUTS
    from relake.copies.layouts import describe_layouts

    return f"The copy's folder (img2dataset output: {describe_layouts(list(LAYOUTS.values()))})."


@app.command("synth-copy", rich_help_panel=COPIES)
@handled
def synth_copy(
    source: Annotated[str, typer.Argument(help="Version name, version folder or parquet files to download.")],
    out: Annotated[str, typer.Argument(help="Folder for the copy (must hold no shards yet).")],
    shard_size: Annotated[int, typer.Option("--shard-size", metavar="N", min=1, help="Samples per shard.")] = 10_000,
    hash_algo: Annotated[str, typer.Option("--hash", metavar="ALGO",
                                           help="Image hash column: md5 (older img2dataset) or "
                                                          "sha256 (newer).")] = "md5",
    failure_rate: Annotated[float, typer.Option("--failure-rate", metavar="RATE", min=0.0, max=1.0,
                                                help="Share of samples that fail to download or resize.")] = 0.1,
    seed: Annotated[int, typer.Option("--seed", metavar="N", min=0,
                                      help="Random seed; the same seed gives identical bytes.")] = 0,
    fmt: Annotated[str, typer.Option("--format", metavar="FMT", help=LazyHelp(_format_help))] = "webdataset",
    verify: Annotated[bool, typer.Option("--verify", help="Re-hash the version's shards against its record "
                                                          "before reading them.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write an img2dataset-like download of a release: shuffled, re-sharded, small real images, failures."""
    from relake.synthcopy import synth_copy as make_copy

    with console.progress("synth-copy", None) as advance:
        r = make_copy(lake(), source, check_user_path(out), shard_size=shard_size, hash_algo=hash_algo,
                      failure_rate=failure_rate, seed=seed, fmt=fmt, progress=advance,
                      verify=verify)
    if as_json:
        console.print_json(r.to_dict())
        return
    console.out.print(console.literal(
        f"wrote {r.out}: {plural(r.rows, 'sample')} in {plural(r.shards, r.format + ' shard')}, "
        f"{r.successes:,} downloaded, "
        f"{r.failures:,} failed, {r.bytes / 1e6:,.1f} MB"))
    for note in r.notes:
        console.warn(note)


@app.command(rich_help_panel=COPIES)
@handled
def check(
    copy: Annotated[str, typer.Argument(help=LazyHelp(_copy_help))],
    manifest: ManifestOpt = None,
    keep_only: KeepOnlyOpt = None,
    blocklist: PdqBlocklistOpt = None,
    max_distance: MaxDistanceOpt = DEFAULT_MAX_DISTANCE,
    min_quality: MinQualityOpt = DEFAULT_MIN_QUALITY,
    workers: Annotated[int | None, typer.Option("--workers", min=1, callback=clamp_threads,
                                                help="With --blocklist and --engine local: processes hashing "
                                                     "images (default: one per CPU).")] = None,
    url_col: UrlColOpt = None,
    image_col: ImageColOpt = None,
    memory_limit: MemOpt = None,
    engine: EngineOpt = EngineKind.local,
    ray_address: RayAddressOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Which rows of a downstream copy are affected: by canonical-URL hash and image hash, not in a release, or
    with an image near a hash of an image-pdq blocklist (PDQ perceptual hashes).

    Exit 1 when any row is affected, or when a shard's tar, sample folder or tfrecord holds samples whose key has
    no parquet row (orphans: they cannot be judged). Reports shards, keys and counts, never URLs or captions.
    With --engine ray each shard is matched against --manifest by its own Ray task (same report);
    --keep-only matching runs on this machine.
    """
    from relake.copies import check_copy, resolve_manifest

    lk = lake()
    _need_one(manifest, keep_only, blocklist)
    runner: Engine | None = get_engine(engine, ray_address)  # validates --ray-address; joins Ray early
    if engine == EngineKind.local:
        runner = None  # the in-process check, unchanged
    mdir = resolve_manifest(lk, manifest) if manifest is not None else None
    with console.progress("check", None):
        report = check_copy(lk, check_user_path(copy), mdir, keep_only=keep_only, url_col=url_col,
                            image_col=image_col, memory_limit=memory_limit, engine=runner, blocklist=blocklist,
                            max_distance=max_distance, min_quality=min_quality, workers=workers)
    if as_json:
        console.print_json(report.to_dict())
    else:
        _render_check(report)
    if report.affected or report.orphans:
        raise typer.Exit(ExitCode.FOUND)


@app.command(rich_help_panel=COPIES)
@handled
def clean(
    copy: Annotated[str, typer.Argument(help="The copy's folder (left untouched).")],
    out: Annotated[str, typer.Option("--out", metavar="DIR", help="Folder for the cleaned copy (new, empty, or an "
                                                   "interrupted clean's to resume).")],
    manifest: ManifestOpt = None,
    keep_only: KeepOnlyOpt = None,
    blocklist: PdqBlocklistOpt = None,
    max_distance: MaxDistanceOpt = DEFAULT_MAX_DISTANCE,
    min_quality: MinQualityOpt = DEFAULT_MIN_QUALITY,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only report what would be removed; write "
                                                            "nothing.")] = False,
    workers: Annotated[int, typer.Option("--workers", metavar="N", min=1, callback=clamp_threads,
                                         help="Shards rewritten at once (--engine local; at most 4 per CPU).")] = 2,
    url_col: UrlColOpt = None,
    image_col: ImageColOpt = None,
    memory_limit: MemOpt = None,
    engine: EngineOpt = EngineKind.local,
    ray_address: RayAddressOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the copy without its affected samples, same layout: parquet rows and tar members dropped.

    Untouched members keep their exact bytes; _stats.json counts are reduced; resumable after interruption.
    Members match rows however their key is spelled (folder prefix, leading zeros); orphans (samples without a
    row) are kept, except those with an affected row's key; the output is listed again before it is complete.
    With --engine ray each shard is matched against --manifest and rewritten by Ray tasks (same bytes);
    --keep-only matching runs on this machine.
    """
    from relake.copies import dry_run_report, prepare_clean, resolve_manifest, run_clean

    lk = lake()
    _need_one(manifest, keep_only, blocklist)
    runner: Engine | None = get_engine(engine, ray_address, workers)  # validates --ray-address; joins Ray early
    if engine == EngineKind.local:
        runner = None  # the clean's own --workers threads (bounded queue, interruptible)
    mdir = resolve_manifest(lk, manifest) if manifest is not None else None
    with console.progress("check", None):
        plan = prepare_clean(lk, check_user_path(copy), mdir, check_user_path(out), keep_only=keep_only,
                             url_col=url_col, image_col=image_col, memory_limit=memory_limit, workers=workers,
                             engine=runner, blocklist=blocklist, max_distance=max_distance,
                             min_quality=min_quality, dry_run=dry_run)
    if dry_run:
        report = dry_run_report(plan)
    else:
        with console.progress("clean", len(plan.units)) as advance:
            report = run_clean(plan, progress=advance, engine=runner)
    if as_json:
        console.print_json(report.to_dict())
        return
    _render_clean(report)


def _need_one(manifest: str | None, keep_only: str | None, blocklist: str | None) -> None:
    if manifest is None and keep_only is None and blocklist is None:
        raise InputError("give --manifest M (a removal manifest folder), --keep-only RELEASE or --blocklist NAME "
                         "(an image-pdq list), or several")


def _render_check(r: CheckReport) -> None:
    against = ", ".join(x for x in (r.manifest and f"manifest {r.manifest}",
                                    r.keep_only and f"release {r.keep_only}",
                                    r.blocklist and f"image-pdq blocklist {r.blocklist}") if x)
    items: list[tuple[str, object]] = [
        ("copy", f"{r.copy} ({r.layout}, {plural(len(r.shards), 'shard')}, {plural(r.rows, 'row')})"),
        ("against", against),
        ("image hashes", r.image_matching or "not compared"),
        ("affected rows", f"{r.affected:,} in {plural(r.shards_affected, 'shard')}"),
    ]
    if r.manifest is not None:
        items += [("  by URL only", f"{r.by_url:,}"), ("  by image only", f"{r.by_image:,}"),
                  ("  by both", f"{r.by_both:,}")]
        if r.by_url_alone or r.by_url_caption_alone:
            items += [("  by URL alone (no caption column)", f"{r.by_url_alone:,}"),
                      ("  by URL and caption alone (no id column)", f"{r.by_url_caption_alone:,}")]
    if r.keep_only is not None:
        items.append(("  not in release", f"{r.not_in_release:,}"))
    if r.pdq is not None:
        items += _pdq_items(r.pdq)
    items += [("  failed downloads", f"{r.failed_downloads:,} (parquet rows only, no image)"),
              ("orphans", f"{plural(r.orphans, 'key')} in {plural(sum(1 for s in r.shards if s.orphans), 'shard')}"
                          + (" (samples without a parquet row)" if r.orphans else "")),
              ("time", f"{r.seconds:.2f} s")]
    console.kv("check", items)
    for note in r.notes:
        console.warn(note)
    _render_orphans(r)
    if r.pdq is not None:
        _render_pdq(r.pdq)
    hit = [s for s in r.shards if s.affected]
    if not hit:
        console.info("nothing affected")
        return
    shown = sorted(hit, key=lambda s: -s.affected)[:_SHARDS_SHOWN]
    title = "affected shards" + (f" (top {_SHARDS_SHOWN} of {len(hit)})" if len(hit) > _SHARDS_SHOWN else "")
    columns = ["shard", "rows", "affected"]
    columns += ["url", "image", "both"] if r.manifest is not None else []
    columns += ["not in release"] if r.keep_only is not None else []
    columns += ["failed", f"keys (first {_KEYS_SHOWN})"]
    rows = []
    for s in shown:
        keys = [k.key if k.key is not None else f"#{k.pos}" for k in s.keys]
        row: list[object] = [s.shard, f"{s.rows:,}", f"{s.affected:,}"]
        row += [s.url, s.image, s.both] if r.manifest is not None else []
        row += [s.not_in_release] if r.keep_only is not None else []
        row += [s.failed, " ".join(keys[:_KEYS_SHOWN]) + (" …" if len(keys) > _KEYS_SHOWN else "")]
        rows.append(row)
    console.table(title, columns, rows)
    console.info("every affected key: --json; remove them: relake clean COPY --out OUT with the same options")


def _pdq_items(p: PdqCheck) -> list[tuple[str, object]]:
    return [
        ("  by PDQ", f"{p.matched:,} images within {p.max_distance} bits of one of {p.entries:,} listed hashes"),
        ("  images hashed", f"{p.hashed:,} ({p.trimmed:,} with a uniform border, also hashed trimmed)"),
        ("  not judged", f"{p.low_quality:,} below quality {p.min_quality}, {p.undecodable:,} undecodable, "
                         f"{p.missing:,} missing (a successful row without an image)"),
    ]


def _render_pdq(p: PdqCheck) -> None:
    if p.matches:
        shown = p.matches[:_SHARDS_SHOWN]
        title = "PDQ matches (key, distance in bits, quality of the image's hash; never the listed hash)"
        if len(p.matches) > len(shown):
            title += f" (first {len(shown)} of {len(p.matches)})"
        console.table(title, ["shard", "key", "distance", "quality", "border trimmed"],
                      [[m.shard, m.key if m.key is not None else f"#{m.pos}", m.distance, m.quality,
                        "yes" if m.trimmed else ""] for m in shown])
    for what, n, keys in (("below the quality threshold", p.low_quality, p.low_quality_keys),
                          ("undecodable", p.undecodable, p.undecodable_keys),
                          ("missing", p.missing, p.missing_keys)):
        if n:
            console.warn(f"{n:,} images {what}, not matched: {' '.join(keys[:_KEYS_SHOWN])}"
                         + (" …" if n > _KEYS_SHOWN else "") + " (every key: --json)")


def _render_orphans(r: CheckReport) -> None:
    with_orphans = sorted((s for s in r.shards if s.orphans), key=lambda s: -s.orphans)
    if not with_orphans:
        return
    shown = with_orphans[:_SHARDS_SHOWN]
    title = "orphans: samples whose key has no parquet row" + (
        f" (top {_SHARDS_SHOWN} of {plural(len(with_orphans), 'shard')})" if len(with_orphans) > _SHARDS_SHOWN else "")
    console.table(title, ["shard", "orphans", f"keys (first {_KEYS_SHOWN})", "an affected row's key"],
                  [[s.shard, f"{s.orphans:,}", " ".join(s.orphan_keys) + (" …" if s.orphans > len(s.orphan_keys)
                                                                         else ""),
                    " ".join(s.misplaced[:_KEYS_SHOWN])] for s in shown])
    console.warn(f"{r.orphans:,} orphan keys: their images cannot be judged without a row; clean keeps them "
                 "byte for byte, except those with an affected row's key, which it drops")


def _render_clean(r: CleanReport) -> None:
    from relake.copies import LAYOUTS

    verb = "would " if r.dry_run else ""
    counted = LAYOUTS[r.layout].counted if r.layout in LAYOUTS else None
    items: list[tuple[str, object]] = [
        ("copy", f"{r.copy} ({r.layout}, {plural(r.shards, 'shard')})"),
        ("out", r.out + (" (nothing written: --dry-run)" if r.dry_run else "")),
        (f"{verb}remove", f"{plural(r.removed_rows, 'row')} ({r.failed_removed:,} failed downloads)"
                          + ("" if r.dry_run or counted is None else f", {r.removed_members:,} {counted}")),
        (f"shards {verb}rewrite", f"{r.rewritten:,}"),
        (f"shards {verb}copy unchanged", f"{r.copied:,}"),
        (f"other files {verb}copy", f"{r.files:,}"),
    ]
    if r.orphans_kept or r.orphans_dropped:
        items.append(("orphans", f"{r.orphans_kept:,} kept byte for byte, {r.orphans_dropped:,} {verb}dropped "
                                 "(an affected row's key)"))
    if not r.dry_run:
        items.append(("resumed", f"{plural(r.resumed, 'unit')} already done and verified"))
        items.append(("verified", f"{r.verified:,} rewritten sides listed again: no file of an affected row"))
        if r.tar_bytes_in:
            mb = r.tar_bytes_in / 1e6
            items.append(("tars", f"{mb:,.1f} MB in, {r.tar_bytes_out / 1e6:,.1f} MB out"))
    items.append(("time", f"{r.seconds:.2f} s"))
    console.kv("clean" + (" (dry run)" if r.dry_run else ""), items)
    for note in r.check.notes if r.check is not None else []:  # e.g. rows matched by URL alone
        console.warn(note)
    if r.stale:
        console.warn(f"{'would drop' if r.dry_run else 'dropped'} {len(r.stale)} side file(s) of rewritten shards "
                     f"(e.g. {r.stale[0]}); regenerate them (e.g. DALI indexes with wds2idx)")
    if not r.dry_run:
        console.info(f"verify: relake check {Path(r.out)} with the same options finds nothing")
