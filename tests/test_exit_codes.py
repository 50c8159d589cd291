"""Exit codes, as diff, cmp and grep: 0 success or nothing found, 1 found (differences, affected rows, a listed URL,
a failed verification), 2 trouble (any error, bad usage). Every command is run for each outcome it can have, and a
test fails when a command is added without cases here."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.main import get_command
from typer.testing import CliRunner, Result

import relake.verify
from helpers import write_shards
from relake.cli import app

OK, FOUND, TROUBLE = 0, 1, 2


@dataclass(frozen=True)
class World:
    root: Path
    lake: Path

    def run(self, *args: str | Path) -> Result:
        return CliRunner().invoke(app, ["--lake", str(self.lake), *map(str, args)])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """orig (300 rows), v1 = orig minus every 10th SAMPLE_ID (category 'quality', not sensitive), a release of v1
    with its public manifest, a blocklist, and an img2dataset-like copy of orig."""
    root = tmp_path_factory.mktemp("exit")
    w = World(root, root / "lake")
    src = root / "src"
    write_shards(src, rows=300, shards=3)
    steps = [
        ("ingest", "orig", src),
        ("build", "v1", "--base", "orig", "--where", "SAMPLE_ID % 10 = 0", "--category", "quality"),
        ("build", "v0", "--base", "orig", "--where", "FALSE"),
        ("publish", "v1", root / "release", "--min-crowd", "1"),
        ("synth-copy", "orig", root / "copy", "--shard-size", "100"),
    ]
    for step in steps:
        r = w.run(*step)
        assert r.exit_code == OK, (step, r.stdout, r.stderr)
    (root / "urls.txt").write_text("http://example.com/a.jpg\n", encoding="utf-8")
    return w


def _copy_url(w: World) -> tuple[str, str]:
    """A URL that v1 removed, and one it kept (read from orig's source files, by SAMPLE_ID)."""
    rows = [r for f in sorted((w.root / "src").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    removed = next(r["URL"] for r in rows if r["SAMPLE_ID"] % 10 == 0)
    kept = next(r["URL"] for r in rows if r["SAMPLE_ID"] % 10 != 0)
    return removed, kept


Case = Callable[[World], list[str | Path]]

# command -> outcome -> argv (after the command path) built from the world. Every command has a usage error (2);
# those that can fail on their input have an error case (2); those that report findings have a found case (1).
CASES: dict[str, dict[str, Case]] = {
    "synth": {
        "ok": lambda w: [w.root / "synth-out", "--rows", "50", "--shards", "1"],
        "error": lambda w: [w.root / "urls.txt", "--rows", "50"],  # a file where a folder is to be written
        "usage": lambda w: ["--rows", "-1"],
    },
    "ingest": {
        "ok": lambda w: ["orig2", w.root / "src"],
        "error": lambda w: ["orig3", w.root / "nowhere"],
        "usage": lambda w: [],
    },
    "blocklist add": {
        "ok": lambda w: ["bl", w.root / "urls.txt", "--kind", "url"],
        "error": lambda w: ["bl-bad", w.root / "urls.txt", "--kind", "image-md5"],
        "usage": lambda w: ["bl-x"],
    },
    "blocklist list": {"ok": lambda w: [], "usage": lambda w: ["--no-such-option"]},
    "blocklist show": {"ok": lambda w: ["bl"], "error": lambda w: ["nope"], "usage": lambda w: []},
    "build": {
        "ok": lambda w: ["v2", "--base", "orig", "--where", "SAMPLE_ID % 7 = 0"],
        "error": lambda w: ["v3", "--base", "nope", "--where", "TRUE"],
        "usage": lambda w: ["v4", "--threads", "0"],
    },
    "rm": {"ok": lambda w: ["v0", "--dry-run"], "error": lambda w: ["orig"], "usage": lambda w: []},
    "versions": {"ok": lambda w: [], "usage": lambda w: ["extra-argument"]},
    "show": {"ok": lambda w: ["v1"], "error": lambda w: ["nope"], "usage": lambda w: []},
    "head": {"ok": lambda w: ["v1", "-n", "2"], "error": lambda w: ["nope"], "usage": lambda w: []},
    "sql": {
        "ok": lambda w: ["SELECT count(*) AS n FROM v1"],
        "error": lambda w: ["SELECT * FROM nope"],
        "usage": lambda w: [],
    },
    "verify": {
        "ok": lambda w: ["v1"],
        "found": lambda w: [_damaged_release(w)],
        "error": lambda w: ["nope"],
        "usage": lambda w: ["v1", "--no-such-option"],
    },
    "diff": {
        "ok": lambda w: ["v1", "v1"],
        "found": lambda w: ["orig", "v1"],
        "error": lambda w: ["orig", "nope"],
        "usage": lambda w: ["orig"],
    },
    "fingerprint": {"ok": lambda w: ["v1"], "error": lambda w: ["nope"], "usage": lambda w: []},
    "report": {
        "ok": lambda w: ["orig", "v1", "--out", w.root / "report.html"],
        "error": lambda w: ["orig", "nope", "--out", w.root / "report-nope.html"],
        "usage": lambda w: ["orig"],
    },
    "manifest": {
        "ok": lambda w: ["orig", "v1", "--out", w.root / "m-ok", "--min-crowd", "1"],
        "error": lambda w: ["orig", "nope", "--out", w.root / "m-nope"],
        "usage": lambda w: ["orig", "v1"],
    },
    "publish": {
        "ok": lambda w: ["orig", w.root / "release-orig"],
        "error": lambda w: ["nope", w.root / "release-nope"],
        "usage": lambda w: ["v1"],
    },
    "lookup": {
        "ok": lambda w: [_copy_url(w)[1], "--manifest", w.root / "release" / "manifest"],
        "found": lambda w: [_copy_url(w)[0], "--manifest", w.root / "release" / "manifest"],
        "error": lambda w: ["http://a.example/x", "--manifest", w.root / "nowhere"],
        "usage": lambda w: ["http://a.example/x"],
    },
    "canon": {
        "ok": lambda w: ["http://a.example/x", "--file", w.root / "urls.txt"],
        "error": lambda w: ["--file", w.root / "nowhere.txt"],
        "usage": lambda w: [],
    },
    "synth-copy": {
        "ok": lambda w: ["v1", w.root / "copy2", "--shard-size", "100"],
        "error": lambda w: ["nope", w.root / "copy3"],
        "usage": lambda w: ["v1"],
    },
    "check": {
        "ok": lambda w: [w.root / "copy", "--manifest", "orig..v0"],
        "found": lambda w: [w.root / "copy", "--manifest", "orig..v1"],
        "error": lambda w: [w.root / "nowhere", "--manifest", "orig..v1"],
        "usage": lambda w: [],
    },
    "clean": {
        "ok": lambda w: [w.root / "copy", "--manifest", "orig..v1", "--out", w.root / "cleaned"],
        "error": lambda w: [w.root / "copy", "--manifest", "orig..nope", "--out", w.root / "cleaned2"],
        "usage": lambda w: [w.root / "copy"],
    },
    "gc": {"ok": lambda w: ["--dry-run"], "usage": lambda w: ["extra-argument"]},
    "demo": {"usage": lambda w: ["--rows", "5"]},  # its success is test_demo's (30 s)
}

EXPECTED = {"ok": OK, "found": FOUND, "error": TROUBLE, "usage": TROUBLE}
ORDER = ["synth", "ingest", "blocklist add", "blocklist list", "blocklist show", "build", "rm", "versions", "show",
         "head", "sql", "verify", "diff", "fingerprint", "report", "manifest", "publish", "lookup", "canon",
         "synth-copy", "check", "clean", "gc", "demo"]


def _damaged_release(w: World) -> Path:
    damaged = w.root / "release-damaged"
    if not damaged.exists():
        shutil.copytree(w.root / "release", damaged)
        shard = sorted((damaged / "data").glob("*.parquet"))[0]
        data = bytearray(shard.read_bytes())
        data[len(data) // 2] ^= 0xFF
        shard.write_bytes(bytes(data))
    return damaged


def _leaf_commands() -> set[str]:
    out: set[str] = set()

    def walk(cmd: object, path: list[str]) -> None:
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, [*path, name])
        else:
            out.add(" ".join(path))

    walk(get_command(app), [])
    return out


def test_every_command_has_exit_code_cases() -> None:
    assert set(CASES) == _leaf_commands() == set(ORDER)


def test_every_command_takes_json() -> None:
    """--json on every command (issue 18): each success case above runs with it and parses its stdout."""
    def walk(cmd: Any, path: tuple[str, ...]) -> list[tuple[str, ...]]:
        subs = getattr(cmd, "commands", None)
        if subs:
            return [p for n, c in subs.items() for p in walk(c, (*path, n))]
        return [] if any("--json" in getattr(p, "opts", []) for p in cmd.params) else [path]

    assert walk(get_command(app), ()) == []


@pytest.mark.parametrize(
    ("command", "outcome"),
    [(c, o) for c in ORDER for o in ("ok", "found", "error", "usage") if o in CASES[c]],
    ids=lambda x: x,
)
def test_exit_code(world: World, command: str, outcome: str) -> None:
    """Each outcome's exit code; a success runs with --json, whose stdout must be one JSON document."""
    json_flag = ["--json"] if outcome == "ok" else []
    r = world.run(*command.split(), *CASES[command][outcome](world), *json_flag)
    assert r.exit_code == EXPECTED[outcome], (command, outcome, r.stdout, r.stderr)
    if json_flag:
        json.loads(r.stdout)
    assert "Traceback" not in r.stdout + r.stderr
    if outcome == "error":
        lines = r.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), r.stderr
    if outcome == "usage":
        assert "Usage:" in r.stderr or "Error" in r.stderr, r.stderr


def test_an_unexpected_exception_is_trouble_in_one_line_without_its_message(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug is exit 2 (never 1, which scripts read as "found"), one Error: line naming the exception type, and its
    message (which may hold a row value) withheld; --debug shows it."""
    def boom(*args: object, **kwargs: object) -> object:
        raise ValueError("http://secret.example/row-value.jpg")

    monkeypatch.setattr(relake.verify, "verify_target", boom)  # the command imports it when it runs
    r = world.run("verify", "v1")
    assert r.exit_code == TROUBLE
    assert r.stderr.splitlines() == [
        "Error: unexpected ValueError (a bug in relake; its message is withheld as it may hold row values): rerun "
        "with --debug for the traceback, and please report it"
    ]
    assert "secret" not in r.stdout + r.stderr
    debug = CliRunner().invoke(app, ["--lake", str(world.lake), "--debug", "verify", "v1"])
    assert isinstance(debug.exception, ValueError)


def test_check_then_clean_in_a_script_does_not_clean_on_an_error(world: World) -> None:
    """`check … || clean …` (clean only when check found rows) must not run clean when check failed: an error is 2,
    distinguishable from 1."""
    found = world.run("check", world.root / "copy", "--manifest", "orig..v1")
    broken = world.run("check", world.root / "copy", "--manifest", world.root / "nowhere")
    assert (found.exit_code, broken.exit_code) == (FOUND, TROUBLE)


def test_help_states_the_exit_codes() -> None:
    r = CliRunner().invoke(app, ["--help"])
    text = " ".join(r.stdout.split())
    assert "0 success or nothing found; 1 found" in text and "2 trouble" in text
