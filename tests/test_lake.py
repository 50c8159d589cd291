"""lake.py: name validation, lake paths, staging, create-only publish, gc of crashed runs."""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import Cli, error_line, snapshot, snapshot_diff, write_shards
from relake.errors import InvalidNameError, InvalidPathError, NotFoundError, VersionExistsError
from relake.lake import MAX_NAME, Lake, check_user_path, has_glob_chars, validate_name

# --- validate_name ----------------------------------------------------------------------------------

GOOD_NAMES = ["v1", "0", "laion-2B.en_v2", "A.b-c_d", "x" * MAX_NAME, "relaion-research-safe", "v1.", "a-"]

BAD_NAMES = {
    "": "it is empty",
    "..": "'..' is not allowed",
    "../x": "'..' is not allowed",
    "x/../y": "'..' is not allowed",
    "v..1": "'..' is not allowed",
    "x" * (MAX_NAME + 1): f"it is longer than {MAX_NAME} bytes",
    "é" * 51: f"it is longer than {MAX_NAME} bytes",  # 51 characters, 102 bytes
}
CHARSET = "use letters, digits, '.', '_' and '-' only, starting with a letter or digit"
for _bad in [
    ".", ".hidden", "-rf", "_x", "a/b", "/abs", "a\\b", "v[1]", "v*", "v?", "v{a,b}", "a b", " v", "v\t",
    "v\x00", "v\n", "v1\n", "\nv1", "v'1", 'v"1', "v`1`", "v$x", "v;rm", "~x", "é", "v\u200b", "v\x1b[31m",
]:
    BAD_NAMES[_bad] = CHARSET


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_validate_name_accepts_plain_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(("name", "why"), list(BAD_NAMES.items()), ids=[repr(n)[:30] for n in BAD_NAMES])
def test_validate_name_rejects(name: str, why: str) -> None:
    with pytest.raises(InvalidNameError) as info:
        validate_name(name, "blocklist")
    err = info.value
    assert err.what == "blocklist"
    assert err.why == why
    assert str(err).startswith("invalid blocklist name ")
    assert str(err).endswith(": " + why)
    assert "\n" not in str(err) and "\x00" not in str(err)


def test_long_name_is_shortened_in_the_message() -> None:
    with pytest.raises(InvalidNameError) as info:
        validate_name("y" * 300)
    assert str(info.value) == f"invalid version name '{'y' * 40}…': it is longer than {MAX_NAME} bytes"


@pytest.mark.parametrize("name", ["../x", "a/b", "", "v*"])
def test_lake_paths_validate_names_before_any_io(tmp_path: Path, name: str) -> None:
    lake = Lake.at(tmp_path / "lake")
    for call in (lake.version_dir, lake.has_version, lake.load_version, lake.require_absent):
        with pytest.raises(InvalidNameError):
            call(name)
    assert not (tmp_path / "lake").exists()


# --- Lake.at and paths ---------------------------------------------------------------------------------


def test_lake_at_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAKE_LAKE", str(tmp_path / "from-env"))
    assert Lake.at().root == tmp_path / "from-env"
    assert Lake.at(tmp_path / "given").root == tmp_path / "given"
    monkeypatch.delenv("RELAKE_LAKE")
    assert Lake.at().root == tmp_path / "lake"  # the autouse fixture chdir'ed here
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert Lake.at("~/l").root == tmp_path / "home" / "l"
    assert Lake.at("rel").root.is_absolute()


def test_user_paths() -> None:
    assert check_user_path("a/b.parquet") == Path("a/b.parquet")
    with pytest.raises(InvalidPathError, match="NUL"):
        check_user_path("a\x00b")
    with pytest.raises(InvalidPathError, match="empty"):
        check_user_path("")
    for p in ["a*", "a?", "data[1]", "a{b}", "x]"]:
        assert has_glob_chars(p), p
    for p in ["plain/path-1_2.parquet", "a b", "~/x"]:
        assert not has_glob_chars(p), p


# --- load_version -------------------------------------------------------------------------------------


