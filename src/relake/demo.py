"""``relake demo``: the whole job on a synthetic LAION-like dataset, narrated on stderr."""

from __future__ import annotations

import time
from pathlib import Path

from relake import console
from relake.errors import RelakeError
from relake.ingest import ingest_version
from relake.lake import Lake
from relake.verify import verify_target

ORIGINAL = "laion-demo"


def run_demo(lake: Lake, *, rows: int = 1_000_000, work: Path | None = None) -> None:
    from relake.synth import synth_original

    if lake.versions_dir.is_dir() and lake.version_names():
        raise RelakeError(
            f"the lake {lake.root} already holds versions ({', '.join(lake.version_names()[:5])}); the demo "
            "starts from an empty lake: use `relake --lake /tmp/relake-demo demo` or empty this one"
        )
    t0 = time.perf_counter()
    src = work or (lake.root / "demo" / "original")
    console.step(f"synthesising a LAION-like original: {rows:,} rows in 8 shards → {src}")
    with console.progress("synth", rows) as advance:
        last = [0]

        def tick(n: int) -> None:
            advance(n - last[0])
            last[0] = n

        t = time.perf_counter()
        synth_original(src, rows, 8, seed=2023, progress=tick)
    console.info(f"  {rows / (time.perf_counter() - t):,.0f} rows/s")

    console.step(f"ingesting it as version {ORIGINAL!r} (shards referenced in place, sha256 + fingerprint recorded)")
    t = time.perf_counter()
    v = ingest_version(lake, ORIGINAL, [str(src)])
    console.info(f"  {v.rows:,} rows, {v.bytes / 1e6:.1f} MB in {time.perf_counter() - t:.2f} s; "
                 f"fingerprint {v.fingerprint.value[:16]}…")
    console.kv(f"version {v.name}", [
        ("rows", f"{v.rows:,}"), ("shards", len(v.shards)), ("bytes", f"{v.bytes:,}"),
        ("roles", f"url={v.roles.url} caption={v.roles.caption} id={v.roles.id}"),
        ("fingerprint", v.fingerprint.value),
    ])

    console.step("verifying every shard's sha256, row count and the content fingerprint")
    reports = verify_target(lake, ORIGINAL)
    for r in reports:
        console.info(f"  {'ok' if r.ok else 'FAILED'}: {r.target} ({r.shards} shards, {r.rows:,} rows)")
    if not all(r.ok for r in reports):
        raise RelakeError("verification failed right after ingest; the disk may be failing")

    console.out.print(f"\ndemo finished in {time.perf_counter() - t0:.1f} s, lake at {lake.root}")
    console.out.print("try next:")
    for line in (
        f"relake --lake {lake.root} versions",
        f"relake --lake {lake.root} show {ORIGINAL}",
        f"relake --lake {lake.root} verify {ORIGINAL}",
    ):
        console.out.print("  " + line)
