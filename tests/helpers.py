"""Test helpers shared by every test module: folder snapshots and tiny LAION-like parquet shards.

Import with ``from helpers import snapshot, laion_table, write_shards`` (pytest puts ``tests/`` on the path).
"""

from __future__ import annotations

import hashlib
import os
import random
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner, Result

from relake.cli import app

Cli = Callable[..., Result]  # the ``cli`` fixture: ``cli("show", "v1")`` runs ``relake --lake LAKE show v1``


class Entry(NamedTuple):
    """One path of a snapshot. Folders have size 0 (file systems report noisy folder sizes)."""

    type: str  # "file" | "dir" | "symlink" | "other"
    size: int
    mode: int  # permission bits only
    sha256: str  # of the content (file), of the link target text (symlink), "" otherwise


def snapshot(root: str | os.PathLike[str]) -> dict[str, Entry]:
    """Every path under ``root`` (relative, posix style, root itself excluded) -> type, size, mode, sha256.

    Symlinks are recorded, never followed. A missing ``root`` gives an empty dict, so "nothing was created"
    compares equal to "nothing was there".
    """
    base = Path(root)
    out: dict[str, Entry] = {}
    if not base.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        for name in sorted(dirnames) + sorted(filenames):
            p = Path(dirpath) / name
            rel = p.relative_to(base).as_posix()
            st = p.lstat()
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(p)
                out[rel] = Entry("symlink", len(target), mode, hashlib.sha256(target.encode()).hexdigest())
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = Entry("dir", 0, mode, "")
            elif stat.S_ISREG(st.st_mode):
                out[rel] = Entry("file", st.st_size, mode, hashlib.sha256(p.read_bytes()).hexdigest())
            else:
                out[rel] = Entry("other", 0, mode, "")
    return out


def snapshot_diff(before: dict[str, Entry], after: dict[str, Entry]) -> dict[str, tuple[Any, Any]]:
    """Paths that differ between two snapshots -> (before, after); readable in assertion messages."""
    keys = sorted(set(before) | set(after))
    return {k: (before.get(k), after.get(k)) for k in keys if before.get(k) != after.get(k)}


# --- tiny LAION-like data -------------------------------------------------------------------------

LAION_SCHEMA = pa.schema(
    [
        ("SAMPLE_ID", pa.int64()),
        ("URL", pa.string()),
        ("TEXT", pa.string()),
        ("punsafe", pa.float64()),
    ]
)


def laion_rows(start: int, n: int) -> list[dict[str, Any]]:
    """Rows ``start .. start+n-1``: unique ids, URLs with a few hosts, every 7th caption NULL."""
    return [
        {
            "SAMPLE_ID": i,
            "URL": f"https://img{i % 13}.example.com/a/{i}.jpg",
            "TEXT": None if i % 7 == 0 else f"caption number {i}",
            "punsafe": (i * 37 % 1000) / 1000.0,
        }
        for i in range(start, start + n)
    ]


def laion_table(start: int = 0, n: int = 100, schema: pa.Schema = LAION_SCHEMA) -> pa.Table:
    return pa.Table.from_pylist(laion_rows(start, n), schema=schema)


def write_table(table: pa.Table, path: str | os.PathLike[str], **kwargs: Any) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, p, **kwargs)
    return p


def write_shards(
    folder: str | os.PathLike[str],
    rows: int = 300,
    shards: int = 3,
    *,
    start: int = 0,
    prefix: str = "part",
    **kwargs: Any,
) -> list[Path]:
    """``rows`` LAION-like rows split into ``shards`` consecutive parquet files ``<prefix>-NNNNN.parquet``."""
    table = laion_table(start, rows)
    return write_split(table, folder, shards, prefix=prefix, **kwargs)


