"""The CLI: help for every command, the Error: contract, versions as a lineage, show --json."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.main import get_command
from typer.testing import CliRunner

from helpers import Cli, error_line, write_shards
from relake import __version__
from relake.cli import app
from relake.errors import NotFoundError
from relake.lake import Lake


def _commands() -> Iterator[tuple[list[str], Any]]:
    """Every command and sub-command of the app, as (argv path, click command)."""

    def walk(cmd: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
        yield path, cmd
        for name, sub in sorted(getattr(cmd, "commands", {}).items()):
            yield from walk(sub, [*path, name])

    yield from walk(get_command(app), [])


COMMANDS = [path for path, _ in _commands()]


def test_every_registered_command_is_walked() -> None:
    registered = {c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands if c.callback}
    walked = {p[0] for p in COMMANDS if len(p) == 1}
    assert registered <= walked
    assert {"ingest", "versions", "show", "verify", "gc"} <= walked


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "relake")
def test_help_works_and_every_command_has_help_text(runner: CliRunner, path: list[str]) -> None:
    cmd = dict((tuple(p), c) for p, c in _commands())[tuple(path)]
    assert (cmd.help or "").strip(), f"command {' '.join(path)!r} has no help text"
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Usage: ")
    first_line = cmd.help.strip().splitlines()[0]
    assert " ".join(first_line.split()[:4]) in " ".join(result.stdout.split())
    for param in cmd.params:
        if param.name == "help":
            continue
        assert (getattr(param, "help", None) or "").strip(), f"{' '.join(path)}: parameter {param.name!r} lacks help"


# what only some commands need: each command imports its library when it runs (tests/test_architecture.py)
COMMAND_LIBRARIES = ("relake.blocklist", "relake.build", "relake.copies", "relake.crowd", "relake.demo",
                     "relake.diff", "relake.hamming", "relake.ingest", "relake.page", "relake.pdq", "relake.publish",
                     "relake.spec", "relake.synth", "relake.synthcopy", "relake.vectors", "relake.verify", "numpy",
                     "pyarrow", "ray", "tarfile")


def test_a_start_loads_no_command_library_but_what_the_command_runs(tmp_path: Path) -> None:
    """Typer builds every command at each start (their help included): that, --help and `versions` load none of
    the commands' libraries; `blocklist list` loads the blocklists' (a fresh process: this one has loaded them)."""
    code = f"""
import sys
from typer.testing import CliRunner
from relake.cli import app
for args in ([], ["--help"], ["--lake", sys.argv[1], "versions"], ["--lake", sys.argv[1], "blocklist", "list"]):
    if args:
        assert CliRunner().invoke(app, args).exit_code == 0, args
    print(" ".join(m for m in {COMMAND_LIBRARIES!r} if m in sys.modules) or "-")
"""
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "lake")], capture_output=True, text=True,
                         check=True).stdout
    assert out.splitlines()[:3] == ["-", "-", "-"]
    assert "relake.blocklist" in out.splitlines()[3].split()


def test_version_flag(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"relake {__version__}\n"


def test_usage_errors_exit_2(cli: Cli) -> None:
    assert cli("ingest").exit_code == 2
    assert cli("no-such-command").exit_code == 2
    assert cli("show", "v1", "--no-such-option").exit_code == 2


# --- errors --------------------------------------------------------------------------------------------------


def test_handled_errors_go_to_stderr_as_one_line(cli: Cli, lake_root: Path) -> None:
    result = cli("show", "nope")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == f"Error: no version named 'nope' in lake {lake_root} (versions: none yet)\n"
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_debug_reraises(runner: CliRunner, lake_root: Path) -> None:
    result = runner.invoke(app, ["--lake", str(lake_root), "--debug", "show", "nope"])
    assert isinstance(result.exception, NotFoundError)
    assert result.exit_code == 1


def test_error_text_is_not_interpreted_as_markup(runner: CliRunner, tmp_path: Path) -> None:
    root = tmp_path / "lake[bold red]x[/]"
    result = runner.invoke(app, ["--lake", str(root), "show", "nope"])
    assert result.exit_code == 2
    assert error_line(result) == f"Error: no version named 'nope' in lake {root} (versions: none yet)"


def test_lake_from_environment(runner: CliRunner, tmp_path: Path) -> None:
    src = write_shards(tmp_path / "src", rows=20, shards=1)
    env_lake = tmp_path / "from-env"
    result = runner.invoke(app, ["ingest", "v1", str(src[0])], env={"RELAKE_LAKE": str(env_lake)})
    assert result.exit_code == 0, result.stderr
    assert (env_lake / "versions" / "v1" / "version.json").is_file()
    result = runner.invoke(app, ["versions", "--json"], env={"RELAKE_LAKE": str(env_lake)})
    assert [v["name"] for v in json.loads(result.stdout)] == ["v1"]


# --- versions and show ---------------------------------------------------------------------------------------


def _derive(lake: Lake, parent: str | None, name: str, base: str) -> None:
    """A derived version made by hand (build.py is not part of the foundation): base's manifest, renamed."""
    v = lake.load_version(base)
    d = lake.versions_dir / name
    d.mkdir(parents=True)
    child = dataclasses.replace(v, name=name, parent=parent, kind="derived", rows=v.rows)
    (d / "version.json").write_text(child.to_json(), encoding="utf-8")


