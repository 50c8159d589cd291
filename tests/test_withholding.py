"""Issue #10: withholding in diffs applies whichever way round and however the sides are named (versions, their
folders, the original's own files); counts name what they count (issue #9 item 7): --out says how many rows it
wrote, which is what the file holds, and how many withheld rows it left out."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner, Result

from helpers import LAION_SCHEMA, SENSITIVE_IDS, laion_rows, partner_lake, write_shards, write_table
from relake.cli import app


def _run(lake: Path, *args: str | Path) -> Result:
    return CliRunner().invoke(app, ["--lake", str(lake), *map(str, args)])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("withhold")
    return root, partner_lake(root, build_flags=("--materialize",))


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


def keyed_world(root: Path) -> tuple[Path, set[str]]:
    """A lake whose original has rows without a URL; a sensitive `key` list removes two of them (and one row with a
    URL). Returns the lake and the captions of the sensitive rows without a URL (what a diff must never show)."""
    lake = root / "lake"
    rows = laion_rows(0, 60)
    for r in rows:
        if r["SAMPLE_ID"] % 10 == 3:
            r["URL"] = None
            r["TEXT"] = f"secret caption {r['SAMPLE_ID']}"
    write_table(pa.Table.from_pylist(rows, schema=LAION_SCHEMA), root / "src" / "part-00000.parquet")
    (root / "keys.txt").write_text("13\n33\n20\n", encoding="utf-8")
    spec = root / "spec.toml"
    spec.write_text('name = "research"\nbase = "orig"\n'
                    '[[rule]]\nid = "partner"\nblocklist = "partner"\ncategory = "safety"\nsensitive = true\n',
                    encoding="utf-8")
    for step in (("ingest", "orig", root / "src"),
                 ("blocklist", "add", "partner", root / "keys.txt", "--kind", "key"),
                 ("build", "research", "--spec", spec)):
        r = _run(lake, *step)
        assert r.exit_code == 0, (step, r.stderr)
    return lake, {"secret caption 13", "secret caption 33"}


@pytest.mark.parametrize("order", [("orig", "research"), ("research", "orig")])
def test_a_sensitive_row_without_a_url_is_withheld_by_its_key(tmp_path: Path, order: tuple[str, str]) -> None:
    """A row recorded only by its key (its URL is NULL) used to be compared by URL alone on sides that have a URL
    column, so it was listed, caption and all; it is withheld by key, and only rows without a URL are."""
    lake, secrets = keyed_world(tmp_path)
    out = tmp_path / "d.jsonl"
    r = _run(lake, "diff", *order, "--key", "SAMPLE_ID", "--json", "--out", out)
    assert r.exit_code == 1, r.stderr
    shown = r.stdout + r.stderr + out.read_text(encoding="utf-8")
    assert not any(s in shown for s in secrets)
    data = json.loads(r.stdout)
    assert data["withheld_a"] + data["withheld_b"] == 3
    assert data["out_rows"] == 0
