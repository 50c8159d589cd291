"""Hostile copies do no harm (issue #20): symlinks never make check or clean read outside the copy, malformed tar
headers are one error naming the tar and byte offset (bounded time and memory, fuzzed), an unfinished clean output
says so, and two cleans into one --out cannot both write there.

The copies start from genuine img2dataset output (tests/data/img2dataset); the outside "secret" is a file of the
test's own, so a leak is seen by its content.
"""

from __future__ import annotations

import fcntl
import os
import random
import re
import shutil
import subprocess
import sys
import tarfile
import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import Cli, error_line, snapshot
from relake.copies.tar import scan_tar
from relake.copies.tfrecord import masked_crc32c
from relake.errors import InputError
from test_copies import sha256_hex, write_manifest
from test_copies_hostile_layouts import AFFECTED, DATA, read_rows

SECRET = b"root:SECRET-HASH:19000:0:99999:7:::\n"
SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    rows = read_rows(DATA / "webdataset")
    urls = [r["url"] for rs in rows.values() for r in rs if r["SAMPLE_ID"] in AFFECTED]
    return write_manifest(tmp_path / "manifest", [sha256_hex(u) for u in urls], [None] * len(urls), algo=None)


def genuine(fmt: str, tmp_path: Path) -> Path:
    copy = tmp_path / f"copy-{fmt}"
    shutil.copytree(DATA / fmt, copy)
    return copy


def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir(exist_ok=True)
    (folder / "shadow").write_bytes(SECRET)
    return folder


# ------------------------------------------------------------------------------------------------ symlinks


def _sample_file(copy: Path, out: Path) -> str:
    (copy / "00000" / "000099.txt").symlink_to(out / "shadow")
    return "00000/000099.txt"


def _top_file(copy: Path, out: Path) -> str:
    (copy / "shadow").symlink_to(out / "shadow")
    return "shadow"


def _shard_folder(copy: Path, out: Path) -> str:
    shutil.move(copy / "00001", out / "00001")
    (out / "00001" / "000099.txt").write_bytes(SECRET)
    (copy / "00001").symlink_to(out / "00001", target_is_directory=True)
    return "00001"


def _tar(copy: Path, out: Path) -> str:
    shutil.move(copy / "00002.tar", out / "00002.tar")
    (copy / "00002.tar").symlink_to(out / "00002.tar")
    return "00002.tar"


def _parquet(copy: Path, out: Path) -> str:
    shutil.move(copy / "00003.parquet", out / "00003.parquet")
    (copy / "00003.parquet").symlink_to(out / "00003.parquet")
    return "00003.parquet"


def _absolute_escape(copy: Path, out: Path) -> str:
    (copy / "00000" / "000098.jpg").symlink_to(Path("..") / ".." / "outside" / "shadow")  # relative, escapes
    return "00000/000098.jpg"


LINKS = {"sample-file": ("files", _sample_file), "top-file": ("webdataset", _top_file),
         "shard-folder": ("files", _shard_folder), "tar": ("webdataset", _tar),
         "parquet": ("webdataset", _parquet), "relative-escape": ("files", _absolute_escape)}


@pytest.mark.parametrize("case", sorted(LINKS))
def test_links_out_of_the_copy_are_refused(cli: Cli, manifest: Path, tmp_path: Path, case: str) -> None:
    fmt, plant = LINKS[case]
    copy = genuine(fmt, tmp_path)
    link = plant(copy, outside(tmp_path))
    out = tmp_path / "cleaned"
    for args in (("check", copy, "--manifest", manifest), ("clean", copy, "--manifest", manifest, "--out", out)):
        result = cli(*args)
        assert result.exit_code == 2, (args, result.stdout, result.stderr)
        line = error_line(result)
        assert f"{link} is a symlink to" in line and "outside the copy" in line, line
        assert "SECRET" not in result.stdout + result.stderr
    assert snapshot(out) == {}  # nothing written


def test_links_inside_the_copy_are_followed(cli: Cli, manifest: Path, tmp_path: Path) -> None:
    """Sample folders linked to folders inside the copy are cleaned like real ones (their targets are not also
    copied as other files); a top-level link to a file of the copy is written as that file's bytes."""
    copy = genuine("files", tmp_path)
    store = copy / "store"
    store.mkdir()
    for d in sorted(p for p in copy.iterdir() if p.is_dir() and p != store):
        shutil.move(d, store / d.name)
        d.symlink_to(Path("store") / d.name, target_is_directory=True)
    (copy / "docs").mkdir()
    (copy / "docs" / "notes.txt").write_text("notes\n", encoding="utf-8")
    (copy / "README").symlink_to(Path("docs") / "notes.txt")
    out, plain = tmp_path / "cleaned", tmp_path / "plain"
    result = cli("clean", copy, "--manifest", manifest, "--out", out)
    assert result.exit_code == 0, result.stderr
    assert cli("clean", DATA / "files", "--manifest", manifest, "--out", plain).exit_code == 0
    def listing(root: Path) -> list[str]:
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if not p.name.startswith(".relake"))
    assert listing(out) == sorted([*listing(plain), "README", "docs", "docs/notes.txt"])
    assert not (out / "README").is_symlink() and (out / "README").read_text(encoding="utf-8") == "notes\n"
    assert all((out / p).read_bytes() == (plain / p).read_bytes() for p in listing(plain) if (plain / p).is_file())


