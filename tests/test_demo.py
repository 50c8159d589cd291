"""`relake demo` is the README's first command: it must keep working end to end."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
from typer.testing import CliRunner

from helpers import version_shard_tables
from relake.cli import app


def test_demo_runs_end_to_end_and_leaves_a_consistent_lake(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    result = CliRunner().invoke(app, ["--lake", str(lake), "demo", "--rows", "100000", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    names = sorted(p.name for p in (lake / "versions").iterdir())
    assert names == report["versions"] == ["laion-demo", "research", "research-safe"]
    assert report["affected"] > 0 and report["affected_after_clean"] == 0
    research = json.loads((lake / "versions" / "research" / "version.json").read_text(encoding="utf-8"))
    original = json.loads((lake / "versions" / "laion-demo" / "version.json").read_text(encoding="utf-8"))
    removed = pq.read_table(lake / "versions" / "research" / "removed.parquet")
    assert research["rows"] + removed.num_rows == original["rows"] == 100_000
    # every planted kind of rule removed something
    rules = {r for rs in removed.column("rules").to_pylist() for r in rs}
    assert rules == {"partner-urls", "partner-url-hashes", "partner-image-hashes", "unsafe-score", "bad-domains",
                     "takedown-requests", "user-reports"}
    release = lake / "demo" / "release-research"
    done = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=release, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    # the user's cleaned copy has no removed row left: no URL of which research keeps no row, and no (URL,
    # caption) of a removed row unless research keeps a row with that pair too (the manifest tells rows apart)
    cleaned = sorted((lake / "demo" / "user-copy-cleaned").glob("*.parquet"))
    left = {pair for p in cleaned for pair in zip(*pq.read_table(p, columns=["url", "caption"]).to_pydict().values(),
                                                   strict=True)}
    kept = {pair for t in version_shard_tables(lake / "versions" / "research")
            for pair in zip(t.column("URL").to_pylist(), t.column("TEXT").to_pylist(), strict=True)}
    gone = set(zip(removed.column("url").to_pylist(), removed.column("caption").to_pylist(), strict=True))
    assert cleaned and left and not (left & gone) - kept
    assert not {u for u, _ in left} & ({u for u, _ in gone} - {u for u, _ in kept})


def test_demo_refuses_a_lake_that_already_has_versions(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    (lake / "versions" / "mine").mkdir(parents=True)
    result = CliRunner().invoke(app, ["--lake", str(lake), "demo", "--rows", "1000"])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: the lake ")
    assert sorted(p.name for p in (lake / "versions").iterdir()) == ["mine"]