def test_load_version_errors(lake: Lake, src: list[Path]) -> None:
    from relake.ingest import ingest_version

    with pytest.raises(NotFoundError, match=r"no version named 'nope' .*\(versions: none yet\)"):
        lake.load_version("nope")
    ingest_version(lake, "v1", [str(src[0].parent)])
    with pytest.raises(NotFoundError, match=r"\(versions: v1\)"):
        lake.load_version("nope")

    (lake.versions_dir / "broken").mkdir()
    with pytest.raises(NotFoundError, match=re.escape("version record (version.json) is missing")):
        lake.load_version("broken")
    assert lake.has_version("v1") and not lake.has_version("broken")

    (lake.versions_dir / "broken" / "version.json").write_text("{not json", encoding="utf-8")
    from relake.errors import InputError

    with pytest.raises(InputError, match="corrupt or unreadable version record"):
        lake.load_version("broken")

    renamed = lake.versions_dir / "renamed"
    renamed.mkdir()
    (renamed / "version.json").write_bytes((lake.versions_dir / "v1" / "version.json").read_bytes())
    with pytest.raises(NotFoundError, match="manifest names version 'v1', not 'renamed'"):
        lake.load_version("renamed")
    assert lake.version_names() == ["broken", "renamed", "v1"]


# --- staging and publish --------------------------------------------------------------------------------


def test_staging_is_locked_and_removed_on_exit(lake: Lake) -> None:
    with lake.staging("v1") as st:
        assert st.path.parent == lake.staging_dir and st.path.is_dir()
        assert st.path.name.startswith("v1.")
        lock = Path(str(st.path) + ".lock")
        assert lock.is_file()
        (st.path / "f").write_text("x")
    assert not st.path.exists() and not lock.exists()
    assert list(lake.staging_dir.iterdir()) == []

    with pytest.raises(RuntimeError), lake.staging("v1") as st2:
        (st2.path / "f").write_text("x")
        raise RuntimeError("boom")
    assert list(lake.staging_dir.iterdir()) == []

    with pytest.raises(InvalidNameError), lake.staging("../x"):
        pass


def test_publish_is_create_only(lake: Lake) -> None:
    with lake.staging("v") as first, lake.staging("v") as second:
        (first.path / "version.json").write_text("first")
        (first.path / "data").mkdir()
        (first.path / "data" / "part-00000.parquet").write_bytes(b"one")
        (second.path / "version.json").write_text("second")
        assert lake.publish(first, "v") == lake.versions_dir / "v"
        published = snapshot(lake.versions_dir)
        with pytest.raises(VersionExistsError) as info:
            lake.publish(second, "v")
        assert info.value.name == "v"
        assert str(info.value) == "version 'v' already exists; versions are immutable, choose another name"
        assert second.path.is_dir()  # the loser still holds its own staging folder
    assert snapshot(lake.versions_dir) == published
    assert (lake.versions_dir / "v" / "version.json").read_text() == "first"
    assert (lake.versions_dir / "v" / "data" / "part-00000.parquet").read_bytes() == b"one"
    assert list(lake.staging_dir.iterdir()) == []  # both staging folders and locks are gone


def test_publish_rejects_bad_target_name(lake: Lake) -> None:
    with lake.staging("v") as st:
        (st.path / "f").write_text("x")
        with pytest.raises(InvalidNameError):
            lake.publish(st, "../escape")
    assert not (lake.root / "escape").exists()
    assert not (lake.versions_dir / "v").exists()


# --- gc -----------------------------------------------------------------------------------------------------


def _fake_crash_leftovers(lake: Lake) -> list[Path]:
    """What a SIGKILLed writer leaves: staging/spill folders, with and without their (unheld) lock files."""
    made = []
    for parent, label in ((lake.staging_dir, "v1.0123456789ab"), (lake.tmp_dir, "duckdb.ba9876543210")):
        d = parent / label
        (d / "data").mkdir(parents=True)
        (d / "data" / "part-00000.parquet").write_bytes(b"partial")
        (parent / (label + ".lock")).write_bytes(b"")
        made.append(d)
    no_lock = lake.staging_dir / "v2.aaaaaaaaaaaa"
    no_lock.mkdir()
    made.append(no_lock)
    orphan_lock = lake.staging_dir / "v3.bbbbbbbbbbbb.lock"
    orphan_lock.write_bytes(b"")
    made.append(orphan_lock)
    return made