# ------------------------------------------------------------------------------------------------ tar headers


def _set_size(buf: bytearray, at: int, value: int) -> None:
    """Header at ``at``: size field set to ``value`` in GNU base-256, checksum recomputed."""
    buf[at + 124:at + 136] = bytes([0xFF]) + (value % (1 << 88)).to_bytes(11, "big")
    _fix_checksum(buf, at)


def _fix_checksum(buf: bytearray, at: int) -> None:
    buf[at + 148:at + 156] = b" " * 8
    buf[at + 148:at + 156] = b"%06o\0 " % sum(buf[at:at + 512])


def _pax_record(text: bytes) -> bytes:
    """One pax record, '<length> <text>\\n', its length counting itself."""
    n = len(text) + 2
    while len(str(n)) + len(text) + 2 != n:
        n += 1
    return b"%d %s\n" % (n, text)


def _scan_in_child(path: Path) -> subprocess.CompletedProcess[str]:
    """scan_tar in a child process limited to 1 GiB of memory and 60 seconds (today's code looped for ever)."""
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30));"
            "from pathlib import Path; from relake.copies.tar import scan_tar; from relake.errors import InputError\n"
            "try:\n    scan_tar(Path(sys.argv[1]))\nexcept InputError as e:\n    print(e); sys.exit(3)")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60,
                          env=env, check=False)


@pytest.mark.parametrize("where", ["pax header", "file header", "pax size record"])
def test_negative_sizes_are_one_error_naming_the_tar_and_offset(tmp_path: Path, where: str) -> None:
    buf = bytearray((DATA / "webdataset" / "00000.tar").read_bytes())
    at = 2560  # the second member's pax header (its records at 3072); its file header at 3584
    if where == "pax header":
        _set_size(buf, at, -1024)
    elif where == "file header":
        _set_size(buf, at + 1024, -512)  # the scanner stood still at this header, growing its list
    else:
        record = _pax_record(b"size=-99999")
        buf[at + 512:at + 1024] = record.ljust(512, b"\0")
        buf[at + 124:at + 136] = b"%011o\0" % len(record)
        _fix_checksum(buf, at)
    bad = tmp_path / "00000.tar"
    bad.write_bytes(buf)
    started = time.monotonic()
    result = _scan_in_child(bad)
    assert time.monotonic() - started < 30
    assert result.returncode == 3, result.stderr[-2000:]
    assert str(bad) in result.stdout and re.search(r"at byte \d+", result.stdout), result.stdout


def test_negative_size_in_a_copy_is_one_error_line(cli: Cli, manifest: Path, tmp_path: Path) -> None:
    copy = genuine("webdataset", tmp_path)
    buf = bytearray((copy / "00001.tar").read_bytes())
    _set_size(buf, 1024, -4096)  # the first member's header (after its pax header)
    (copy / "00001.tar").write_bytes(buf)
    result = cli("check", copy, "--manifest", manifest)
    assert result.exit_code == 2
    assert re.search(r"00001\.tar: .*at byte 1024", error_line(result))


def _small_tar() -> bytes:
    """The first three members of a genuine webdataset tar (pax headers, headers, data) and an end marker."""
    data = (DATA / "webdataset" / "00000.tar").read_bytes()
    return data[:6656] + bytes(1024)


_SIZE_VALUES = st.sampled_from([
    b"77777777777\0", b"-0000000001\0", b"\xff" * 12, b"\x80" + b"\xff" * 11, b"\xff" + b"\0" * 10 + b"\x01",
    b"\x80" + b"\0" * 10 + b"\x01", b"zzzzzzzzzzz\0", b"\0" * 12, b"00000001000\0", b"            ",
])
_MUTATION = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 6 * 1024), st.integers(1, 255)),
    st.tuples(st.just("size"), st.integers(0, 12), _SIZE_VALUES),
    st.tuples(st.just("pax"), st.integers(0, 2), st.sampled_from([b"size=-1", b"size=9999999999", b"path=",
                                                                   b"size=1e3", b"size=", b"x" * 8])),
    st.tuples(st.just("truncate"), st.integers(0, 7 * 1024), st.just(0)),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutations=st.lists(_MUTATION, min_size=1, max_size=4), fix=st.booleans())