def write_split(
    table: pa.Table, folder: str | os.PathLike[str], shards: int, *, prefix: str = "part", **kwargs: Any
) -> list[Path]:
    """Split ``table`` into ``shards`` near-equal consecutive slices, one parquet file each."""
    out: list[Path] = []
    n = table.num_rows
    bounds = [n * k // shards for k in range(shards + 1)]
    for k in range(shards):
        part = table.slice(bounds[k], bounds[k + 1] - bounds[k])
        out.append(write_table(part, Path(folder) / f"{prefix}-{k:05d}.parquet", **kwargs))
    return out


def shuffled(table: pa.Table, seed: int) -> pa.Table:
    order = list(range(table.num_rows))
    random.Random(seed).shuffle(order)
    return table.take(pa.array(order, type=pa.int64()))


def read_rows(paths: Sequence[str | os.PathLike[str]]) -> list[dict[str, Any]]:
    """All rows of these parquet files, in file order (pyarrow, independent of relake)."""
    rows: list[dict[str, Any]] = []
    for p in paths:
        rows.extend(pq.read_table(p).to_pylist())
    return rows


def sha256_of(path: str | os.PathLike[str]) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def error_line(result: Result) -> str:
    """The single ``Error:`` line a handled error prints on stderr (asserting there is exactly one)."""
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1, f"expected one Error: line, got stderr={result.stderr!r} stdout={result.stdout!r}"
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


def ok(result: Result) -> Result:
    """A command that succeeded (exit 0)."""
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def found(result: Result) -> Result:
    """Something was found (A and B differ, affected rows, a listed URL, a failed verification): exit 1."""
    assert result.exit_code == 1, (result.stdout, result.stderr, result.exception)
    return result


def fails(result: Result) -> str:
    """A handled error: exit 2 and one ``Error:`` line on stderr, which is returned."""
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    return error_line(result)


# --- a lake with a sensitive partner list -------------------------------------------------------------------------

SENSITIVE_IDS = frozenset({5, 17, 29})


def partner_lake(root: Path, *steps: tuple[str | Path, ...], build_flags: tuple[str, ...] = ()) -> Path:
    """``root/lake`` with orig (120 rows in 2 shards) and research: orig without a partner's URLs (SAMPLE_ID in
    SENSITIVE_IDS; a sensitive rule) and the rows with punsafe > 0.8 (rule ``unsafe``), built with
    ``build_flags``; then each CLI step."""
    lake = root / "lake"
    write_shards(root / "src", rows=120, shards=2)
    rows = laion_rows(0, 120)
    (root / "partner.txt").write_text("".join(r["URL"] + "\n" for r in rows if r["SAMPLE_ID"] in SENSITIVE_IDS))
    spec = root / "spec.toml"
    spec.write_text('name = "research"\nbase = "orig"\n'
                    '[[rule]]\nid = "partner"\nblocklist = "partner"\ncategory = "safety"\nsensitive = true\n'
                    '[[rule]]\nid = "unsafe"\nwhere = "punsafe > 0.8"\ncategory = "safety"\n', encoding="utf-8")
    for step in (("ingest", "orig", root / "src"),
                 ("blocklist", "add", "partner", root / "partner.txt", "--kind", "url"),
                 ("build", "research", "--spec", spec, *build_flags), *steps):
        r = CliRunner().invoke(app, ["--lake", str(lake), *map(str, step)])
        assert r.exit_code == 0, (step, r.stderr)
    return lake


def version_shard_tables(version_dir: Path) -> list[pa.Table]:
    """The rows of each shard of a lake version, computed with pyarrow alone from its files (the oracle for
    deletion vectors): a materialised version's shard files, or a vector version's root shards without the
    positions its ``deletes.parquet`` lists."""
    import json

    record = json.loads((version_dir / "version.json").read_text(encoding="utf-8"))
    tables = [pq.read_table(p if (p := Path(s["path"])).is_absolute() else version_dir / p)
              for s in record["shards"]]
    vector = record.get("vector")
    if vector is None:
        return tables
    drops = pq.read_table(version_dir / vector["path"]).to_pylist()
    out = []
    for i, t in enumerate(tables):
        gone = {d["position"] for d in drops if d["shard"] == i}
        out.append(t.filter(pa.array([p not in gone for p in range(t.num_rows)], pa.bool_())))
    return out