def _kept_parts(lake: Lake) -> None:
    (lake.versions_dir / "v0").mkdir(parents=True)
    (lake.versions_dir / "v0" / "version.json").write_text("{}")
    (lake.blocklists_dir / "b0").mkdir(parents=True)
    (lake.blocklists_dir / "b0" / "list.parquet").write_bytes(b"x")
    # a stray lock-named file inside versions/ must not matter either
    (lake.versions_dir / "v0.lock").write_bytes(b"")


def test_gc_removes_dead_leftovers_only(lake: Lake) -> None:
    _kept_parts(lake)
    leftovers = _fake_crash_leftovers(lake)
    kept_before = {k: v for k, v in snapshot(lake.root).items() if k.startswith(("versions", "blocklists"))}

    removed = lake.gc()

    assert sorted(removed) == sorted(leftovers)
    for p in leftovers:
        assert not p.exists(), p
    assert list(lake.staging_dir.iterdir()) == [] and list(lake.tmp_dir.iterdir()) == []
    after = snapshot(lake.root)
    assert {k: v for k, v in after.items() if k.startswith(("versions", "blocklists"))} == kept_before
    assert lake.gc() == []


def test_gc_dry_run_removes_nothing(lake: Lake, cli: Cli) -> None:
    _kept_parts(lake)
    leftovers = _fake_crash_leftovers(lake)
    before = snapshot(lake.root)
    would = lake.gc(dry_run=True)
    assert sorted(would) == sorted(leftovers)
    assert snapshot_diff(before, snapshot(lake.root)) == {}

    result = cli("gc", "--dry-run")
    assert result.exit_code == 0, result.stderr
    for p in leftovers:
        assert f"would remove {p}" in result.stdout.splitlines()
    assert snapshot_diff(before, snapshot(lake.root)) == {}

    result = cli("gc")
    assert result.exit_code == 0, result.stderr
    for p in leftovers:
        assert f"removed {p}" in result.stdout.splitlines()
        assert not p.exists()
    result = cli("gc")
    assert result.exit_code == 0 and result.stdout == ""
    assert "nothing to remove" in result.stderr


def test_gc_keeps_staging_held_in_this_process(lake: Lake) -> None:
    """flock locks belong to the open file description: gc's own open() of the lock conflicts with ours."""
    with lake.staging("live") as st, lake.spill_dir() as spill:
        (st.path / "version.json").write_text("in progress")
        dead = lake.staging_dir / "dead.000000000000"
        dead.mkdir()
        removed = lake.gc()
        assert removed == [dead]
        assert st.path.is_dir() and (st.path / "version.json").read_text() == "in progress"
        assert spill.is_dir()
        assert Path(str(st.path) + ".lock").exists()
        assert lake.gc(dry_run=True) == []
    assert list(lake.staging_dir.iterdir()) == []


