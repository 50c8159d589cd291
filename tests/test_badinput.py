"""Bad input, through the real ``relake`` console script in subprocesses (the hostile-name matrix runs the
same typer app in process, to stay fast): damaged versions, silently changed base bytes, schema drift,
blocklist files, nasty rows, hostile names and paths, terminal safety. Every failure is one ``Error:`` line
naming the file, exit 2, no traceback and no partial output; every other version keeps working."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from helpers import (
    Cli,
    Entry,
    laion_table,
    snapshot,
    snapshot_diff,
    version_shard_tables,
    write_shards,
    write_split,
    write_table,
)
from relake.canonical import canonical_url

RELAKE = str(Path(sys.executable).parent / "relake")
BASE_SCHEMA = pa.schema([("SAMPLE_ID", pa.int64()), ("URL", pa.string()), ("TEXT", pa.string()),
                         ("punsafe", pa.float64())])


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAKE_")}
    return env | {"COLUMNS": "1000"}  # wide enough that no table cell is cut


def relake(lake: Path, *args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RELAKE, "--lake", str(lake), *map(str, args)], env=_env(), capture_output=True,
                          text=True, timeout=timeout, check=False)


def relake_all(lake: Path, *commands: tuple[str | Path, ...]) -> list[subprocess.CompletedProcess[str]]:
    """Run several commands at once (independent ones only); results in the given order."""
    procs = [subprocess.Popen([RELAKE, "--lake", str(lake), *map(str, c)], env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for c in commands]
    out = []
    try:
        for c, p in zip(commands, procs, strict=True):
            stdout, stderr = p.communicate(timeout=120)
            out.append(subprocess.CompletedProcess([*map(str, c)], p.returncode, stdout, stderr))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    return out


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, (proc.args, proc.stderr)
    assert "Traceback" not in proc.stderr
    return proc


def error(proc: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """The one ``Error:`` line of a handled failure (exit 2, or ``code``: 1 for a failed verification; nothing
    else on stderr, no traceback)."""
    assert proc.returncode == code, (proc.args, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), proc.stderr
    return lines[0].removeprefix("Error: ")


def durable(lake: Path) -> dict[str, Entry]:
    """Everything but the work folders, which must be empty."""
    for d in ("staging", "tmp"):
        assert not (lake / d).exists() or list((lake / d).iterdir()) == []
    return {k: v for k, v in snapshot(lake).items() if not k.startswith(("staging", "tmp"))}


@dataclass(frozen=True)
class Base:
    src: Path
    lake: Path

    def copy(self, dest: Path) -> Path:
        shutil.copytree(self.lake, dest, symlinks=True)
        return dest


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    """``orig`` (600 rows, 3 shards, referenced in place) and ``d`` (orig without punsafe > 0.9)."""
    root = tmp_path_factory.mktemp("base")
    src = write_shards(root / "src", rows=600, shards=3)[0].parent
    lake = root / "lake"
    ok(relake(lake, "ingest", "orig", src))
    ok(relake(lake, "build", "d", "--base", "orig", "--where", "punsafe > 0.9", "--materialize"))
    return Base(src, lake)


# --- damaged versions -------------------------------------------------------------------------------------------


def _flip(path: Path, column: int) -> None:
    """64 bytes inverted in the middle of the first data page of ``column`` (not the footer)."""
    chunk = pq.ParquetFile(path).metadata.row_group(0).column(column)
    mid = chunk.data_page_offset + chunk.total_compressed_size // 2
    assert chunk.data_page_offset < mid - 32 and mid + 32 < chunk.data_page_offset + chunk.total_compressed_size
    with open(path, "r+b") as fh:
        fh.seek(mid - 32)
        data = fh.read(64)
        fh.seek(mid - 32)
        fh.write(bytes(b ^ 0xFF for b in data))


def _clone(lake: Path, name: str) -> Path:
    """A copy of version ``d`` named ``name``."""
    vdir = lake / "versions" / name
    shutil.copytree(lake / "versions" / "d", vdir)
    manifest = json.loads((vdir / "version.json").read_text())
    manifest["name"] = name
    (vdir / "version.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return vdir


Damage = Callable[[Path, Path], tuple[str, str | None]]  # (version folder, scratch) -> verify problem, build error


def _truncated(v: Path, _s: Path) -> tuple[str, str | None]:
    p = v / "data" / "part-00001.parquet"
    size = p.stat().st_size
    os.truncate(p, size - 100)
    return (f"{p}: size {size - 100} bytes, manifest says {size} (truncated or replaced)",
            f"{p}: shard of {v.name} is missing or changed size; run `relake verify {v.name}`")


def _flipped(v: Path, _s: Path) -> tuple[str, str | None]:
    p = v / "data" / "part-00001.parquet"
    _flip(p, 1)  # the URL column's (compressed) page: DuckDB fails to decode it
    return f"{p}: sha256 ", f"{p}: shard of {v.name} changed since it was recorded (sha256 "


def _zero_bytes(v: Path, _s: Path) -> tuple[str, str | None]:
    p = v / "data" / "part-00001.parquet"
    size = p.stat().st_size
    os.truncate(p, 0)
    return (f"{p}: size 0 bytes, manifest says {size} (truncated or replaced)",
            f"{p}: shard of {v.name} is missing or changed size; run `relake verify {v.name}`")


def _missing(v: Path, _s: Path) -> tuple[str, str | None]:
    p = v / "data" / "part-00001.parquet"
    p.unlink()
    return (f"{p}: shard is missing",
            f"{p}: shard of {v.name} is missing or changed size; run `relake verify {v.name}`")


def _extra(v: Path, _s: Path) -> tuple[str, str | None]:
    p = v / "data" / "part-00003.parquet"
    shutil.copyfile(v / "data" / "part-00000.parquet", p)
    return f"{p}: not a shard of the manifest (an extra file in the version's data folder)", None


def _symlink_out(v: Path, scratch: Path) -> tuple[str, str | None]:
    p = v / "data" / "part-00001.parquet"
    outside = scratch / "outside.parquet"  # the very same bytes, but outside the lake
    shutil.move(p, outside)
    p.symlink_to(outside)
    return f"{p}: is a symlink; shards of a lake version must be plain files inside it", None


def _bad_manifest(text: Callable[[str], str], why: str) -> Damage:
    def damage(v: Path, _s: Path) -> tuple[str, str | None]:
        p = v / "version.json"
        p.write_text(text(p.read_text()))
        msg = f"{p}: corrupt or unreadable version record ({why}"
        return msg, msg

    return damage


DAMAGE: dict[str, Damage] = {
    "d-truncated": _truncated,
    "d-flipped": _flipped,
    "d-zero": _zero_bytes,
    "d-missing": _missing,
    "d-extra": _extra,
    "d-symlink": _symlink_out,
    "d-corrupt-json": _bad_manifest(lambda t: t[: len(t) // 2], ""),
    "d-empty-json": _bad_manifest(lambda t: "", "Expecting value: line 1 column 1 (char 0)"),
}


def test_damaged_versions_are_named_and_the_others_keep_working(base: Base, tmp_path: Path) -> None:
    lake = base.copy(tmp_path / "lake")
    expected = {name: damage(_clone(lake, name), tmp_path) for name, damage in DAMAGE.items()}
    before = durable(lake)

    result = relake(lake, "verify")
    assert result.returncode == 1  # a failed verification is "found", not trouble
    assert error(result, code=1) == f"{len(DAMAGE)} problem(s) in {', '.join(sorted(DAMAGE))}"
    lines = result.stdout.splitlines()
    assert lines[0] == "ok  d: 3 shards, 534 rows" and lines[-1] == "ok  orig: 3 shards, 600 rows"
    got = {lines[i].removeprefix("BAD ").removesuffix(":"): lines[i + 1] for i in range(1, len(lines) - 1, 2)}
    assert sorted(got) == sorted(DAMAGE)
    for name, (problem, _build) in expected.items():
        assert got[name].startswith("    " + problem), (name, got[name])

    builds = relake_all(lake, *[("build", f"e-{n}", "--base", n, "--where", "punsafe > 0.5") for n in DAMAGE],
                        ("verify", "d"), ("show", "d-corrupt-json"))
    for name, result in zip(DAMAGE, builds, strict=False):
        build_error = expected[name][1]
        if build_error is None:  # the manifest's shards hold the right bytes: the build reads only those
            assert ok(result).stdout.startswith(f"built e-{name} from {name}: 296 rows kept, 238 removed in 3 shards")
            continue
        msg = error(result)
        assert msg.startswith(build_error), (name, msg)
        assert msg.endswith(("nothing was published", f"run `relake verify {name}`", "re-create the version"))
    assert ok(builds[-2]).stdout == "ok  d: 3 shards, 534 rows\n"
    assert error(builds[-1]).startswith(expected["d-corrupt-json"][0])
    after = durable(lake)
    # besides the lake's notes of its files' identities (verify re-noted the copied lake's intact shards)
    assert sorted(k for k in snapshot_diff(before, after) if k.count("/") == 1 and not k.startswith("identities/")
                  ) == ["versions/e-d-extra", "versions/e-d-symlink"]


def test_versions_lists_the_others_when_one_manifest_is_damaged(base: Base, tmp_path: Path) -> None:
    lake = base.copy(tmp_path / "lake")
    (lake / "versions" / "d" / "version.json").write_text("{")
    result = relake(lake, "versions")
    assert "orig" in result.stdout
    assert str(lake / "versions" / "d" / "version.json") in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("materialize", [False, True])
def test_build_refuses_a_base_whose_bytes_changed_without_a_read_error(tmp_path: Path, materialize: bool) -> None:
    """An uncompressed page with 64 flipped bytes reads as other values, without any DuckDB error: the
    build must not turn them into a new version (whose manifest would not match its data). A vector build reads
    no whole shard: the shard's identity (the write changed its mtime and ctime) refuses it; a materialised build
    re-hashes the shards it rewrites."""
    paths = write_split(laion_table(0, 600), tmp_path / "src", 3, compression="none", use_dictionary=False)
    lake = tmp_path / "lake"
    ok(relake(lake, "ingest", "orig", paths[0].parent))
    _flip(paths[1], 3)  # punsafe
    before = durable(lake)
    msg = error(relake(lake, "build", "d", "--base", "orig", "--where", "punsafe > 0.5",
                       *(["--materialize"] if materialize else [])))
    if materialize:
        assert msg.startswith(f"{paths[1]}: shard of orig changed since it was recorded (sha256 ")
        assert msg.endswith("run `relake verify orig`; nothing was published")
    else:
        assert msg.startswith(f"{paths[1]}: shard of orig changed since it was recorded (mtime, ctime)")
        assert msg.endswith("run `relake verify orig`")
    assert durable(lake) == before


# --- schema drift -----------------------------------------------------------------------------------------------


def test_schema_drift_names_shard_column_expected_and_actual(tmp_path: Path) -> None:
    t = laion_table(100, 100)
    drifted = {
        "missing": (t.drop_columns(["punsafe"]), "column 'punsafe' (DOUBLE) missing (expected as in {first})"),
        "extra": (t.append_column("NSFW", pa.array(["UNLIKELY"] * 100)), "unexpected column 'NSFW' (VARCHAR)"),
        "retyped": (t.set_column(3, "punsafe", t.column("punsafe").cast(pa.float32())),
                    "column 'punsafe' is FLOAT, expected DOUBLE (as in {first})"),
        "recased": (t.rename_columns(["SAMPLE_ID", "URL", "text", "punsafe"]),
                    "column 'TEXT' (VARCHAR) missing, found 'text' (names differ in case) (expected as in {first})"),
    }
    lake = tmp_path / "lake"
    expected = []
    for kind, (table, message) in drifted.items():
        first = write_table(laion_table(0, 100), tmp_path / kind / "part-00000.parquet")
        second = write_table(table, tmp_path / kind / "part-00001.parquet")
        expected.append(f"{second}: schema drift: " + message.format(first=first))
    results = relake_all(lake, *[("ingest", kind, tmp_path / kind) for kind in drifted])
    assert [error(r) for r in results] == expected
    assert not (lake / "versions").exists()


# --- blocklist files --------------------------------------------------------------------------------------------

SHA_A = hashlib.sha256(b"a").hexdigest()
SHA_B = hashlib.sha256(b"b").hexdigest()


def test_blocklist_errors_name_the_file_and_lines(base: Base, tmp_path: Path) -> None:
    lake = base.copy(tmp_path / "lake")
    before = durable(lake)
    bad = tmp_path / "partner.txt"
    bad.write_bytes(
        b"\xef\xbb\xbf" + SHA_A.encode() + b"\r\n"      # 1: a valid hash on line 1, after a BOM
        b"# comment\r\n\r\n"                             # 2, 3
        + SHA_A[:63].encode() + b"\r\n"                  # 4: 63 hex digits
        + b"  " + SHA_B.upper().encode() + b"  \r\n"     # 5: spaces and upper case: fine
        + ("z" * 64).encode() + b"\r\n"                  # 6: not hex
        + b'"' + SHA_B.encode() + b'"\r\n'               # 7: quoted
        + SHA_A.encode() + b"\r\n"                       # 8: duplicate: fine
    )
    msg = error(relake(lake, "blocklist", "add", "partner", bad, "--kind", "image-sha256"))
    assert msg == (f"{bad}: 3 malformed lines: line 4: 63 hex digits, expected 64 for sha256; "
                   "line 6: not hexadecimal; line 7: enclosed in quotes; use --skip-invalid to skip them")
    assert durable(lake) == before

    skipped = json.loads(ok(relake(lake, "blocklist", "add", "partner", bad, "--kind", "image-sha256",
                                   "--skip-invalid", "--json")).stdout)
    assert (skipped["raw_entries"], skipped["unique_entries"], skipped["skipped"]) == (6, 2, 3)

    csv = tmp_path / "nulls.csv"  # empty fields are ignored (counted), never imported as an entry
    csv.write_text(f"id,sha\n1,{SHA_A}\n2,\n3,{SHA_B}\n4,\"\"\n")
    imported = json.loads(ok(relake(lake, "blocklist", "add", "nulls", csv, "--kind", "image-sha256",
                                    "--column", "sha", "--json")).stdout)
    assert (imported["raw_entries"], imported["unique_entries"], imported["empty"]) == (2, 2, 2)
    entries = pq.read_table(lake / "blocklists" / "nulls" / "entries.parquet").column("entry").to_pylist()
    assert entries == sorted([SHA_A, SHA_B])


# --- nasty rows -------------------------------------------------------------------------------------------------

NASTY_URLS = [None, "", "   ", "http://ok.example/1.jpg"]


def _nasty_tables() -> list[pa.Table]:
    """Shard 0: NULL, empty and blank URLs; shard 1: no rows; shard 2: a duplicate key and a blocked URL."""
    rows0 = [{"SAMPLE_ID": i, "URL": u, "TEXT": None if i % 2 else f"c{i}", "punsafe": 0.1}
             for i, u in enumerate(NASTY_URLS)]
    rows2 = [{"SAMPLE_ID": 3, "URL": "http://dup.example/key.jpg", "TEXT": "same key", "punsafe": 0.2},
             {"SAMPLE_ID": 7, "URL": "HTTP://Blocked.Example/x.jpg", "TEXT": "blocked", "punsafe": 0.3},
             {"SAMPLE_ID": 8, "URL": "", "TEXT": "", "punsafe": None}]
    return [pa.Table.from_pylist(rows0, schema=BASE_SCHEMA), BASE_SCHEMA.empty_table(),
            pa.Table.from_pylist(rows2, schema=BASE_SCHEMA)]


def test_null_and_empty_urls_duplicate_keys_and_empty_shards(tmp_path: Path) -> None:
    src = [write_table(t, tmp_path / "src" / f"part-{i:05d}.parquet") for i, t in enumerate(_nasty_tables())]
    empty = write_table(BASE_SCHEMA.empty_table(), tmp_path / "empty" / "part-00000.parquet")
    sha = tmp_path / "sha.txt"  # the sha256 of "" and of a blank URL must not match the NULL / empty URLs
    sha.write_text("".join(hashlib.sha256(s.encode()).hexdigest() + "\n"
                           for s in ("", "   ", str(canonical_url("http://blocked.example/x.jpg")))))
    keys = tmp_path / "keys.txt"
    keys.write_text("3\n")
    lake = tmp_path / "lake"
    ok(relake(lake, "ingest", "nasty", src[0].parent))
    ok(relake(lake, "ingest", "empty", empty.parent))
    ok(relake(lake, "blocklist", "add", "sha", sha, "--kind", "url-sha256"))
    ok(relake(lake, "blocklist", "add", "keys", keys, "--kind", "key"))
    built = relake_all(lake, ("build", "clean", "--base", "nasty", "--blocklist", "sha", "--blocklist", "keys",
                              "--full-audit", "--json"),
                       ("build", "empty-clean", "--base", "empty", "--blocklist", "sha", "--where", "punsafe > 0.5",
                        "--full-audit", "--json"))
    clean, empty_clean = (json.loads(ok(r).stdout) for r in built)
    assert (clean["rows"], clean["removed"]) == (4, 3)
    assert clean["by_rule"] == {"blocklist-keys": 2, "blocklist-sha": 1}
    assert (empty_clean["rows"], empty_clean["removed"]) == (0, 0)

    out = version_shard_tables(lake / "versions" / "clean")  # its rows, computed with pyarrow (a vector version)
    assert [t.num_rows for t in out] == [3, 0, 1]
    assert out[0].column("URL").to_pylist() == [None, "", "   "]  # kept, never matched
    assert out[2].to_pylist() == [{"SAMPLE_ID": 8, "URL": "", "TEXT": "", "punsafe": None}]
    removed = pq.read_table(lake / "versions" / "clean" / "removed.parquet").to_pylist()
    assert [(r["shard"], r["position"], r["key"], r["rules"]) for r in removed] == [
        (0, 3, "3", ["blocklist-keys"]), (2, 0, "3", ["blocklist-keys"]), (2, 1, "7", ["blocklist-sha"])]
    assert ok(relake(lake, "verify")).stdout.splitlines() == [
        "ok  clean: 3 shards, 4 rows", "ok  empty: 1 shard, 0 rows", "ok  empty-clean: 1 shard, 0 rows",
        "ok  nasty: 3 shards, 7 rows"]


def test_invalid_utf8_in_a_string_column_is_a_clear_error(tmp_path: Path) -> None:
    good = write_table(laion_table(0, 50), tmp_path / "src" / "part-00000.parquet")
    raw = pa.array([b"http://a.example/\xff\xfe.jpg", b"http://b.example/"], pa.binary())
    urls = pa.Array.from_buffers(pa.string(), len(raw), raw.buffers())  # invalid UTF-8, unchecked
    table = pa.table({"SAMPLE_ID": pa.array([1, 2], pa.int64()), "URL": urls, "TEXT": pa.array(["a", "b"]),
                      "punsafe": pa.array([0.1, 0.2])})
    bad = write_table(table, tmp_path / "src" / "part-00001.parquet")
    lake = tmp_path / "lake"
    msg = error(relake(lake, "ingest", "v", good.parent))
    assert str(bad) in msg and "UTF8" in msg.replace("UTF-8", "UTF8")
    assert not (lake / "versions").exists()


# --- hostile names and paths ------------------------------------------------------------------------------------

PLAIN = "use letters, digits, '.', '_' and '-' only, starting with a letter or digit"
HOSTILE = {
    "../x": "'..' is not allowed",
    "/abs": PLAIN,
    "v[1]": PLAIN,
    "v*": PLAIN,
    "v'1": PLAIN,
    'v"1': PLAIN,
    "a\x00b": PLAIN,
    "v\x1b[31m": PLAIN,
    "a" * 300: "it is longer than 100 bytes",
}


@pytest.mark.parametrize("name", list(HOSTILE), ids=["dotdot", "abs", "brackets", "star", "squote", "dquote",
                                                     "nul", "ansi", "300"])
def test_hostile_names_are_rejected_before_any_lake_access(cli: Cli, tmp_path: Path, lake_root: Path,
                                                           name: str) -> None:
    src = write_shards(tmp_path / "src", rows=10, shards=1)[0]
    bl = tmp_path / "bl.txt"
    bl.write_text("http://x.example/\n")
    before = snapshot(tmp_path)
    shown = repr(name[:40] + "…" if len(name) > 40 else name)
    version_error = f"Error: invalid version name {shown}: {HOSTILE[name]}"
    for args, want in [
        (("ingest", name, src), version_error),
        (("build", name, "--base", "orig", "--where", "TRUE"), version_error),
        (("build", "ok", "--base", name, "--where", "TRUE"), version_error),
        (("show", name), version_error),
        (("blocklist", "add", name, bl, "--kind", "url"), version_error.replace("version name", "blocklist name")),
    ]:
        result = cli(*args)
        assert result.exit_code == 2, (args, result.stdout, result.stderr)
        assert result.stderr.splitlines() == [want], args
    result = cli("verify", name)  # a name with a '/' is a folder to verify: there is no version.json in it
    assert result.exit_code == 2
    assert result.stderr.splitlines() == (
        [f"Error: {name}: no version.json here; give a version name or a release folder"] if "/" in name
        else [version_error])
    assert not lake_root.exists()  # nothing created, nothing read from a lake
    assert snapshot_diff(before, snapshot(tmp_path)) == {}


def test_nul_and_globs_in_a_spec_and_a_lake_under_a_glob_folder(tmp_path: Path) -> None:
    top = tmp_path / "data[1]"
    src = write_shards(top / "src", rows=90, shards=3)[0].parent
    write_shards(tmp_path / "data1" / "src", rows=999, shards=1)  # what a glob expansion would wrongly read
    lake = top / "lake"
    bl = top / "bl[x].txt"
    bl.write_text("https://img1.example.com/a/1.jpg\n")
    spec = top / "spec.toml"
    spec.write_text('name = "e"\nbase = "orig*"\n[[rule]]\nid = "u"\nblocklist = "bl"\ncategory = "x"\n')
    nul = top / "nul.toml"
    nul.write_text('name = "a\\u0000b"\nbase = "orig"\n[[rule]]\nid = "u"\nblocklist = "bl"\ncategory = "x"\n')

    ok(relake(lake, "ingest", "orig", src))
    ok(relake(lake, "blocklist", "add", "bl", bl, "--kind", "url"))
    assert json.loads(ok(relake(lake, "build", "d", "--base", "orig", "--blocklist", "bl", "--json")).stdout)[
        "removed"] == 1
    before = durable(lake)
    results = relake_all(lake, ("verify",), ("show", "orig*"), ("build", "e", "--spec", spec),
                         ("build", "a", "--spec", nul), ("show", "d", "--json"))
    assert ok(results[0]).stdout.splitlines() == ["ok  d: 3 shards, 89 rows", "ok  orig: 3 shards, 90 rows"]
    assert error(results[1]) == f"invalid version name 'orig*': {PLAIN}"
    assert error(results[2]) == f"{spec}: 'base': invalid version name 'orig*': {PLAIN}"
    assert error(results[3]) == f"{nul}: 'name': invalid version name 'a\\x00b': {PLAIN}"
    shown = json.loads(ok(results[4]).stdout)
    # a deletion vector over orig: its shards are orig's, referenced in place (under the glob folder) and read fine
    assert shown["storage"] == "vector" and shown["vector"]["root"] == "orig"
    assert [Path(s["path"]).name for s in shown["shards"]] == sorted(p.name for p in src.glob("*.parquet"))
    assert durable(lake) == before


# --- terminal safety --------------------------------------------------------------------------------------------


def test_markup_and_escapes_in_paths_and_data_are_printed_literally(tmp_path: Path) -> None:
    folder = tmp_path / "src [bold red]x[/] \x1b[31mred\x1b[0m\nline2"
    table = pa.Table.from_pylist([
        {"SAMPLE_ID": 1, "URL": "http://e.example/[bold red]x[/]", "TEXT": "\x1b[31mred\nnext", "punsafe": 0.1},
        {"SAMPLE_ID": 2, "URL": "http://e.example/\x1b]0;title\x07", "TEXT": "[link=file:///etc]y[/link]",
         "punsafe": 0.2},
    ], schema=BASE_SCHEMA)
    shard = write_table(table, folder / "part-00000.parquet")
    lake = tmp_path / "lake"
    ok(relake(lake, "ingest", "v", folder))
    shown = ok(relake(lake, "show", "v")).stdout
    assert "\x1b" not in shown and "\x07" not in shown
    assert "src [bold red]x[/] \\x1b[31mred\\x1b[0m\\nline2/part-00000.parquet" in shown  # literal, escaped
    os.truncate(shard, 100)
    result = relake(lake, "verify", "v")
    assert result.returncode == 1
    assert "\x1b" not in result.stdout + result.stderr
    assert "[bold red]x[/] \\x1b[31m" in result.stdout
