"""Options more than one command takes, each defined once (a command module imports them from here)."""

from __future__ import annotations

from typing import Annotated

import typer

from relake import console
from relake.db import check_memory_limit, max_threads
from relake.engine import EngineKind
from relake.errors import InputError

MAX_COUNT = 1 << 62  # the most rows an -n / --limit takes (DuckDB's LIMIT is a BIGINT)

__all__ = [
    "CrowdOpt",
    "EngineOpt",
    "ImageColOpt",
    "JsonOpt",
    "KeepOnlyOpt",
    "ManifestOpt",
    "MaxDistanceOpt",
    "MemOpt",
    "MinQualityOpt",
    "PdqBlocklistOpt",
    "RayAddressOpt",
    "ThreadsOpt",
    "UrlColOpt",
    "clamp_threads",
]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
def _memory_limit(value: str | None) -> str | None:
    """--memory-limit, checked by the one parser (relake.db.check_memory_limit): a usage error (exit 2) otherwise."""
    if value is None:
        return None
    try:
        return check_memory_limit(value)
    except InputError as exc:
        raise typer.BadParameter(str(exc)) from None


def clamp_threads(value: int | None) -> int | None:
    """A thread or worker count, at most 4 per CPU (said in a warning): more only cost memory and time."""
    if value is not None and value > max_threads():
        console.warn(f"{value:,} threads is more than 4 per CPU; using {max_threads()}")
        return max_threads()
    return value


MemOpt = Annotated[str | None, typer.Option(
    "--memory-limit", metavar="SIZE", callback=_memory_limit,
    help="DuckDB memory limit: a number and a unit (KB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 2GB (default: half of "
         "RAM).")]
ThreadsOpt = Annotated[int | None, typer.Option("--threads", metavar="N", min=1, callback=clamp_threads,
                                                help="Shards written in parallel (at most 4 per CPU).")]
EngineOpt = Annotated[EngineKind, typer.Option(
    "--engine", help="Where per-shard jobs run: local threads, or tasks on a Ray cluster (pip install "
    "'relake[ray]'; the lake must be on a file system every node shares).")]
RayAddressOpt = Annotated[str | None, typer.Option(
    "--ray-address", metavar="ADDR", help="With --engine ray: the cluster to join, e.g. ray://head:10001 or auto "
    "(default: $RAY_ADDRESS, else a new local cluster).")]
ManifestOpt = Annotated[
    str | None,
    typer.Option("--manifest", metavar="DIR", help="Removal manifest folder (removed.parquet + manifest.json)."),
]
KeepOnlyOpt = Annotated[
    str | None,
    typer.Option("--keep-only", metavar="RELEASE",
                 help="Allowlist mode: rows whose (canonical URL, caption) is not in this release "
                                     "(version name, version folder or parquet files) are affected."),
]
PdqBlocklistOpt = Annotated[
    str | None,
    typer.Option("--blocklist", metavar="NAME", help="An image-pdq blocklist of the lake: every image of the copy is "
                 "decoded and PDQ-hashed, and rows whose image is within --max-distance of a listed hash are "
                 "affected (pip install 'relake[pdq]'). Never shows a listed hash."),
]
MaxDistanceOpt = Annotated[int, typer.Option("--max-distance", min=0, max=255, help="With --blocklist: PDQ bits "
                                             "(of 256) two images may differ by and match (Meta's threshold: 31).")]
MinQualityOpt = Annotated[int, typer.Option("--min-quality", min=0, max=100, help="With --blocklist: images whose "
                                            "PDQ quality is below this are not matched, only listed (Meta: 50).")]
UrlColOpt = Annotated[str | None, typer.Option("--url-col", metavar="COL",
                                               help="The copy's URL column (default: url, any case).")]
ImageColOpt = Annotated[
    str | None, typer.Option("--image-col", metavar="COL",
                             help="The copy's image hash column (default: md5, sha256 or sha1).")
]
CrowdOpt = Annotated[int | None, typer.Option("--min-crowd", metavar="K", min=0,
                                              help="K: non-sensitive hashes a category "
                                                                          "needs to hide sensitive ones.")]
