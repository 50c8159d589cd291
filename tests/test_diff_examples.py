"""`diff` shows example rows (--limit N, --stat for none), never a withheld one, and its --out carries the rules
and categories of each removed row when B descends from A (issue 18)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner, Result

from helpers import SENSITIVE_IDS, laion_rows, partner_lake
from relake.cli import app


def _run(lake: Path, *args: str | Path) -> Result:
    return CliRunner().invoke(app, ["--lake", str(lake), *map(str, args)])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """partner_lake, and safe = research without SAMPLE_ID % 10 = 0 (a second generation)."""
    root = tmp_path_factory.mktemp("examples")
    return root, partner_lake(root, ("build", "safe", "--base", "research", "--where", "SAMPLE_ID % 10 = 0",
                                     "--category", "tens"))


def _unsafe_only() -> list[int]:
    return sorted(r["SAMPLE_ID"] for r in laion_rows(0, 120) if r["punsafe"] > 0.8
                  and r["SAMPLE_ID"] not in SENSITIVE_IDS)


def _secret_urls() -> set[str]:
    return {r["URL"] for r in laion_rows(0, 120) if r["SAMPLE_ID"] in SENSITIVE_IDS}


def test_diff_shows_a_few_example_rows_never_a_withheld_one(world: tuple[Path, Path]) -> None:
    _, lake = world
    r = _run(lake, "diff", "orig", "research", "--json", "--limit", "1000")
    assert r.exit_code == 1, r.stderr
    data = json.loads(r.stdout)
    assert [e["key"]["SAMPLE_ID"] for e in data["examples"]] == _unsafe_only()
    assert all(e["change"] == "removed" and e["after"] is None for e in data["examples"])
    for args in ((), ("--limit", "1000"), ("--json",)):
        shown = _run(lake, "diff", "orig", "research", *args)
        assert not any(u in shown.stdout + shown.stderr for u in _secret_urls()), args
    screen = _run(lake, "diff", "orig", "research").stdout
    assert f"removed: 5 example rows of {len(_unsafe_only())}" in screen
    assert laion_rows(0, 120)[_unsafe_only()[0]]["URL"] in screen
    back = json.loads(_run(lake, "diff", "research", "orig", "--json", "--limit", "2").stdout)
    assert [(e["change"], e["key"]["SAMPLE_ID"]) for e in back["examples"]] == [("added", i) for i in
                                                                                _unsafe_only()[:2]]


def test_diff_stat_shows_counts_only(world: tuple[Path, Path]) -> None:
    _, lake = world
    r = _run(lake, "diff", "orig", "research", "--stat")
    assert r.exit_code == 1
    assert "example row" not in r.stdout and "removed by rule" in r.stdout
    assert json.loads(_run(lake, "diff", "orig", "research", "--stat", "--json").stdout)["examples"] == []


def test_diff_shows_changed_values_before_and_after(world: tuple[Path, Path], tmp_path: Path) -> None:
    _, lake = world
    rows = laion_rows(0, 120)
    rows[3]["TEXT"] = "an edited caption"
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "edited.parquet")
    r = _run(lake, "diff", "orig", tmp_path / "edited.parquet", "--key", "SAMPLE_ID", "--json")
    [example] = json.loads(r.stdout)["examples"]
    assert (example["change"], example["changed_columns"], example["after"]["TEXT"]) == (
        "changed", ["TEXT"], "an edited caption")
    screen = _run(lake, "diff", "orig", tmp_path / "edited.parquet", "--key", "SAMPLE_ID").stdout
    assert "caption number 3 → an" in screen  # the table may wrap the rest


@pytest.mark.parametrize(("a", "b", "rules"), [
    ("orig", "research", {"unsafe"}),
    ("orig", "safe", {"unsafe", "where-1"}),  # two generations: each build's removed.parquet
    ("research", "safe", {"where-1"}),
])
def test_diff_out_carries_the_rules_of_each_removed_row(world: tuple[Path, Path], a: str, b: str,
                                                        rules: set[str]) -> None:
    root, lake = world
    out = root / f"{a}-{b}.jsonl"
    r = _run(lake, "diff", a, b, "--out", out, "--json")
    assert r.exit_code == 1, r.stderr
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert lines and all(x["change"] == "removed" for x in lines)
    assert {rule for x in lines for rule in x["removed_rules"]} == rules
    assert all(x["removed_categories"] == (["tens"] if x["removed_rules"] == ["where-1"] else ["safety"])
               for x in lines)
    assert not {x["before_URL"] for x in lines} & _secret_urls()
    assert "partner" not in out.read_text(encoding="utf-8")


def test_diff_out_of_unrelated_sides_has_no_rule_columns(world: tuple[Path, Path]) -> None:
    root, lake = world
    out = root / "paths.csv"
    r = _run(lake, "diff", f"{root / 'src'}/", "research", "--key", "SAMPLE_ID", "--out", out)
    assert r.exit_code == 1, r.stderr
    assert "removed_rules" not in out.read_text(encoding="utf-8").splitlines()[0]
    out = root / "related.csv"
    _run(lake, "diff", "orig", "research", "--out", out)
    header, first = out.read_text(encoding="utf-8").splitlines()[:2]
    assert header.endswith("removed_rules,removed_categories") and first.endswith("unsafe,safety")