def test_gc_keeps_staging_held_by_another_process(lake: Lake) -> None:
    live = lake.staging_dir / "v9.cccccccccccc"
    live.mkdir(parents=True)
    lock = lake.staging_dir / "v9.cccccccccccc.lock"
    holder = (
        "import fcntl, os, sys\n"
        "fd = os.open(sys.argv[1], os.O_CREAT | os.O_RDWR)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('locked', flush=True)\n"
        "sys.stdin.read()\n"
    )
    with subprocess.Popen([sys.executable, "-c", holder, str(lock)], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline() == "locked\n"
        # the lock really is held: a non-blocking attempt of our own fails
        fd = os.open(lock, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
        assert lake.gc() == []
        assert lake.gc(dry_run=True) == []
        assert live.is_dir() and lock.exists()
        proc.stdin.close()
        assert proc.wait(timeout=10) == 0
    # its writer is gone: now it is a leftover
    assert set(lake.gc()) == {live}
    assert not live.exists() and not lock.exists()


def test_gc_after_a_killed_ingest(lake: Lake, tmp_path: Path) -> None:
    """A writer SIGKILLed just before publishing leaves staging and spill folders; gc removes them and
    the name is still free."""
    paths = write_shards(tmp_path / "src", rows=100, shards=2)
    env = {**os.environ, "RELAKE_TEST_KILL_AT": "ingest:before-publish"}
    relake = [sys.executable, "-c", "from relake.cli import main; main()"]
    proc = subprocess.run(
        [*relake, "--lake", str(lake.root), "ingest", "v1", str(paths[0].parent)],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == -9, proc.stderr
    assert not lake.has_version("v1")
    staged = [p for p in lake.staging_dir.iterdir() if not p.name.endswith(".lock")]
    assert len(staged) == 1 and (staged[0] / "version.json").is_file()
    removed = lake.gc()
    assert staged[0] in removed
    assert [p for p in lake.staging_dir.iterdir()] == [] and [p for p in lake.tmp_dir.iterdir()] == []
    from relake.ingest import ingest_version

    assert ingest_version(lake, "v1", [str(paths[0].parent)]).rows == 100


def test_cli_gc_on_a_missing_lake(cli: Cli, lake_root: Path) -> None:
    result = cli("gc")
    assert result.exit_code == 0
    assert not lake_root.exists()


def test_cli_on_an_empty_lake(cli: Cli, lake_root: Path) -> None:
    result = cli("versions")
    assert result.exit_code == 0
    assert "no versions in" in result.stderr
    assert not lake_root.exists()
    result = cli("show", "../x")
    assert result.exit_code == 2
    assert error_line(result) == (
        "Error: invalid version name '../x': '..' is not allowed"
    )


def _relake_proc(lake: Lake, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", "from relake.cli import main; main()", "--lake", str(lake.root), *args],
        env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _wait_for(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_two_processes_racing_for_one_name_get_one_winner(lake: Lake, tmp_path: Path) -> None:
    a = write_shards(tmp_path / "a", rows=30, shards=1)
    b = write_shards(tmp_path / "b", rows=40, shards=1, start=100)
    release = tmp_path / "release"
    env = {"RELAKE_TEST_HOLD_AT": f"publish:before-rename:{release}"}
    procs = [_relake_proc(lake, env, "ingest", "v", str(p[0])) for p in (a, b)]
    try:
        # both have staged a complete version and wait just before the rename
        _wait_for(lambda: len([p for p in lake.staging_dir.glob("v.*") if (p / "version.json").exists()]) == 2,
                  "two staged versions")
        assert not lake.has_version("v")
        release.touch()
        results = [(p.wait(timeout=60), *p.communicate()) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    loser_err = next(err for code, _, err in results if code == 2)
    assert "Error: version 'v' already exists; versions are immutable, choose another name" in loser_err.splitlines()
    winner_rows = lake.load_version("v").rows
    winner_src = a if winner_rows == 30 else b
    assert winner_rows in (30, 40)
    assert lake.load_version("v").shards[0].path == str(winner_src[0])
    assert list(lake.staging_dir.iterdir()) == [] and list(lake.tmp_dir.iterdir()) == []


def test_gc_spares_a_running_ingest(lake: Lake, tmp_path: Path) -> None:
    paths = write_shards(tmp_path / "src", rows=50, shards=2)
    release = tmp_path / "release"
    proc = _relake_proc(lake, {"RELAKE_TEST_HOLD_AT": f"ingest:after-hash:{release}"}, "ingest", "v", str(paths[0]))
    try:
        _wait_for(lambda: any(lake.staging_dir.glob("v.*.lock")) and any(lake.tmp_dir.glob("duckdb.*.lock")),
                  "the ingest to stage")
        before = snapshot(lake.root)
        assert lake.gc() == []
        assert lake.gc(dry_run=True) == []
        assert snapshot_diff(before, snapshot(lake.root)) == {}
        release.touch()
        code, _out, err = proc.wait(timeout=60), *proc.communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert code == 0, err
    assert lake.load_version("v").rows == 25
