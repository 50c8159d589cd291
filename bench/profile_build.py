"""Where a build's time goes: wraps the build's stages and prints each query over 50 ms.

    python bench/profile_build.py LAKE SPEC.toml
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Any

import relake.build as b
import relake.sql as s
from relake.lake import Lake
from relake.spec import parse_spec

_run = s.Query.run


def timed_run(self: s.Query, con: Any, **p: Any) -> Any:
    t = time.perf_counter()
    r = _run(self, con, **p)
    d = time.perf_counter() - t
    if d > 0.05:
        print(f"  query {self.name}: {d:.2f}s")
    return r


def main() -> None:
    s.Query.run = timed_run  # type: ignore[method-assign]
    for name in ("_run_rules", "_audit", "_bind_base", "_positions"):
        f = getattr(b, name)

        def wrap(*a: Any, _f: Any = f, _n: str = name, **k: Any) -> Any:
            t = time.perf_counter()
            r = _f(*a, **k)
            print(f"{_n}: {time.perf_counter() - t:.2f}s")
            return r

        setattr(b, name, wrap)
    lake = Lake(Path(sys.argv[1]))
    spec = parse_spec(Path(sys.argv[2]).read_bytes())
    shutil.rmtree(lake.version_dir(spec.name), ignore_errors=True)
    t = time.perf_counter()
    b.build_version(lake, spec)
    print(f"total {time.perf_counter() - t:.2f}s")


if __name__ == "__main__":
    main()
