"""Clean a downstream copy: the same layout written to a new folder without its affected samples.

Affected parquet rows are dropped (order kept, by DuckDB on a single-threaded connection); the shard's side
drops the samples of their keys, every other sample's bytes unchanged, as its layout
(``relake.copies.layouts``) does it; each ``_stats.json`` has ``count``, ``successes``, failure counts and
``status_dict`` reduced by the removed rows; unaffected shards and other files are copied byte for byte; a
shard's stale side files (e.g. a DALI ``.idx``) are dropped when its samples change. Each output is written to
a temp name and renamed; ``OUT/.relake-clean.json`` (``relake.copies.resume``) records every finished unit.

A side's samples are matched by normal key (``relake.copies.keys``: folder prefix, ``./`` and leading zeros
ignored). Orphans (side keys without a parquet row, ``relake.copies.samples``) are kept byte for byte, except
*misplaced* ones, whose key is an affected row's in another shard: those are dropped too. Before the record is
marked complete every rewritten side is listed again, and a file of a dropped key still there is an
``AuditError`` (the output stays incomplete).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from relake.copies.check import AffectedRow, CheckReport, ShardCheck, check_copy
from relake.copies.keys import SampleKeys, normal_key
from relake.copies.layout import Layout, Written
from relake.copies.open import CopyShard, parquet_rows
from relake.copies.resume import (
    INCOMPLETE_NAME,
    PDQ_CACHE_NAME,
    finished,
    lock_out,
    open_record,
    source_ids,
    write_record,
)
from relake.copies.samples import leftover_names
from relake.copies.write import TMP_SUFFIX, copy_file, tmp_path
from relake.db import bind_shard, connect, write_shard
from relake.errors import AuditError, InputError, duckdb_errors
from relake.jsonfile import read_json
from relake.lake import Lake
from relake.pdq import DEFAULT_MAX_DISTANCE, DEFAULT_MIN_QUALITY
from relake.record import sha256_file
from relake.report import Report, json_meta, rounded
from relake.sql import query

if TYPE_CHECKING:
    from relake.engine import Engine

__all__ = ["CleanPlan", "CleanReport", "clean_copy", "dry_run_report", "prepare_clean", "run_clean"]

_RECORD_FLUSH_SECONDS = 1.0


@dataclass(frozen=True)
class _Unit:
    """One resumable piece of a clean: a shard (its parquet, tar, stats and side files) or one other file."""

    name: str  # record key: "shard 00000" or "file README.md"
    sources: tuple[Path, ...]
    removed: tuple[AffectedRow, ...] = ()
    drop: tuple[str, ...] = ()  # keys whose samples leave the shard's side: the removed rows' and misplaced ones
    shard: CopyShard | None = None
    layout: Layout | None = None  # the shard's
    rel: Path | None = None  # for other files


@dataclass
class CleanPlan:
    check: CheckReport
    out: Path
    units: list[_Unit]
    plan_id: str  # sha256 of the copy path and the affected (shard, position) pairs
    memory_limit: str | None = None
    workers: int = 2

    @property
    def rewritten(self) -> int:
        return sum(1 for u in self.units if u.removed or u.drop)


@dataclass
class CleanReport(Report):
    """What ``relake clean`` reports; ``affected`` in its JSON is the check it acted on."""

    copy: str
    out: str
    dry_run: bool
    layout: str  # a registered Layout's name, as in CheckReport
    shards: int
    rewritten: int = 0
    copied: int = 0  # shards copied unchanged
    files: int = 0  # other files copied
    resumed: int = 0  # units skipped: finished by an earlier run, outputs verified
    removed_rows: int = 0
    removed_members: int = 0
    failed_removed: int = 0
    tar_bytes_in: int = 0
    tar_bytes_out: int = 0
    orphans_kept: int = 0  # side keys without a parquet row, kept byte for byte (check reports them)
    orphans_dropped: int = 0  # orphans whose key is an affected row's (misplaced in another shard): dropped
    verified: int = 0  # rewritten sides listed again after the clean: none holds a file of an affected row
    stale: list[str] = field(default_factory=list)  # side files not carried over (their tar changed)
    seconds: float = field(default=0.0, metadata=json_meta(convert=rounded))
    check: CheckReport | None = field(default=None, repr=False, metadata=json_meta(name="affected", omit_none=True))


def prepare_clean(
    lake: Lake,
    copy: Path,
    manifest_dir: Path | None,
    out: Path,
    *,
    keep_only: str | None = None,
    url_col: str | None = None,
    image_col: str | None = None,
    memory_limit: str | None = None,
    workers: int = 2,
    engine: Engine | None = None,
    blocklist: str | None = None,
    max_distance: int = DEFAULT_MAX_DISTANCE,
    min_quality: int = DEFAULT_MIN_QUALITY,
    dry_run: bool = False,
) -> CleanPlan:
    """Check the copy (the manifest and PDQ matching on ``engine`` when given) and plan the clean into ``out``;
    writes nothing but, unless ``dry_run``, the PDQ results of a ``blocklist`` check (``OUT/.relake-pdq``, so
    a rerun after an interruption does not hash the images again; removed when the clean completes)."""
    src, dst = copy.resolve(), out.resolve()
    if src == dst or src in dst.parents:
        raise InputError(f"--out {out} is inside the copy {copy}; write the cleaned copy elsewhere")
    if dst in src.parents:
        raise InputError(f"the copy {copy} is inside --out {out}; write the cleaned copy elsewhere")
    report = check_copy(lake, copy, manifest_dir, keep_only=keep_only, url_col=url_col, image_col=image_col,
                        memory_limit=memory_limit, engine=engine, blocklist=blocklist, max_distance=max_distance,
                        min_quality=min_quality, workers=workers,
                        pdq_cache=out / PDQ_CACHE_NAME if blocklist is not None and not dry_run else None)
    layout = report.copy_layout
    assert layout is not None
    by_shard: dict[int, list[AffectedRow]] = {}
    for r in report.affected_rows:
        by_shard.setdefault(r.shard, []).append(r)
        if layout.format.needs_keys and r.key is None and not r.failed:
            raise InputError(f"{copy}: shard {layout.shards[r.shard].name} row {r.pos} is affected but has no key; "
                             "its files cannot be found")
    units = [_Unit(f"shard {s.name}", s.files, tuple(by_shard.get(i, ())), _drop(by_shard.get(i, ()), c),
                   shard=s, layout=layout.format)
             for i, (s, c) in enumerate(zip(layout.shards, report.shards, strict=True))]
    units += [_Unit(f"file {p.as_posix()}", (copy / p,), rel=p) for p in layout.others]
    ident = hashlib.sha256(str(src).encode("utf-8", "surrogateescape"))
    for r in report.affected_rows:
        ident.update(f"\n{layout.shards[r.shard].name}:{r.pos}".encode())
    for c in report.shards:
        for key in c.misplaced:
            ident.update(f"\n{c.shard}:orphan {key}".encode("utf-8", "surrogateescape"))
    return CleanPlan(report, out, units, ident.hexdigest(), memory_limit, max(1, workers))


def _drop(removed: Sequence[AffectedRow], shard: ShardCheck) -> tuple[str, ...]:
    """The normal keys (``relake.copies.keys``) whose samples leave a shard's side: its removed rows' keys and its
    misplaced orphans (files of an affected row of another shard)."""
    return tuple(sorted({normal_key(k) for k in [*(r.key for r in removed if r.key is not None),
                                                 *shard.misplaced]}))


def clean_copy(
    lake: Lake,
    copy: Path,
    manifest_dir: Path | None,
    out: Path,
    *,
    keep_only: str | None = None,
    dry_run: bool = False,
    url_col: str | None = None,
    image_col: str | None = None,
    memory_limit: str | None = None,
    workers: int = 2,
    progress: Callable[[int], None] | None = None,
    engine: Engine | None = None,
    blocklist: str | None = None,
    max_distance: int = DEFAULT_MAX_DISTANCE,
    min_quality: int = DEFAULT_MIN_QUALITY,
) -> CleanReport:
    """The copy without its affected samples, same layout, in ``out`` (resumable); ``dry_run`` writes nothing.

    ``engine`` runs the per-shard check and clean units (e.g. as Ray tasks); by default ``workers`` threads of
    this process."""
    plan = prepare_clean(lake, copy, manifest_dir, out, keep_only=keep_only, url_col=url_col, image_col=image_col,
                         memory_limit=memory_limit, workers=workers, engine=engine, blocklist=blocklist,
                         max_distance=max_distance, min_quality=min_quality, dry_run=dry_run)
    return dry_run_report(plan) if dry_run else run_clean(plan, progress=progress, engine=engine)


def dry_run_report(plan: CleanPlan) -> CleanReport:
    check = plan.check
    layout = check.copy_layout
    assert layout is not None
    rep = CleanReport(check.copy, str(plan.out), True, check.layout, len(layout.shards), check=check,
                      seconds=check.seconds)
    _count_orphans(rep, check)
    for u in plan.units:
        if u.shard is None:
            rep.files += 1
        elif u.removed or u.drop:
            rep.rewritten += 1
            rep.removed_rows += len(u.removed)
            rep.failed_removed += sum(r.failed for r in u.removed)
            rep.stale += [p.name for p in u.shard.extras]
        else:
            rep.copied += 1
    return rep


@dataclass
class _Done:
    unit: str
    action: str  # "rewritten" | "copied" | "file" | "resumed"
    entry: dict[str, Any]
    removed_members: int = 0
    tar_in: int = 0
    tar_out: int = 0
    stale: list[str] = field(default_factory=list)


def run_clean(
    plan: CleanPlan, *, progress: Callable[[int], None] | None = None, engine: Engine | None = None
) -> CleanReport:
    """Carry out a plan; ``progress(1)`` after each unit. Resumes from ``OUT/.relake-clean.json``.

    Units run on ``engine`` (one job per shard or other file, with absolute paths), else on ``plan.workers``
    threads; either way the driver alone keeps the record, and the output bytes are the same. The output folder
    is locked meanwhile (a second clean into it fails at once) and holds ``.relake-clean.incomplete`` until the
    record is marked complete: check refuses an unfinished output."""
    with lock_out(plan.out):
        rep = _run_locked(plan, progress, engine)
        shutil.rmtree(plan.out / PDQ_CACHE_NAME, ignore_errors=True)  # the check's results: done with
        (plan.out / INCOMPLETE_NAME).unlink(missing_ok=True)  # last: the record already says complete
        return rep


def _run_locked(plan: CleanPlan, progress: Callable[[int], None] | None, engine: Engine | None) -> CleanReport:
    start = time.perf_counter()
    check = plan.check
    layout = check.copy_layout
    assert layout is not None
    out = plan.out
    record = open_record(out, layout.root, plan.plan_id)
    (out / INCOMPLETE_NAME).touch()
    for leftover in sorted(out.rglob("*" + TMP_SUFFIX)):
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover)
        else:
            leftover.unlink(missing_ok=True)
    rep = CleanReport(check.copy, str(out), False, check.layout, len(layout.shards), check=check)
    units: dict[str, Any] = record["units"]
    last_flush = time.monotonic()

    def finish(done: _Done) -> None:
        nonlocal last_flush
        units[done.unit] = done.entry
        _tally(rep, done)
        if time.monotonic() - last_flush >= _RECORD_FLUSH_SECONDS:
            write_record(out, record)
            last_flush = time.monotonic()

    if engine is not None:
        root = out.resolve()
        jobs = [(_absolute(u), root, units.get(u.name), plan.memory_limit) for u in plan.units]
        try:
            engine.map(_clean_job, jobs, label=lambda job: f"{job[0].name} of {layout.root}",
                       on_done=(lambda: progress(1)) if progress is not None else None,
                       on_result=lambda _, done: finish(done))
            rep.verified = _verify_output(plan, units)
            record["complete"] = True
        finally:
            write_record(out, record)
        return _clean_totals(rep, check, start)
    pool = ThreadPoolExecutor(max_workers=plan.workers, thread_name_prefix="relake-clean")
    try:
        pending: set[Future[_Done]] = set()
        todo = iter(plan.units)
        while True:
            while len(pending) < plan.workers * 2 and (unit := next(todo, None)) is not None:
                pending.add(pool.submit(_run_unit, unit, out, units.get(unit.name), plan.memory_limit))
            if not pending:
                break
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                done = fut.result()
                units[done.unit] = done.entry
                _tally(rep, done)
                if progress is not None:
                    progress(1)
            if time.monotonic() - last_flush >= _RECORD_FLUSH_SECONDS:
                write_record(out, record)
                last_flush = time.monotonic()
        rep.verified = _verify_output(plan, units)
        record["complete"] = True
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        write_record(out, record)
    return _clean_totals(rep, check, start)


def _count_orphans(rep: CleanReport, check: CheckReport) -> None:
    dropped = sum(len(s.misplaced) for s in check.shards)
    rep.orphans_dropped, rep.orphans_kept = dropped, check.orphans - dropped


def _clean_totals(rep: CleanReport, check: CheckReport, start: float) -> CleanReport:
    _count_orphans(rep, check)
    rep.removed_rows = check.affected
    rep.failed_removed = sum(r.failed for r in check.affected_rows)
    rep.seconds = check.seconds + time.perf_counter() - start
    return rep


def _verify_output(plan: CleanPlan, units: dict[str, Any]) -> int:
    """List each rewritten side of the cleaned copy again: none may hold a member, file or record of a dropped
    key. Raises ``AuditError`` naming what remains (after removing its units from the record, so the output
    stays marked incomplete and a rerun redoes them); returns the number of sides listed."""
    layout = plan.check.copy_layout
    assert layout is not None
    listed = 0
    found: list[tuple[str, list[str]]] = []
    for u in plan.units:
        if u.shard is None or u.shard.side is None or not u.drop:
            continue
        left = leftover_names(layout.layout, plan.out / u.shard.side.name, u.drop)
        if left is None:
            continue
        listed += 1
        if left:
            found.append((u.shard.name, left))
            units.pop(u.name, None)
    if found:
        n = sum(len(names) for _, names in found)
        shard, names = found[0]
        raise AuditError(f"{plan.out}: the cleaned copy still holds {n:,} file(s) of affected rows in "
                         f"{len(found)} shard(s) (shard {shard}: {', '.join(names[:5])}); it is marked "
                         "incomplete, do not use it")
    return listed


def _absolute(unit: _Unit) -> _Unit:
    """The unit with absolute paths, for a job that may run on another machine (a shared file system)."""
    shard = unit.shard
    if shard is not None:
        shard = CopyShard(shard.name, shard.parquet.absolute(), shard.side and shard.side.absolute(),
                          shard.stats and shard.stats.absolute(), tuple(p.absolute() for p in shard.extras))
    return replace(unit, sources=tuple(p.absolute() for p in unit.sources), shard=shard)


def _clean_job(job: tuple[_Unit, Path, dict[str, Any] | None, str | None]) -> _Done:
    """One unit as an engine job: (unit with absolute paths, absolute out folder, its record entry, memory limit)."""
    return _run_unit(*job)


def _tally(rep: CleanReport, done: _Done) -> None:
    if done.action == "resumed":
        rep.resumed += 1
    elif done.action == "rewritten":
        rep.rewritten += 1
    elif done.action == "copied":
        rep.copied += 1
    else:
        rep.files += 1
    rep.removed_members += done.removed_members
    rep.tar_bytes_in += done.tar_in
    rep.tar_bytes_out += done.tar_out
    rep.stale += done.stale


# --- one unit


def _run_unit(unit: _Unit, out: Path, entry: dict[str, Any] | None, memory_limit: str | None) -> _Done:
    sources = source_ids(unit.sources)
    if finished(entry, out, sources):
        assert entry is not None
        return _Done(unit.name, "resumed", entry, int(entry.get("removed_members", 0)))
    if unit.shard is None:
        assert unit.rel is not None
        target = out / unit.rel
        target.parent.mkdir(parents=True, exist_ok=True)
        digest, _ = copy_file(unit.sources[0], tmp_path(target))
        os.replace(tmp_path(target), target)
        return _Done(unit.name, "file", {"sources": sources, "outputs": {unit.rel.as_posix(): digest}})
    shard, layout = unit.shard, unit.layout
    assert layout is not None
    outputs: dict[str, str] = {}
    side: Written | None = None
    stale: list[str] = []
    if not unit.removed and not unit.drop:
        for src in shard.files:
            if src == shard.side:
                side = layout.copy(src, tmp_path(out / src.name))
                continue
            outputs[src.name], _ = copy_file(src, tmp_path(out / src.name))
        action = "copied"
    else:
        if unit.removed:
            outputs[shard.parquet.name] = _write_parquet(shard.parquet, tmp_path(out / shard.parquet.name),
                                                         [r.pos for r in unit.removed], memory_limit)
        else:  # only misplaced orphans leave: the rows stay
            outputs[shard.parquet.name], _ = copy_file(shard.parquet, tmp_path(out / shard.parquet.name))
        if shard.side is not None:
            side = layout.filter(shard.side, tmp_path(out / shard.side.name), SampleKeys(unit.drop))
        if shard.stats is not None and unit.removed:
            outputs[shard.stats.name] = _write_stats(shard.stats, tmp_path(out / shard.stats.name), unit.removed)
        elif shard.stats is not None:
            outputs[shard.stats.name], _ = copy_file(shard.stats, tmp_path(out / shard.stats.name))
        stale = [p.name for p in shard.extras]
        action = "rewritten"
    if side is not None:
        assert shard.side is not None
        outputs[shard.side.name + ("/" if layout.folder else "")] = side.digest
    members_dropped = side.dropped if side is not None else 0
    tar_in, tar_out = (side.bytes_in, side.bytes_out) if side is not None else (0, 0)
    for name in outputs:
        name = name.removesuffix("/")
        if (out / name).is_dir() and not (out / name).is_symlink():
            shutil.rmtree(out / name)  # a sample folder from an earlier, unfinished run: replaced whole
        os.replace(tmp_path(out / name), out / name)
    for name in stale:
        (out / name).unlink(missing_ok=True)  # from an earlier run of an older copy
    entry = {"sources": sources, "outputs": outputs, "removed_rows": len(unit.removed),
             "removed_members": members_dropped}
    return _Done(unit.name, action, entry, members_dropped, tar_in, tar_out, stale)


def _write_parquet(src: Path, dst: Path, positions: Sequence[int], memory_limit: str | None) -> str:
    rows = parquet_rows(src)
    with connect(None, threads=1, memory_limit=memory_limit) as db:
        plain = db.plain_path(src)
        codec_rows = query("db/shard_codec").rows(db.con, file=plain)
        codec = str(codec_rows[0][0]).lower() if codec_rows else "snappy"
        codec = codec if codec in ("snappy", "zstd", "gzip", "lz4", "brotli", "uncompressed") else "snappy"
        with duckdb_errors(f"{src}: cannot rewrite"):
            write_shard(db.con, str(dst), codec, bind_shard(db.con, plain), positions, rows)
    kept = parquet_rows(dst)
    if kept != rows - len(set(positions)):
        raise InputError(f"{src}: rewrite kept {kept} rows, expected {rows - len(set(positions))}")
    return sha256_file(dst)


def _write_stats(src: Path, dst: Path, removed: Sequence[AffectedRow]) -> str:
    """img2dataset's per-shard stats, less the removed rows (counts and status_dict)."""
    stats = read_json(src, "img2dataset stats")
    by_status = Counter(r.status for r in removed)
    fields = {"count": len(removed), "successes": by_status["success"],
              "failed_to_download": by_status["failed_to_download"],
              "failed_to_resize": by_status["failed_to_resize"]}
    for name, n in fields.items():
        if isinstance(stats.get(name), int):
            stats[name] = max(0, stats[name] - n)
    status_dict = stats.get("status_dict")
    if isinstance(status_dict, dict):
        for r in removed:
            label = "success" if r.status == "success" else r.error
            if label in status_dict and isinstance(status_dict[label], int):
                status_dict[label] -= 1
                if status_dict[label] <= 0:
                    del status_dict[label]
    data = json.dumps(stats, indent=4).encode("utf-8")  # as img2dataset writes it
    dst.write_bytes(data)
    return hashlib.sha256(data).hexdigest()
