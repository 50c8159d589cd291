"""Options more than one command takes, each defined once (a command module imports them from here)."""

from __future__ import annotations

from typing import Annotated

import typer

from relake.engine import EngineKind

__all__ = [
    "CrowdOpt", "EngineOpt", "ImageColOpt", "JsonOpt", "KeepOnlyOpt", "ManifestOpt", "MemOpt", "RayAddressOpt",
    "UrlColOpt",
]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
MemOpt = Annotated[
    str | None, typer.Option("--memory-limit", help="DuckDB memory limit, e.g. 2GB (default: half of RAM).")
]
EngineOpt = Annotated[EngineKind, typer.Option(
    "--engine", help="Where per-shard jobs run: local threads, or tasks on a Ray cluster (pip install "
    "'relake[ray]'; the lake must be on a file system every node shares).")]
RayAddressOpt = Annotated[str | None, typer.Option(
    "--ray-address", metavar="ADDR", help="With --engine ray: the cluster to join, e.g. ray://head:10001 or auto "
    "(default: $RAY_ADDRESS, else a new local cluster).")]
ManifestOpt = Annotated[
    str | None,
    typer.Option("--manifest", help="Removal manifest folder (removed.parquet + manifest.json)."),
]
KeepOnlyOpt = Annotated[
    str | None,
    typer.Option("--keep-only", help="Allowlist mode: rows whose (canonical URL, caption) is not in this release "
                                     "(version name, version folder or parquet files) are affected."),
]
UrlColOpt = Annotated[str | None, typer.Option("--url-col", help="The copy's URL column (default: url, any case).")]
ImageColOpt = Annotated[
    str | None, typer.Option("--image-col", help="The copy's image hash column (default: md5, sha256 or sha1).")
]
CrowdOpt = Annotated[int | None, typer.Option("--min-crowd", min=0, help="K: non-sensitive hashes a category "
                                                                          "needs to hide sensitive ones.")]