def _first_column(stdout: str) -> list[str]:
    """The version column of the rich table (its 5 columns are separated by '│'; the tree draws '│' too)."""
    return [line.rsplit("│", 4)[0].rstrip() for line in stdout.splitlines() if "│" in line]


def test_versions_shows_lineage(cli: Cli, lake: Lake, src: list[Path], tmp_path: Path) -> None:
    other = write_shards(tmp_path / "other", rows=40, shards=2, start=5000)
    assert cli("ingest", "laion", src[0].parent).exit_code == 0
    assert cli("ingest", "another", *other).exit_code == 0
    _derive(lake, "laion", "research", "laion")
    _derive(lake, "research", "research-safe", "laion")
    _derive(lake, "laion", "alpha", "laion")
    _derive(lake, "gone", "orphan", "another")  # its parent is not in this lake: shown as a root

    result = cli("versions")
    assert result.exit_code == 0, result.stderr
    assert _first_column(result.stdout) == [
        " another",
        " laion",
        " ├─ alpha",
        " └─ research",
        "    └─ research-safe",
        " orphan",
    ]
    rows = {cells[0].strip(" └├│─"): [c.strip() for c in cells[1:]]
            for cells in (line.rsplit("│", 4) for line in result.stdout.splitlines() if "│" in line)}
    storage = {n: json.loads((lake.version_dir(n) / "version.json").read_text())["storage"] for n in rows}
    assert rows["laion"] == ["original", "reference", "300", "3"] == ["original", storage["laion"], "300", "3"]
    assert rows["research-safe"] == ["derived", storage["research-safe"], "300", "3"]
    assert rows["another"] == ["original", "reference", "40", "2"]

    result = cli("versions", "--json")
    assert result.exit_code == 0
    listed = {v["name"]: (v["parent"], v["kind"], v["rows"], v["shards"]) for v in json.loads(result.stdout)}
    assert listed == {
        "alpha": ("laion", "derived", 300, 3),
        "another": (None, "original", 40, 2),
        "laion": (None, "original", 300, 3),
        "orphan": ("gone", "derived", 40, 2),
        "research": ("laion", "derived", 300, 3),
        "research-safe": ("research", "derived", 300, 3),
    }


def test_show_json(cli: Cli, lake: Lake, src: list[Path]) -> None:
    assert cli("ingest", "v1", src[0].parent).exit_code == 0
    result = cli("show", "v1", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["name"], data["kind"], data["parent"], data["rows"], data["storage"]) == (
        "v1", "original", None, 300, "reference")
    assert [(s["path"], s["rows"], s["bytes"], s["sha256"]) for s in data["shards"]] == [
        (str(p), pq.ParquetFile(p).metadata.num_rows, p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in src
    ]
    assert [(c["name"], c["type"]) for c in data["schema"]] == [
        ("SAMPLE_ID", "BIGINT"), ("URL", "VARCHAR"), ("TEXT", "VARCHAR"), ("punsafe", "DOUBLE")]
    assert data["roles"] == {"url": "URL", "caption": "TEXT", "id": "SAMPLE_ID"}
    assert re.fullmatch(r"[0-9a-f]{32}", data["fingerprint"]["value"])
    assert data["fingerprint"]["rows"] == 300
    assert "buckets" not in data["fingerprint"]


def test_show_table(cli: Cli, lake: Lake, src: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # rich tables shorten cells to the width (80 when not a terminal)
    assert cli("ingest", "v1", src[0].parent).exit_code == 0
    result = cli("show", "v1")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    v = lake.load_version("v1")
    assert "version v1" in out
    assert v.fingerprint.value in out
    for p in src:
        assert str(p) in out
    assert re.search(r"storage\s+reference", out)
    assert re.search(r"rows\s+300\b", out)


def test_show_many_shards_lists_the_first_ten(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    paths = write_shards(tmp_path / "many", rows=120, shards=12)
    assert cli("ingest", "many", tmp_path / "many").exit_code == 0
    result = cli("show", "many")
    assert "shards (first 10 of 12)" in result.stdout
    assert str(paths[9]) in result.stdout and str(paths[10]) not in result.stdout
