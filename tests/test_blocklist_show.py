"""`relake blocklist show NAME` and blocklist revisions in builds (issue 18): a version keeps its revision."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from helpers import Cli, fails, ok


@pytest.fixture
def urls(src: list[Path]) -> list[str]:
    return [str(r["URL"]) for r in pq.read_table(src[0]).to_pylist()]


def _list(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(u + "\n" for u in lines), encoding="utf-8")
    return path


def test_versions_keep_the_revision_they_were_built_with(cli: Cli, src: list[Path], tmp_path: Path,
                                                         urls: list[str]) -> None:
    ok(cli("ingest", "orig", *src))
    ok(cli("blocklist", "add", "partner", _list(tmp_path / "jan.txt", [*urls[:3], "http://none.example/x"]),
           "--kind", "url"))
    ok(cli("build", "jan", "--base", "orig", "--blocklist", "partner"))
    said = ok(cli("blocklist", "add", "partner", _list(tmp_path / "feb.txt", urls[:5]), "--kind", "url")).stdout
    assert said.startswith("added blocklist partner revision 2 (url): 5 unique of 5 entries")
    ok(cli("build", "feb", "--base", "orig", "--blocklist", "partner"))
    spec = tmp_path / "pinned.toml"
    spec.write_text('name = "pinned"\nbase = "orig"\n[[rule]]\nid = "p"\ncategory = "partner"\n'
                    'blocklist = "partner@1"\n', encoding="utf-8")
    ok(cli("build", "pinned", "--spec", spec))

    rows = {n: json.loads(ok(cli("show", n, "--json")).stdout)["rows"] for n in ("orig", "jan", "feb", "pinned")}
    assert (rows["orig"] - rows["jan"], rows["orig"] - rows["feb"], rows["orig"] - rows["pinned"]) == (3, 5, 3)
    recorded = json.loads(ok(cli("show", "jan", "--json")).stdout)["recipe"]["rules"][0]["blocklist"]
    assert (recorded["name"], recorded["revision"]) == ("partner", 1)

    shown = json.loads(ok(cli("blocklist", "show", "partner", "--json")).stdout)
    assert [(r["revision"], r["unique_entries"]) for r in shown["revisions"]] == [(1, 4), (2, 5)]
    assert [(u["version"], u["revision"], u["entries"], u["matched_entries"], u["removed_rows"])
            for u in shown["used_by"]] == [("feb", 2, 5, 5, 5), ("jan", 1, 4, 3, 3), ("pinned", 1, 4, 3, 3)]
    assert shown["revisions"][0]["sha256"] == recorded["sha256"]
    screen = ok(cli("blocklist", "show", "partner")).stdout
    assert "used by" in screen and "pinned" in screen
    assert "has no revision 3 (revisions: 1, 2)" in fails(cli("build", "x", "--base", "orig", "--blocklist",
                                                              "partner@3"))
    assert "no blocklist named 'nope'" in fails(cli("blocklist", "show", "nope"))


def test_an_old_lakes_records_are_read(cli: Cli, src: list[Path], tmp_path: Path, urls: list[str],
                                       lake_root: Path) -> None:
    """A version built before revisions (its recipe names no revision) is matched to one by its sha256."""
    ok(cli("ingest", "orig", *src))
    ok(cli("blocklist", "add", "partner", _list(tmp_path / "jan.txt", urls[:2]), "--kind", "url"))
    ok(cli("build", "jan", "--base", "orig", "--blocklist", "partner"))
    record = lake_root / "versions" / "jan" / "version.json"
    data = json.loads(record.read_text(encoding="utf-8"))
    del data["recipe"]["rules"][0]["blocklist"]["revision"]
    record.write_text(json.dumps(data), encoding="utf-8")
    assert "revision" not in json.loads((lake_root / "blocklists" / "partner" / "blocklist.json").read_text())
    [use] = json.loads(ok(cli("blocklist", "show", "partner", "--json")).stdout)["used_by"]
    assert (use["version"], use["revision"], use["matched_entries"]) == ("jan", 1, 2)
