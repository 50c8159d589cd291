"""`relake rm VERSION` (issue 18): only a version nothing derives from and nothing published; one rename."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from helpers import Cli, fails, ok, snapshot


def _lake(cli: Cli, src: list[Path]) -> None:
    ok(cli("ingest", "orig", *src))
    ok(cli("build", "v1", "--base", "orig", "--where", "SAMPLE_ID % 10 = 0"))
    ok(cli("build", "v2", "--base", "v1", "--where", "SAMPLE_ID % 7 = 0"))


def test_rm_removes_a_leaf_and_only_its_folder(cli: Cli, src: list[Path], lake_root: Path) -> None:
    _lake(cli, src)
    sources = snapshot(src[0].parent)
    dry = json.loads(ok(cli("rm", "v2", "--dry-run", "--json")).stdout)
    assert dry["name"] == "v2" and dry["dry_run"] is True and dry["files"] >= 2
    assert (lake_root / "versions" / "v2" / "version.json").is_file()
    said = ok(cli("rm", "v2")).stdout
    assert said.startswith("removed v2: ")
    assert not (lake_root / "versions" / "v2").exists()
    assert [v["name"] for v in json.loads(ok(cli("versions", "--json")).stdout)] == ["orig", "v1"]
    ok(cli("rm", "v1"))
    ok(cli("rm", "orig"))  # an original referenced in place: its shards stay where they are
    assert snapshot(src[0].parent) == sources
    assert not any((lake_root / "staging").iterdir())


def test_rm_refuses_a_version_others_derive_from(cli: Cli, src: list[Path], lake_root: Path) -> None:
    _lake(cli, src)
    before = snapshot(lake_root / "versions")
    assert fails(cli("rm", "v1")) == "Error: cannot remove v1: v2 derives from it (remove it first)"
    assert fails(cli("rm", "orig", "--dry-run")) == "Error: cannot remove orig: v1 derives from it (remove it first)"
    assert "no version named 'nope'" in fails(cli("rm", "nope"))
    assert snapshot(lake_root / "versions") == before


def test_rm_refuses_a_published_version(cli: Cli, src: list[Path], tmp_path: Path) -> None:
    _lake(cli, src)
    ok(cli("rm", "v2"))
    ok(cli("publish", "v1", tmp_path / "release", "--min-crowd", "1"))
    said = fails(cli("rm", "v1"))
    assert said.startswith("Error: cannot remove v1: it was published (release orig..v1 to ")


def test_rm_killed_after_its_rename_leaves_no_half_version(cli: Cli, src: list[Path], lake_root: Path) -> None:
    _lake(cli, src)
    relake = str(Path(sys.executable).parent / "relake")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAKE_")}
    killed = subprocess.run([relake, "--lake", str(lake_root), "rm", "v2"], capture_output=True, text=True,
                            env={**env, "RELAKE_TEST_KILL_AT": "rm:after-rename"}, timeout=120, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (lake_root / "versions" / "v2").exists()  # the rename is the commit point
    assert [v["name"] for v in json.loads(ok(cli("versions", "--json")).stdout)] == ["orig", "v1"]
    left = [p.name for p in (lake_root / "staging").iterdir()]
    assert any(n.startswith("rm.") for n in left), left
    gone = json.loads(ok(cli("gc", "--json")).stdout)["removed"]
    assert any(Path(p).name.startswith("rm.") for p in gone)
    assert not any((lake_root / "staging").iterdir())


def test_rm_refuses_when_a_version_that_may_derive_from_it_cannot_be_read(cli: Cli, src: list[Path],
                                                                          lake_root: Path) -> None:
    """A damaged record of v2 (a vector version reading orig's shards through v1's lineage) might name v1 as its
    parent: rm v1 refuses instead of assuming it does not, and removes nothing."""
    _lake(cli, src)
    record = lake_root / "versions" / "v2" / "version.json"
    record.chmod(0o600)
    record.write_text(record.read_text(encoding="utf-8").replace('"format": "relake.version/2"',
                                                                 '"format": "relake.version/99"'), encoding="utf-8")
    before = snapshot(lake_root / "versions")
    said = fails(cli("rm", "v1"))
    assert said.startswith("Error: cannot remove v1: version v2 cannot be read"), said
    assert snapshot(lake_root / "versions") == before


def test_rm_refuses_when_a_publication_note_cannot_be_read(cli: Cli, src: list[Path], lake_root: Path,
                                                           tmp_path: Path) -> None:
    _lake(cli, src)
    ok(cli("rm", "v2"))
    ok(cli("publish", "v1", tmp_path / "release", "--min-crowd", "1"))
    notes = sorted((lake_root / "private" / "published").glob("*.json"))
    assert notes
    for n in notes:
        n.write_text("{ not json", encoding="utf-8")
    said = fails(cli("rm", "v1"))
    assert said.startswith("Error: cannot remove v1: the publication note "), said
    assert (lake_root / "versions" / "v1" / "version.json").is_file()
