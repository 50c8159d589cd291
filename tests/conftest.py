"""Shared fixtures: an isolated working folder, a lake, tiny LAION-like sources, and a CLI runner."""

from __future__ import annotations

import os

# rich fixes a console's width when it is built if COLUMNS is set then (pytest-xdist's workers start with it set);
# unset before relake's consoles are built, their width follows COLUMNS at each print (tests needing wide tables
# set it), as in a terminal
os.environ.pop("COLUMNS", None)

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from helpers import Cli, write_shards
from relake.cli import app
from relake.lake import Lake


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the checkout's ./lake or the user's $RELAKE_LAKE; no fault hooks leak in."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RELAKE_LAKE", str(tmp_path / "env-lake"))
    for var in ("RELAKE_TEST_KILL_AT", "RELAKE_TEST_HOLD_AT"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def lake_root(tmp_path: Path) -> Path:
    return tmp_path / "lake"


@pytest.fixture
def lake(lake_root: Path) -> Lake:
    return Lake.at(lake_root)


@pytest.fixture
def src(tmp_path: Path) -> list[Path]:
    """300 LAION-like rows in 3 shards under ``tmp_path/src`` (every 7th caption NULL)."""
    return write_shards(tmp_path / "src", rows=300, shards=3)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def cli(runner: CliRunner, lake_root: Path) -> Cli:
    """Run ``relake --lake <lake_root> ARGS...`` in process; stdout and stderr stay separate."""

    def invoke(*args: str | Path) -> Result:
        return runner.invoke(app, ["--lake", str(lake_root), *map(str, args)])

    return invoke

