"""Where per-shard jobs run: threads of this process (``local``) or tasks on a Ray cluster (``ray``).

The work is the same either way: a top-level function applied to one picklable job per shard, each running
the same ``queries/`` SQL in its own single-threaded DuckDB, so the output bytes do not depend on the engine.
The driver keeps everything else (matching, audits, the manifest, the atomic publish); a failed job raises
before anything is published.

On Ray, every node must have the same relake (and DuckDB) installed, and see the lake and the base shards at
the same absolute paths (a shared file system); job paths are absolute for that reason. ``address=None`` joins
the cluster named by ``$RAY_ADDRESS``, else starts a local one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, TypeVar

import duckdb

from relake.errors import EngineError, InputError, RelakeError, first_line, from_duckdb
from relake.lake import has_glob_chars
from relake.sql import query

J = TypeVar("J")
R = TypeVar("R")

RAY_MISSING = "the Ray engine needs Ray: pip install 'relake[ray]'"


class EngineKind(StrEnum):
    local = "local"
    ray = "ray"


class Engine(Protocol):
    name: str
    distributed: bool  # jobs may run on other machines (paths must be absolute and shared)

    def map(
        self,
        fn: Callable[[J], R],
        jobs: Sequence[J],
        *,
        label: Callable[[J], str] | None = None,
        on_done: Callable[[], None] | None = None,
        on_result: Callable[[int, R], None] | None = None,
    ) -> list[R]:
        """``[fn(j) for j in jobs]``, in job order; ``on_result(index, result)`` and then ``on_done()`` are
        called on the driver once per finished job (in finishing order on Ray, in job order locally)."""
        ...


class LocalEngine:
    """A thread pool in this process (DuckDB releases the GIL while it works)."""

    name = "local"
    distributed = False

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)

    def map(
        self,
        fn: Callable[[J], R],
        jobs: Sequence[J],
        *,
        label: Callable[[J], str] | None = None,
        on_done: Callable[[], None] | None = None,
        on_result: Callable[[int, R], None] | None = None,
    ) -> list[R]:
        out: list[R] = []
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for i, r in enumerate(pool.map(fn, jobs)):
                out.append(r)
                if on_result:
                    on_result(i, r)
                if on_done:
                    on_done()
        return out


class RayEngine:
    """One Ray task per job (one CPU each, retried up to 3 times if its worker dies)."""

    name = "ray"
    distributed = True

    def __init__(self, address: str | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise EngineError(RAY_MISSING) from None
        self._ray: Any = ray
        self.address = address
        self._remote: dict[Callable[..., Any], Any] = {}
        if not ray.is_initialized():
            try:
                ray.init(address=address, ignore_reinit_error=True, include_dashboard=False, log_to_driver=False)
            except Exception as exc:
                where = address or os.environ.get("RAY_ADDRESS") or "a new local cluster"
                raise EngineError(f"cannot start or join Ray ({where}): {first_line(exc)}") from exc

    def map(
        self,
        fn: Callable[[J], R],
        jobs: Sequence[J],
        *,
        label: Callable[[J], str] | None = None,
        on_done: Callable[[], None] | None = None,
        on_result: Callable[[int, R], None] | None = None,
    ) -> list[R]:
        ray = self._ray
        remote = self._remote.get(fn)
        if remote is None:
            remote = self._remote[fn] = ray.remote(num_cpus=1, max_retries=3, retry_exceptions=False)(fn)
        refs = [remote.remote(j) for j in jobs]
        index = {ref: i for i, ref in enumerate(refs)}
        results: list[Any] = [None] * len(refs)
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    i = index[ref]
                    try:
                        results[i] = ray.get(ref)
                    except ray.exceptions.RayError as exc:
                        what = label(jobs[i]) if label else f"job {i + 1} of {len(jobs)}"
                        cause = getattr(exc, "cause", None) or exc
                        raise task_error(getattr(fn, "__name__", "job"), what, cause) from exc
                    if on_result:
                        on_result(i, results[i])
                    if on_done:
                        on_done()
        finally:
            for ref in pending:  # on failure or interrupt: stop what is still queued or running
                ray.cancel(ref)
        return results


def task_error(task: str, what: str, cause: BaseException) -> RelakeError:
    """The error a failed Ray task ends the run with, naming the task, its job and the cause: of the cause's class
    when relake raised it on purpose (an InputError stays one), of the class DuckDB's error translates to (out of
    memory: ResourceError), else an EngineError (say, its worker died)."""
    failed = f"Ray task {task} for {what} failed:"
    if isinstance(cause, duckdb.Error):
        translated = from_duckdb(cause, failed, then="; the lake is unchanged")
        if isinstance(translated, RelakeError):
            return translated
    message = f"{failed} {type(cause).__name__}: {first_line(cause)}; the lake is unchanged"
    if isinstance(cause, RelakeError) and type(cause).__init__ is RelakeError.__init__:
        return type(cause)(message)
    return EngineError(message)


def get_engine(name: str, address: str | None = None, workers: int | None = None) -> Engine:
    if name == EngineKind.local:
        if address is not None:
            raise EngineError("--ray-address only applies with --engine ray")
        return LocalEngine(workers)
    if name == EngineKind.ray:
        return RayEngine(address)
    raise EngineError(f"unknown engine {name!r}; use local or ray")


@contextmanager
def plain_file(path: str) -> Iterator[str]:
    """A path DuckDB reads as exactly this one file: itself, or (glob characters) a private symlink to it.

    For job functions, which run without the driver's ``Db`` and perhaps on another machine."""
    if not has_glob_chars(path):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="relake-job-") as d:
        if has_glob_chars(d):
            raise InputError(f"the temp folder {d} has glob characters; set TMPDIR to a plain path")
        link = Path(d) / "f.parquet"
        os.symlink(os.path.abspath(path), link)
        yield str(link)


def job_connection(memory_limit: str | None = None, spill: str | None = None) -> duckdb.DuckDBPyConnection:
    """The DuckDB of one engine job: in memory, single-threaded and in insertion order (so its output bytes do
    not depend on the machine), quiet, with the driver's memory limit and, when given, its own spill folder."""
    config: dict[str, str | bool | int | float | list[str]] = {"threads": 1, "preserve_insertion_order": True}
    if memory_limit:
        config["memory_limit"] = memory_limit
    if spill:
        config["temp_directory"] = spill
    con = duckdb.connect(":memory:", config=config)
    query("db/quiet").run(con)
    return con