def test_fuzzed_tar_headers_scan_or_fail_cleanly(tmp_path: Path, mutations: list[tuple[str, int, object]],
                                                  fix: bool) -> None:
    buf = bytearray(_small_tar())
    for op, at, arg in mutations:
        if op == "flip" and at < len(buf):
            block = at - at % 512
            buf[at] ^= arg  # type: ignore[operator]
            if fix:
                _fix_checksum(buf, block)
        elif op == "size" and at * 512 + 512 <= len(buf):
            buf[at * 512 + 124:at * 512 + 136] = arg  # type: ignore[assignment]
            if fix:
                _fix_checksum(buf, at * 512)
        elif op == "pax":
            head = [0, 2560, 4608][at]
            if head + 1024 <= len(buf):
                record = _pax_record(arg)  # type: ignore[arg-type]
                buf[head + 512:head + 512 + len(record)] = record
        elif op == "truncate":
            del buf[at:]
    path = tmp_path / "fuzz.tar"
    path.write_bytes(bytes(buf))
    tracemalloc.start()
    started = time.monotonic()
    try:
        scan_tar(path)
    except InputError as exc:
        assert str(path) in str(exc) and re.search(r"at byte \d+", str(exc)), str(exc)
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert time.monotonic() - started < 5
    assert peak < 4 << 20, peak


def test_masked_crc32c_known_values() -> None:
    """CRC-32C check value of b"123456789" is 0xE3069283; TFRecord masks it (rotate 15, add 0xa282ead8)."""
    crc = 0xE3069283
    assert masked_crc32c(b"123456789") == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF
    assert masked_crc32c(b"") == 0xA282EAD8
    data = random.Random(7).randbytes(5000)
    assert masked_crc32c(data) == masked_crc32c(bytes(memoryview(data)))


# ------------------------------------------------------------------------------------------------ unfinished cleans


def test_an_interrupted_clean_output_says_it_is_unfinished(
    cli: Cli, manifest: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import relake.copies.clean as clean_module

    copy, out = genuine("webdataset", tmp_path), tmp_path / "cleaned"
    real = clean_module._write_parquet

    def failing(src: Path, *args: object) -> str:
        if src.name == "00002.parquet":
            raise InputError(f"{src}: simulated failure")
        return real(src, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(clean_module, "_write_parquet", failing)
    assert cli("clean", copy, "--manifest", manifest, "--out", out).exit_code == 2
    assert (out / ".relake-clean.incomplete").is_file()
    result = cli("check", out, "--manifest", manifest)
    assert result.exit_code == 2, result.stdout
    line = error_line(result)
    assert "unfinished clean output" in line and "rerun relake clean" in line
    (out / ".relake-clean.incomplete").unlink()  # the record alone says so too
    assert "unfinished clean output" in error_line(cli("check", out, "--manifest", manifest))
    monkeypatch.setattr(clean_module, "_write_parquet", real)
    assert cli("clean", copy, "--manifest", manifest, "--out", out).exit_code == 0
    assert not (out / ".relake-clean.incomplete").exists()
    assert cli("check", out, "--manifest", manifest).exit_code == 0


def test_a_locked_out_folder_fails_at_once(cli: Cli, manifest: Path, tmp_path: Path) -> None:
    copy, out = genuine("webdataset", tmp_path), tmp_path / "cleaned"
    out.mkdir()
    fd = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as another clean holds it
        result = cli("clean", copy, "--manifest", manifest, "--out", out)
        assert result.exit_code == 2
        assert "another relake clean is writing into --out" in error_line(result)
        assert snapshot(out) == {}
    finally:
        os.close(fd)
    assert cli("clean", copy, "--manifest", manifest, "--out", out).exit_code == 0


def test_two_cleans_into_one_out_folder(manifest: Path, tmp_path: Path) -> None:
    copy, out = genuine("webdataset", tmp_path), tmp_path / "cleaned"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    args = [sys.executable, "-c", "from relake.cli import main; main()", "--lake", str(tmp_path / "lake"),
            "clean", str(copy), "--manifest", str(manifest), "--out", str(out)]
    procs = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    assert any(rc == 0 for rc, _, _ in results), results
    for rc, _, err in results:
        assert rc in (0, 2) and "Traceback" not in err and "relake-tmp" not in err, err
        if rc == 2:
            errors = [ln for ln in err.splitlines() if ln.startswith("Error:")]
            assert len(errors) == 1 and "another relake clean is writing into --out" in errors[0], err
    assert not (out / ".relake-clean.incomplete").exists()
    assert sorted(p.name for p in out.iterdir() if p.name.endswith(".tar")) == [f"0000{i}.tar" for i in range(4)]
    with tarfile.open(out / "00000.tar") as tar:
        assert tar.getnames()
