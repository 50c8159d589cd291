"""Issue #10: withholding in diffs applies whichever way round and however the sides are named (versions, their
folders, the original's own files); counts name what they count (issue #9 item 7): --out says how many rows it
wrote, which is what the file holds, and how many withheld rows it left out."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner, Result

from helpers import laion_rows, write_shards
from relake.cli import app

SENSITIVE_IDS = {5, 17, 29}


def _run(lake: Path, *args: str | Path) -> Result:
    return CliRunner().invoke(app, ["--lake", str(lake), *map(str, args)])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("withhold")
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
                 ("build", "research", "--spec", spec, "--materialize")):
        r = _run(lake, *step)
        assert r.exit_code == 0, (step, r.stderr)
    return root, lake


def _secret_urls() -> set[str]:
    return {r["URL"] for r in laion_rows(0, 120) if r["SAMPLE_ID"] in SENSITIVE_IDS}


def _unsafe_only() -> int:
    return sum(1 for r in laion_rows(0, 120) if r["punsafe"] > 0.8 and r["SAMPLE_ID"] not in SENSITIVE_IDS)


@pytest.mark.parametrize("order", ["orig-research", "research-orig", "paths", "paths-reversed"])
def test_sensitive_rows_are_withheld_whichever_way_and_however_named(world: tuple[Path, Path], order: str) -> None:
    root, lake = world
    research_data = lake / "versions" / "research" / "data"
    a, b = {"orig-research": ("orig", "research"), "research-orig": ("research", "orig"),
            "paths": (f"{root / 'src'}/", f"{research_data}/"),
            "paths-reversed": (f"{research_data}/", f"{root / 'src'}/")}[order]
    out = root / f"{order}.jsonl"
    r = _run(lake, "diff", a, b, "--key", "SAMPLE_ID", "--json", "--out", out)
    assert r.exit_code == 1, r.stderr  # they differ
    assert not any(u in r.stdout + r.stderr for u in _secret_urls())
    written = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert not any(u in json.dumps(row) for row in written for u in _secret_urls())
    data = json.loads(r.stdout)
    forward = order in ("orig-research", "paths")
    assert (data["withheld_a"], data["withheld_b"]) == ((3, 0) if forward else (0, 3))
    assert data["rows"]["removed" if forward else "added"] == _unsafe_only() + 3  # counted, never listed
    assert data["out_rows"] == len(written) == _unsafe_only()  # what --out says is what the file holds


def test_the_human_summary_names_the_withheld_rows_and_what_out_left_out(world: tuple[Path, Path]) -> None:
    root, lake = world
    r = _run(lake, "diff", "research", "orig", "--key", "SAMPLE_ID", "--out", root / "h.parquet")
    assert r.exit_code == 1, r.stderr
    assert "3 of B: rows a sensitive rule removed; counted, never listed" in " ".join(r.stdout.split())
    n = pq.read_metadata(root / "h.parquet").num_rows
    assert f"{n:,} differing rows to {root / 'h.parquet'} (3 withheld rows not written)" in " ".join(r.stdout.split())
    assert not any(u in r.stdout + r.stderr for u in _secret_urls())


def test_show_names_what_each_category_count_counts(tmp_path: Path) -> None:
    """A row removed by two rules of two categories counts once in each category, and once (under the first) in
    the public category counts, which are what the public manifest lists (counted here from the rows)."""
    lake = tmp_path / "lake"
    write_shards(tmp_path / "src", rows=60, shards=1)
    spec = tmp_path / "spec.toml"
    spec.write_text('name = "v1"\nbase = "orig"\n'
                    '[[rule]]\nid = "a"\nwhere = "SAMPLE_ID % 3 = 0"\ncategory = "quality"\n'
                    '[[rule]]\nid = "b"\nwhere = "SAMPLE_ID % 5 = 0"\ncategory = "safety"\n', encoding="utf-8")
    for step in (("ingest", "orig", tmp_path / "src"), ("build", "v1", "--spec", spec)):
        assert _run(lake, *step).exit_code == 0
    ids = range(60)
    three, five = {i for i in ids if i % 3 == 0}, {i for i in ids if i % 5 == 0}
    stats = json.loads(_run(lake, "show", "v1", "--json").stdout)["stats"]
    assert stats["removed_by_category"] == {"quality": len(three), "safety": len(five)}
    assert stats["removed_by_public_category"] == {"quality": len(three), "safety": len(five - three)}
    assert stats["removed_rows"] == len(three | five) == sum(stats["removed_by_public_category"].values())
    text = " ".join(_run(lake, "show", "v1").stdout.split())
    assert "removed by category (a row counts once per category of its rules)" in text
    assert "each row once, under the first of its categories, as the removal manifest lists it" in text
    m = _run(lake, "manifest", "orig", "v1", "--out", tmp_path / "m", "--json")
    assert m.exit_code == 0, m.stderr
    assert json.loads(m.stdout)["counts"] == stats["removed_by_public_category"]
