"""Faults and concurrency, through the real ``relake`` console script in subprocesses: SIGKILL at every named
checkpoint of ingest, build and publish; SIGINT/SIGTERM mid-build; two writers at once. Nothing is lost,
nothing half-written: a version is absent or complete (and verifies), ``relake gc`` clears what a dead writer
left, and a re-run gives the bytes of an uninterrupted run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import Entry, snapshot, snapshot_diff, write_shards

RELAKE = str(Path(sys.executable).parent / "relake")
BUILD_ARGS = ("--base", "orig", "--blocklist", "bl", "--where", "punsafe > 0.9")
BLOCKED = ("https://img3.example.com/a/3.jpg", "https://img12.example.com/a/1000.jpg",
           "https://img4.example.com/a/2500.jpg")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAKE_")}
    return {**env, **extra}


def relake(lake: Path, *args: str | Path, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RELAKE, "--lake", str(lake), *map(str, args)], env=_env(**env), capture_output=True,
                          text=True, timeout=timeout, check=False)


def start(lake: Path, *args: str | Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen([RELAKE, "--lake", str(lake), *map(str, args)], env=_env(**env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test starts; any still running at the end are killed (by their own pid)."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.communicate()


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def waiting(release: Path) -> int:
    """How many processes hold at the checkpoint released by ``release`` (see lake.checkpoint)."""
    return len(list(release.parent.glob(release.name + ".*.waiting")))


@dataclass(frozen=True)
class Ref:
    """Inputs and a lake built without interruption: ``orig`` (ingested --copy), blocklist ``bl``, build ``d``."""

    src: Path
    bl: Path
    root: Path

    def version(self, name: str) -> dict[str, Entry]:
        return snapshot(self.root / "versions" / name)

    def lake_with_base(self, dest: Path) -> Path:
        """A lake holding ``orig`` and ``bl`` (and empty staging/ and tmp/ folders), but not ``d``."""
        shutil.copytree(self.root, dest, symlinks=True)
        shutil.rmtree(dest / "versions" / "d")
        return dest


@pytest.fixture(scope="module")
def ref(tmp_path_factory: pytest.TempPathFactory) -> Ref:
    base = tmp_path_factory.mktemp("ref")
    src = write_shards(base / "src", rows=3000, shards=3)[0].parent
    bl = base / "bl.txt"
    bl.write_text("".join(u + "\n" for u in BLOCKED))
    root = base / "lake"
    ok(relake(root, "ingest", "orig", src, "--copy"))
    ok(relake(root, "blocklist", "add", "bl", bl, "--kind", "url"))
    ok(relake(root, "build", "d", *BUILD_ARGS))
    assert ok(relake(root, "verify")).stdout.splitlines() == [
        "ok  d: 3 shards, 2,700 rows", "ok  orig: 3 shards, 3,000 rows"]
    assert sorted(os.listdir(root)) == ["blocklists", "identities", "staging", "tmp", "url-cache", "versions"]
    assert os.listdir(root / "staging") == [] and os.listdir(root / "tmp") == []
    return Ref(src, bl, root)


def leftovers(lake: Path) -> list[str]:
    return sorted(str(p.relative_to(lake)) for d in ("staging", "tmp") if (lake / d).is_dir()
                  for p in (lake / d).iterdir())


def durable(lake: Path) -> dict[str, Entry]:
    """Everything but the work folders (staging/, tmp/)."""
    return {k: v for k, v in snapshot(lake).items() if not k.startswith(("staging", "tmp"))}


INGEST_POINTS = ["ingest:after-hash", "ingest:before-publish", "publish:before-rename", "publish:after-rename"]
BUILD_POINTS = ["build:after-match", "build:after-write", "build:before-publish", "publish:before-rename",
                "publish:after-rename"]


@pytest.mark.parametrize(("command", "point"), [("ingest", p) for p in INGEST_POINTS]
                         + [("build", p) for p in BUILD_POINTS])
def test_kill_9_leaves_the_version_absent_or_complete(ref: Ref, tmp_path: Path, command: str, point: str) -> None:
    args: tuple[str | Path, ...]
    if command == "ingest":
        lake, name, args = tmp_path / "lake", "orig", ("ingest", "orig", ref.src, "--copy")
    else:
        lake, name, args = ref.lake_with_base(tmp_path / "lake"), "d", ("build", "d", *BUILD_ARGS)
    before = durable(lake)

    killed = relake(lake, *args, RELAKE_TEST_KILL_AT=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    published = point == "publish:after-rename"
    vdir = lake / "versions" / name
    if published:  # complete: the rename is the commit point, and it happened
        assert snapshot(vdir) == ref.version(name)
        assert ok(relake(lake, "verify", name)).stdout.startswith(f"ok  {name}: 3 shards")
    else:
        assert not vdir.exists()
        assert snapshot_diff(before, durable(lake)) == {}
    left = leftovers(lake)
    assert any(x.startswith("tmp/duckdb.") for x in left), left  # the dead writer's spill folder ...
    staged = point != "build:after-match"  # a build stages only once the matching is done
    assert any(x.startswith(f"staging/{name}.") for x in left) == staged, left  # ... staging folder or its lock

    gc = ok(relake(lake, "gc"))
    assert sorted(ln.removeprefix("removed ") for ln in gc.stdout.splitlines()) == sorted(
        str(lake / x) for x in left if not (x.endswith(".lock") and x[: -len(".lock")] in left))
    assert leftovers(lake) == []

    again = relake(lake, *args)
    if published:
        assert again.returncode == 2
        assert again.stderr.splitlines() == [
            f"Error: version {name!r} already exists; versions are immutable, choose another name"]
    else:
        ok(again)
    assert snapshot(vdir) == ref.version(name)  # byte-identical to the uninterrupted run
    assert leftovers(lake) == []


@pytest.mark.parametrize(("sig", "code", "message"), [
    (signal.SIGINT, 130, "Error: interrupted; nothing was published"),
    (signal.SIGTERM, 143, "Error: terminated; nothing was published"),
])
def test_signal_mid_build_leaves_the_lake_unchanged(
    ref: Ref, tmp_path: Path, procs: list[subprocess.Popen[str]], sig: int, code: int, message: str
) -> None:
    lake = ref.lake_with_base(tmp_path / "lake")
    before = snapshot(lake)
    release = tmp_path / "release"
    procs.append(p := start(lake, "build", "d", *BUILD_ARGS, RELAKE_TEST_HOLD_AT=f"build:after-write:{release}"))
    wait_for(lambda: waiting(release) == 1 or p.poll() is not None, "the build to write its shards")
    staged = list((lake / "staging").glob("d.*/deletes.parquet"))
    assert len(staged) == 1  # paused with the deletion vector written (a vector build writes no shard)
    p.send_signal(sig)
    out, err = p.communicate(timeout=60)
    assert p.returncode == code, err
    assert err.splitlines() == [message] and out == ""
    assert snapshot_diff(before, snapshot(lake)) == {}  # staging and spill folders gone, all else untouched


@pytest.mark.parametrize("point", ["build:before-publish", "publish:before-rename"])
def test_two_builds_of_one_name_have_one_winner(
    ref: Ref, tmp_path: Path, procs: list[subprocess.Popen[str]], point: str
) -> None:
    lake = ref.lake_with_base(tmp_path / "lake")
    release = tmp_path / "release"
    procs += [start(lake, "build", "d", *BUILD_ARGS, RELAKE_TEST_HOLD_AT=f"{point}:{release}") for _ in range(2)]
    wait_for(lambda: waiting(release) == 2 or any(p.poll() is not None for p in procs), "both builds to stage")
    assert len(list((lake / "staging").glob("d.*/version.json"))) == 2 and not (lake / "versions" / "d").exists()
    release.touch()
    results = [(p.wait(timeout=60), *p.communicate()) for p in procs]
    assert sorted(r[0] for r in results) == [0, 2], results
    loser = next(err for rc, _out, err in results if rc == 2)
    assert loser.splitlines() == ["Error: version 'd' already exists; versions are immutable, choose another name"]
    assert snapshot(lake / "versions" / "d") == ref.version("d")
    assert leftovers(lake) == []  # the loser removed its staging folder


def test_two_builds_of_different_names_both_succeed(
    ref: Ref, tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    lake = ref.lake_with_base(tmp_path / "lake")
    release = tmp_path / "release"
    procs += [start(lake, "build", n, *BUILD_ARGS, RELAKE_TEST_HOLD_AT=f"publish:before-rename:{release}")
              for n in ("d1", "d2")]
    wait_for(lambda: waiting(release) == 2 or any(p.poll() is not None for p in procs), "both builds to stage")
    release.touch()
    results = [(p.wait(timeout=60), *p.communicate()) for p in procs]
    assert [r[0] for r in results] == [0, 0], results
    want = {k: v for k, v in ref.version("d").items() if k != "version.json"}
    for n in ("d1", "d2"):
        got = snapshot(lake / "versions" / n)
        assert {k: v for k, v in got.items() if k != "version.json"} == want
    assert ok(relake(lake, "verify")).stdout.splitlines() == [
        "ok  d1: 3 shards, 2,700 rows", "ok  d2: 3 shards, 2,700 rows", "ok  orig: 3 shards, 3,000 rows"]
    assert leftovers(lake) == []
