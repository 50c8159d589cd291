"""Benchmark: how long a spec error takes to arrive, from 10K to 10M base rows (issue #10: every rule of a spec
is vetted against the base's schema before any row is read, so the time should stay about constant).

    python bench/bench_spec_check.py [--sizes 10000,1000000,10000000] [--work /tmp/relake-bench-spec]

For each size: synthesise a LAION-like original, ingest it, then time `relake build` of a spec whose first rule is
a domain blocklist and whose last `where` has a typo (it must fail before the domain rule reads a row), and of a
spec whose `where` is not boolean. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from relake.blocklist import add_blocklist
from relake.build import build_version
from relake.errors import SpecError
from relake.ingest import ingest_version
from relake.lake import Lake
from relake.spec import parse_spec
from relake.synth import synth_original

SPECS = {
    "typo after a domain rule": (
        b'name = "v1"\nbase = "orig"\n'
        b'[[rule]]\nid = "dom"\nblocklist = "dom"\ncategory = "quality"\n'
        b'[[rule]]\nid = "typo"\nwhere = "lenght(TEXT) > 3"\ncategory = "quality"\n'
    ),
    "non-boolean where": (
        b'name = "v1"\nbase = "orig"\n[[rule]]\nid = "nb"\nwhere = "punsafe"\ncategory = "quality"\n'
    ),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,1000000,10000000")
    ap.add_argument("--work", default="/tmp/relake-bench-spec")
    args = ap.parse_args()
    work = Path(args.work)
    print(f"{'rows':>12}  " + "  ".join(f"{name:>26}" for name in SPECS))
    for rows in (int(x) for x in args.sizes.split(",")):
        folder = work / str(rows)
        shutil.rmtree(folder, ignore_errors=True)
        synth_original(folder / "src", rows=rows, shards=max(1, rows // 1_000_000), seed=1)
        lake = Lake.at(folder / "lake")
        ingest_version(lake, "orig", [str(folder / "src")])
        (folder / "dom.txt").write_text("example.com\n", encoding="utf-8")
        add_blocklist(lake, "dom", folder / "dom.txt", "domain")
        times = []
        for text in SPECS.values():
            start = time.perf_counter()
            try:
                build_version(lake, parse_spec(text))
            except SpecError:
                pass
            else:
                raise SystemExit("the spec was expected to fail")
            times.append(time.perf_counter() - start)
        print(f"{rows:>12,}  " + "  ".join(f"{t:>25.3f}s" for t in times))


if __name__ == "__main__":
    main()
