"""engine.py: the local and Ray engines run the same per-shard jobs with the same results; on Ray, a build is
byte-identical to a local one and per-file fingerprints fold to the single-scan fingerprint.

The Ray tests need ``pip install 'relake[ray]'`` and are skipped (with that reason) where Ray is missing; they
start one local 2-CPU Ray instance for the module.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import relake.diff
import relake.diff.shuffle
from helpers import sha256_of, shuffled, snapshot, write_shards, write_split, write_table
from relake.build import build_version
from relake.cli import app
from relake.copies import check_copy, clean_copy
from relake.db import connect
from relake.diff import diff_versions
from relake.engine import LocalEngine, RayEngine, get_engine, plain_file
from relake.errors import InputError, RelakeError
from relake.fingerprint import fingerprint_file, fingerprint_files, fingerprint_src, names_tag
from relake.ingest import ingest_version
from relake.lake import Lake
from relake.publish import publish_release
from relake.synthcopy import synth_copy
from test_build import Inputs, make_inputs, make_lake, spec_of
from test_copies import SHARD_SIZE, Planted, assert_clean_output, plant, source_table
from test_diff import V1_SCHEMA, V2_SCHEMA, v1_rows, v2_rows
from test_withholding import keyed_world

# --- the local engine and the engine contract (no Ray needed) ---------------------------------------------


def _slow_square(x: int) -> int:
    time.sleep(0.002 * (10 - x))  # later jobs finish first
    return x * x


def test_local_engine_returns_results_in_job_order() -> None:
    done: list[int] = []
    lock = threading.Lock()

    def tick() -> None:
        with lock:
            done.append(1)

    engine = LocalEngine(4)
    assert engine.map(_slow_square, list(range(10)), on_done=tick) == [x * x for x in range(10)]
    assert len(done) == 10
    assert engine.map(_slow_square, []) == []
    assert LocalEngine(None).workers >= 1


def test_local_engine_lets_a_job_error_through() -> None:
    def boom(x: int) -> int:
        if x == 3:
            raise InputError("shard 3 is bad")
        return x

    with pytest.raises(InputError, match="shard 3 is bad"):
        LocalEngine(2).map(boom, list(range(6)))


def test_get_engine_validates_its_arguments() -> None:
    assert isinstance(get_engine("local", None, 3), LocalEngine)
    assert get_engine("local", None, 3).workers == 3  # type: ignore[attr-defined]
    with pytest.raises(RelakeError, match="--ray-address only applies with --engine ray"):
        get_engine("local", "ray://head:10001")
    with pytest.raises(RelakeError, match="unknown engine 'spark'"):
        get_engine("spark")


def test_ray_engine_without_ray_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, installed or not
    with pytest.raises(RelakeError, match=r"pip install 'relake\[ray\]'"):
        RayEngine()


def test_cli_without_ray_fails_with_one_error_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    ingest_version(Lake.at(tmp_path / "lake"), "orig", [str(p) for p in write_shards(tmp_path / "src", 30, 2)])
    r = CliRunner().invoke(app, ["--lake", str(tmp_path / "lake"), "fingerprint", "orig", "--engine", "ray"])
    assert r.exit_code == 2
    assert "Error: the Ray engine needs Ray: pip install 'relake[ray]'" in r.stderr
    r = CliRunner().invoke(app, ["--lake", str(tmp_path / "lake"), "fingerprint", "orig", "--engine", "spark"])
    assert r.exit_code == 2


def test_plain_file_hides_glob_characters(tmp_path: Path) -> None:
    (p,) = write_shards(tmp_path / "src", 20, 1)
    odd = tmp_path / "odd[1]*.parquet"
    odd.write_bytes(p.read_bytes())
    with plain_file(str(p)) as same:
        assert same == str(p)
    with plain_file(str(odd)) as link:
        assert "[" not in link and "*" not in link and Path(link).read_bytes() == odd.read_bytes()
    assert not Path(link).exists()  # the private link is gone afterwards


def test_per_file_fingerprints_fold_to_the_single_scan(tmp_path: Path) -> None:
    shards = write_shards(tmp_path / "src", 300, 3)
    odd = tmp_path / "src" / "part[3].parquet"  # DuckDB would read it as a glob
    odd.write_bytes(write_shards(tmp_path / "more", 50, 1, start=300)[0].read_bytes())
    shards.append(odd)
    with connect() as db:
        db.bind_parquet("src", shards)
        whole = fingerprint_src(db)
        names = names_tag(db.con.table("src").columns)
    assert whole.rows == 350
    assert fingerprint_files(shards, LocalEngine(2)) == whole
    parts = [fingerprint_file(str(p), names) for p in shards]
    assert sum(n for part in parts for _, n, _, _ in part) == 350
    assert fingerprint_files([], LocalEngine(1)).rows == 0


def test_per_file_fingerprints_need_one_schema(tmp_path: Path) -> None:
    a = write_shards(tmp_path / "a", 20, 1)[0]
    b = write_shards(tmp_path / "b", 20, 1, prefix="other")[0]
    import pyarrow.parquet as pq

    pq.write_table(pq.read_table(b).drop_columns(["TEXT"]), b)
    with pytest.raises(InputError, match="columns or types differ from the first file's"):
        fingerprint_files([a, b], LocalEngine(1))


class _FailingEngine(LocalEngine):
    def map(self, fn: Any, jobs: Any, *, label: Any = None, on_done: Any = None, on_result: Any = None) -> list[Any]:
        raise RelakeError(f"Ray task {fn.__name__} for {label(jobs[1])} failed: worker died")


def test_a_failed_job_publishes_nothing(tmp_path: Path) -> None:
    inp = make_inputs(tmp_path / "in")
    lake = make_lake(tmp_path / "lake", inp)
    before = snapshot(lake.root)
    with pytest.raises(RelakeError, match=r"write_surviving for part-00001\.parquet \(from /.*part-00001\.parquet\)"):
        build_version(lake, spec_of(inp.spec_text()), engine=_FailingEngine(1), materialize=True)
    assert not lake.has_version("research")
    after = {k: v for k, v in snapshot(lake.root).items() if not k.startswith(("staging", "tmp"))}
    assert after == {k: v for k, v in before.items() if not k.startswith(("staging", "tmp"))}


# --- Ray -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_engine() -> Iterator[RayEngine]:
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'relake[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield RayEngine()
    finally:
        ray.shutdown()


def _files(lake: Lake, name: str) -> dict[str, str]:
    vdir = lake.version_dir(name)
    return {p.relative_to(vdir).as_posix(): sha256_of(p) for p in sorted(vdir.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    return make_inputs(tmp_path_factory.mktemp("engine-in"))


def test_ray_build_is_byte_identical_to_local(ray_engine: RayEngine, inputs: Inputs, tmp_path: Path) -> None:
    spec = spec_of(inputs.spec_text())
    local = make_lake(tmp_path / "local", inputs)
    on_ray = make_lake(tmp_path / "ray", inputs)
    r_local = build_version(local, spec, engine=LocalEngine(2), materialize=True)
    ticks: list[int] = []
    r_ray = build_version(on_ray, spec, engine=ray_engine, progress=ticks.append, materialize=True)
    assert len(ticks) == 3  # one per shard, as each Ray task finishes
    files = _files(local, "research")
    assert set(files) == {"version.json", "removed.parquet", *(f"data/part-{i:05d}.parquet" for i in range(3))}
    assert _files(on_ray, "research") == files
    assert r_ray.removed == r_local.removed > 0 and r_ray.by_rule == r_local.by_rule
    assert r_ray.version.fingerprint == r_local.version.fingerprint


def test_ray_fingerprint_equals_local(ray_engine: RayEngine, inputs: Inputs, tmp_path: Path) -> None:
    with connect() as db:
        db.bind_parquet("src", inputs.base)
        whole = fingerprint_src(db)
    assert fingerprint_files(inputs.base, ray_engine) == whole
    lake = make_lake(tmp_path / "lake", inputs)
    runner = CliRunner()
    out = {}
    for engine in ("local", "ray"):
        r = runner.invoke(app, ["--lake", str(lake.root), "fingerprint", "orig", "--engine", engine, "--json",
                                "--buckets"])
        assert r.exit_code == 0, r.stderr
        data = json.loads(r.stdout)
        assert data["manifest_matches"] is True
        out[engine] = {k: v for k, v in data.items() if k != "seconds"}
    assert out["ray"] == out["local"]
    assert out["ray"]["fingerprint"] == whole.value


def test_ray_reads_and_publishes_a_vector_version_as_local_does(ray_engine: RayEngine, inputs: Inputs,
                                                                 tmp_path: Path) -> None:
    """A vector version (the default build): fingerprint and keyed diff on Ray equal local, and publish on Ray
    writes the same bytes as publish on the local engine and as a materialised build's shards."""
    lake = make_lake(tmp_path / "lake", inputs)
    spec = spec_of(inputs.spec_text())
    built = build_version(lake, spec)
    build_version(lake, dataclasses.replace(spec, name="research-m"), materialize=True)
    assert built.version.storage == "vector"
    assert fingerprint_files(
        [built.version.shard_path(lake.version_dir("research"), s) for s in built.version.shards], ray_engine,
        lake.version_dir("research") / "deletes.parquet") == built.version.fingerprint
    local = diff_versions(lake, "orig", "research", key=["SAMPLE_ID"], use_buckets=False)
    on_ray = diff_versions(lake, "orig", "research", key=["SAMPLE_ID"], use_buckets=False, engine=ray_engine)
    assert (on_ray.rows_a, on_ray.rows_b, on_ray.removed, on_ray.added, on_ray.changed) == (
        local.rows_a, local.rows_b, local.removed, local.added, local.changed) and local.removed > 0
    publish_release(lake, "research", tmp_path / "rel-local", min_crowd=1, engine=LocalEngine(2))
    publish_release(lake, "research", tmp_path / "rel-ray", min_crowd=1, engine=ray_engine)
    data = {d: {p.name: sha256_of(p) for p in sorted((tmp_path / d / "data").iterdir())}
            for d in ("rel-local", "rel-ray")}
    assert data["rel-local"] == data["rel-ray"] == {
        p.name: sha256_of(p) for p in sorted((lake.version_dir("research-m") / "data").iterdir())}


def test_ray_task_failure_names_the_file(ray_engine: RayEngine, inputs: Inputs, tmp_path: Path) -> None:
    bad = tmp_path / "broken.parquet"
    bad.write_bytes(b"PAR1 not really parquet PAR1")
    with pytest.raises(RelakeError, match=r"Ray task _fingerprint_job for .*broken\.parquet failed: InputError"):
        fingerprint_files([inputs.base[0], bad], ray_engine)


def test_ray_build_via_cli(ray_engine: RayEngine, inputs: Inputs, tmp_path: Path) -> None:
    lake = make_lake(tmp_path / "lake", inputs)
    spec = tmp_path / "research.toml"
    spec.write_text(inputs.spec_text())
    r = CliRunner().invoke(app, ["--lake", str(lake.root), "build", "research", "--spec", str(spec),
                                 "--engine", "ray", "--json"])
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["removed"] > 0


# --- clean on Ray --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def copy_case(tmp_path_factory: pytest.TempPathFactory) -> Planted:
    root = tmp_path_factory.mktemp("engine-copy")
    write_table(source_table(), root / "src" / "part-00000.parquet")
    synth_copy(Lake.at(root / "no-lake"), str(root / "src"), root / "copy", shard_size=SHARD_SIZE,
               hash_algo="md5", failure_rate=0.15, seed=7)
    return plant(root / "copy", root / "manifest")


def _tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): sha256_of(p) for p in sorted(root.rglob("*")) if p.is_file()}


def test_ray_clean_is_byte_identical_to_local(ray_engine: RayEngine, copy_case: Planted, tmp_path: Path) -> None:
    lake = Lake.at(tmp_path / "no-lake")
    local = clean_copy(lake, copy_case.copy, copy_case.manifest, tmp_path / "local")
    ticks: list[int] = []
    on_ray = clean_copy(lake, copy_case.copy, copy_case.manifest, tmp_path / "ray", engine=ray_engine,
                        progress=ticks.append)
    units = local.rewritten + local.copied + local.files
    assert len(ticks) == units and local.rewritten > 0 and local.copied > 0
    files = _tree(tmp_path / "local")
    assert _tree(tmp_path / "ray") == files  # every file, the resume record included
    counts = ("rewritten", "copied", "files", "removed_rows", "removed_members", "failed_removed", "tar_bytes_in",
              "tar_bytes_out", "stale")
    assert {k: getattr(on_ray, k) for k in counts} == {k: getattr(local, k) for k in counts}
    assert_clean_output(copy_case, tmp_path / "ray")
    assert check_copy(lake, tmp_path / "ray", copy_case.manifest).affected == 0
    again = clean_copy(lake, copy_case.copy, copy_case.manifest, tmp_path / "ray", engine=ray_engine)
    assert again.resumed == units and _tree(tmp_path / "ray") == files


def test_ray_clean_via_cli_with_relative_paths(ray_engine: RayEngine, copy_case: Planted, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the tasks get absolute paths; a Ray worker's folder is not the driver's
    (tmp_path / "copy").symlink_to(copy_case.copy)
    runner = CliRunner()
    base = ["--lake", str(tmp_path / "no-lake"), "clean", "copy", "--manifest", str(copy_case.manifest), "--json"]
    r_local = runner.invoke(app, [*base, "--out", "local", "--engine", "local"])
    assert r_local.exit_code == 0, r_local.stderr
    r_ray = runner.invoke(app, [*base, "--out", "ray", "--engine", "ray"])
    assert r_ray.exit_code == 0, r_ray.stderr
    assert json.loads(r_ray.stdout)["removed_rows"] == json.loads(r_local.stdout)["removed_rows"] > 0
    assert _tree(tmp_path / "ray") == _tree(tmp_path / "local")
    r = runner.invoke(app, [*base, "--out", "x", "--ray-address", "ray://head:10001"])
    assert r.exit_code == 2 and "--ray-address only applies with --engine ray" in r.stderr


# --- diff and check on Ray -----------------------------------------------------------------------------------


def _pair(root: Path) -> tuple[Path, Path]:
    """v1 in 2 shards; v2 (6 removed, 7 changed, 4 added, URL renamed url, WIDTH retyped) re-sharded into 3."""
    v1 = v1_rows()
    write_split(pa.Table.from_pylist(v1, schema=V1_SCHEMA), root / "v1", 2)
    write_split(shuffled(pa.Table.from_pylist(v2_rows(v1), schema=V2_SCHEMA), 3), root / "v2", 3, prefix="shard")
    return root / "v1", root / "v2"


def _invoke(lake: Path, *args: str | Path) -> Any:
    return CliRunner().invoke(app, ["--lake", str(lake), *map(str, args)])


def _without_time(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in ("seconds", "out")}


def _no_scratch(lake: Path) -> bool:
    tmp = lake / "tmp"
    return not tmp.exists() or not [p for p in tmp.iterdir() if p.name.startswith("diff-shuffle")]


@pytest.mark.parametrize("key", [[], ["--key", "URL,TEXT"]], ids=["id-key", "struct-key"])
def test_ray_keyed_diff_equals_local(ray_engine: RayEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     key: list[str]) -> None:
    monkeypatch.setattr(relake.diff.shuffle, "ROWS_PER_BUCKET", 16)  # 118 rows: 8 key buckets, most with rows
    v1, v2 = _pair(tmp_path)
    lake = tmp_path / "lake"
    out: dict[str, dict[str, Any]] = {}
    for engine in ("local", "ray"):
        r = _invoke(lake, "diff", f"{v1}/", f"{v2}/", "--map", "URL=url", *key, "--json",
                    "--out", tmp_path / f"{engine}.parquet", "--engine", engine)
        assert r.exit_code == 1, r.stderr
        out[engine] = json.loads(r.stdout)
    assert _without_time(out["ray"]) == _without_time(out["local"])
    rows = out["local"]["rows"]
    assert rows["added"] > 0 and rows["removed"] > 0 and (rows["changed"] > 0 or key)
    assert (tmp_path / "ray.parquet").read_bytes() == (tmp_path / "local.parquet").read_bytes()
    assert _no_scratch(lake)


def test_ray_diff_of_versions_withholds_sensitive_removals_as_locally(
    ray_engine: RayEngine, inputs: Inputs, tmp_path: Path
) -> None:
    lake = make_lake(tmp_path / "lake", inputs)
    build_version(lake, spec_of(inputs.spec_text()), engine=LocalEngine(2))
    out: dict[str, dict[str, Any]] = {}
    for engine in ("local", "ray"):
        r = _invoke(lake.root, "diff", "orig", "research", "--json", "--out", tmp_path / f"{engine}.jsonl",
                    "--engine", engine)
        assert r.exit_code == 1, r.stderr
        out[engine] = json.loads(r.stdout)
    assert out["local"]["mode"] == "keyed" and out["local"]["withheld_sensitive"] > 0
    assert _without_time(out["ray"]) == _without_time(out["local"])
    assert (tmp_path / "ray.jsonl").read_bytes() == (tmp_path / "local.jsonl").read_bytes()


def test_ray_map_task_failure_is_one_error_line_and_leaves_no_scratch(
    ray_engine: RayEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    v1, v2 = _pair(tmp_path)
    bad = tmp_path / "broken.parquet"
    bad.write_bytes(b"PAR1 not really parquet PAR1")
    real = relake.diff.shuffle.map_jobs

    def with_a_broken_file(*args: Any, **kwargs: Any) -> list[relake.diff.shuffle.MapJob]:
        jobs = real(*args, **kwargs)  # the driver read every file; one task now meets a broken one
        return [*jobs[:-1], dataclasses.replace(jobs[-1], files=((0, str(bad)),))]

    monkeypatch.setattr(relake.diff.shuffle, "map_jobs", with_a_broken_file)
    lake = tmp_path / "lake"
    r = _invoke(lake, "diff", f"{v1}/", f"{v2}/", "--map", "URL=url", "--engine", "ray", "--out",
                tmp_path / "d.parquet")
    assert r.exit_code == 2
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "shuffle_map" in errors[0] and "Traceback" not in r.stderr, r.stderr
    assert _no_scratch(lake) and not (tmp_path / "d.parquet").exists()


def test_ray_check_report_equals_local(ray_engine: RayEngine, copy_case: Planted, tmp_path: Path) -> None:
    lake = tmp_path / "no-lake"
    text: dict[str, list[str]] = {}
    data: dict[str, dict[str, Any]] = {}
    for engine in ("local", "ray"):
        base = ["check", copy_case.copy, "--manifest", copy_case.manifest, "--engine", engine]
        r = _invoke(lake, *base)
        assert r.exit_code == 1, r.stderr  # rows are affected
        text[engine] = [line for line in r.stdout.splitlines() if "time" not in line]
        r = _invoke(lake, *base, "--json")
        assert r.exit_code == 1, r.stderr
        data[engine] = json.loads(r.stdout)
    assert data["local"]["affected"] == len(copy_case.expected) > 0
    assert _without_time(data["ray"]) == _without_time(data["local"])
    assert text["ray"] == text["local"] and len(text["local"]) > 5


def test_engine_options_of_diff_and_check_are_validated(copy_case: Planted, tmp_path: Path) -> None:
    v1, v2 = _pair(tmp_path)
    lake = tmp_path / "lake"
    r = _invoke(lake, "diff", f"{v1}/", f"{v2}/", "--ray-address", "ray://head:10001")
    assert r.exit_code == 2 and "Error: --ray-address only applies with --engine ray" in r.stderr
    r = _invoke(lake, "check", copy_case.copy, "--manifest", copy_case.manifest, "--ray-address", "auto")
    assert r.exit_code == 2 and "Error: --ray-address only applies with --engine ray" in r.stderr
    r = _invoke(lake, "diff", f"{v1}/", f"{v2}/", "--keyless", "--engine", "ray")
    assert r.exit_code == 2 and "Error: a keyless diff runs on the local engine only" in r.stderr
    with pytest.raises(InputError, match="a keyless diff runs on the local engine only"):
        diff_versions(Lake.at(lake), f"{v1}/", f"{v2}/", keyless=True, engine=LocalEngine(1))


def test_keyed_diff_on_local_threads_equals_the_single_join(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The map/reduce path on the local engine (no Ray): same summary and bytes as the in-process join, with map
    tasks of one file and of several (A: 30 + 30 rows; B: 19 + 19 + 20 rows, the first two in one task)."""
    monkeypatch.setattr(relake.diff.shuffle, "ROWS_PER_BUCKET", 8)
    monkeypatch.setattr(relake.diff.shuffle, "ROWS_PER_MAP", 40)
    v1, v2 = _pair(tmp_path)
    lake = Lake.at(tmp_path / "lake")
    plain = diff_versions(lake, f"{v1}/", f"{v2}/", maps=["URL=url"], out=str(tmp_path / "a.parquet"))
    mapped = diff_versions(lake, f"{v1}/", f"{v2}/", maps=["URL=url"], out=str(tmp_path / "b.parquet"),
                           engine=LocalEngine(2))
    assert _without_time(mapped.to_dict()) == _without_time(plain.to_dict())
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    assert plain.added == 4 and plain.removed == 6 and plain.changed == 7


@pytest.mark.parametrize(("rows", "groups"), [
    ([], []), ([5], [[0]]), ([10, 10, 10], [[0], [1], [2]]), ([3, 3, 3, 1, 9, 12], [[0, 1, 2, 3], [4], [5]]),
    ([0, 0, 10, 0], [[0, 1, 2, 3]]),
])
def test_map_tasks_take_consecutive_files_up_to_a_row_budget(
    monkeypatch: pytest.MonkeyPatch, rows: list[int], groups: list[list[int]]
) -> None:
    monkeypatch.setattr(relake.diff.shuffle, "ROWS_PER_MAP", 10)
    assert relake.diff.shuffle.file_groups(rows) == groups


def test_each_fetch_task_reads_only_the_keys_of_its_own_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    """The differing keys are routed to the fetch task of the files holding their rows (by the file index the
    shuffle carried): every task finds every key it was given, each key goes to one task, and a task whose
    files hold no differing key does not run."""
    monkeypatch.setattr(relake.diff.shuffle, "ROWS_PER_BUCKET", 8)
    monkeypatch.setattr(relake.diff.shuffle, "ROWS_PER_MAP", 20)  # A: 30 + 30 rows, 2 tasks; B: 3 files, 3 tasks
    seen: list[tuple[str, int, int]] = []
    real = relake.diff.shuffle.shuffle_fetch

    def recording(job: relake.diff.shuffle.FetchJob) -> int:
        n = real(job)
        seen.append((job.map.side, pq.read_table(job.wanted).num_rows, n))
        return n

    monkeypatch.setattr(relake.diff.shuffle, "shuffle_fetch", recording)
    rows = v1_rows()
    write_split(pa.Table.from_pylist(rows, schema=V1_SCHEMA), tmp_path / "a", 2)
    edited = [dict(r, TEXT="edited") if i in (3, 7) else r for i, r in enumerate(rows) if i != 12]  # A file 0
    write_split(pa.Table.from_pylist(edited, schema=V1_SCHEMA), tmp_path / "b", 3)
    lake = Lake.at(tmp_path / "lake")
    plain = diff_versions(lake, f"{tmp_path / 'a'}/", f"{tmp_path / 'b'}/")
    mapped = diff_versions(lake, f"{tmp_path / 'a'}/", f"{tmp_path / 'b'}/", engine=LocalEngine(2))
    assert _without_time(mapped.to_dict()) == _without_time(plain.to_dict())
    assert (plain.changed, plain.removed, plain.added) == (2, 1, 0)
    assert all(wanted == found for _, wanted, found in seen)  # each task found every key it was routed
    assert sorted(side for side, _, _ in seen) == ["a", "b"]  # A's file 1 and B's files 1 and 2: no task
    assert sum(w for side, w, _ in seen if side == "a") == 3 and sum(w for side, w, _ in seen if side == "b") == 2


def _dup_rows() -> list[dict[str, Any]]:
    """v1 with 7 ids duplicated 2-4 times (ties included), one NULL id, and a NULL caption duplicated."""
    rows = v1_rows(80)
    for i, copies in ((3, 4), (11, 2), (17, 3), (29, 2), (41, 3), (53, 2), (67, 2)):
        for c in range(1, copies):
            rows.append(dict(rows[i], URL=f"https://dup.example.com/{i}/{c}.jpg", TEXT=f"copy {c} of {i}"))
    rows[70]["SAMPLE_ID"] = None
    return rows


@pytest.mark.parametrize("key", [["--key", "SAMPLE_ID"], ["--key", "URL,TEXT"], ["--key", "WIDTH"]])
def test_engine_key_check_refuses_a_bad_key_with_the_local_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: list[str]
) -> None:
    """The key check runs in the reduce tasks: the same counts and the same 5 examples (most repeated first,
    then by key, across buckets) as the driver's check, and no side is scanned on the driver for it."""
    monkeypatch.setattr(relake.diff.shuffle, "ROWS_PER_BUCKET", 8)  # 190 rows: 32 buckets
    rows = _dup_rows()
    rows[12]["URL"], rows[12]["TEXT"] = rows[4]["URL"], rows[4]["TEXT"]  # URL+TEXT: one duplicated pair
    write_split(pa.Table.from_pylist(rows, schema=V1_SCHEMA), tmp_path / "a", 3)
    write_split(pa.Table.from_pylist(rows[:60], schema=V1_SCHEMA), tmp_path / "b", 2)
    lake = tmp_path / "lake"
    errors = {}
    for engine in ("local", "threads"):
        r = _invoke(lake, "diff", f"{tmp_path / 'a'}/", f"{tmp_path / 'b'}/", *key,
                    *(["--engine", "local"] if engine == "local" else []))
        if engine == "threads":  # the CLI's --engine local has no map/reduce; call it directly
            with pytest.raises(InputError) as info:
                monkeypatch.setattr(relake.diff, "check_key", None)  # never called on an engine
                diff_versions(Lake.at(lake), f"{tmp_path / 'a'}/", f"{tmp_path / 'b'}/", key=key[1].split(","),
                              engine=LocalEngine(2))
            errors[engine] = f"Error: {info.value}"
        else:
            assert r.exit_code == 2
            errors[engine] = r.stderr.strip()
    assert errors["threads"] == errors["local"]
    assert "cannot diff by key" in errors["local"] and "duplicated key value" in errors["local"]
    if key[1] == "SAMPLE_ID":  # 7 duplicated ids on 18 rows, one NULL; examples 1003 (4), 1017, 1041 (3), ...
        assert "7 duplicated key value(s) on 18 rows in A" in errors["local"]
        assert "1 row(s) with a NULL key in A" in errors["local"]
        assert "(e.g. 1003, 1017, 1041, 1011, 1029)" in errors["local"]
    assert _no_scratch(lake)


def test_ray_key_check_refuses_a_bad_key_with_the_local_message(
    ray_engine: RayEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On Ray too: the reduce tasks' counts and examples (written on the workers, summed on the driver) give
    the local error, and the scratch folder is gone."""
    monkeypatch.setattr(relake.diff.shuffle, "ROWS_PER_BUCKET", 16)
    rows = _dup_rows()
    write_split(pa.Table.from_pylist(rows, schema=V1_SCHEMA), tmp_path / "a", 3)
    write_split(pa.Table.from_pylist(rows[:60], schema=V1_SCHEMA), tmp_path / "b", 2)
    lake = tmp_path / "lake"
    errors = {}
    for engine in ("local", "ray"):
        r = _invoke(lake, "diff", f"{tmp_path / 'a'}/", f"{tmp_path / 'b'}/", "--key", "SAMPLE_ID",
                    "--engine", engine)
        assert r.exit_code == 2
        errors[engine] = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
    assert errors["ray"] == errors["local"] and len(errors["local"]) == 1
    assert "(e.g. 1003, 1017, 1041, 1011, 1029)" in errors["local"][0]
    assert _no_scratch(lake)


def test_engine_reports_a_side_a_value_of_a_float_key_as_locally(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """-0.0 in A and 0.0 in B are one key: the change is reported with A's -0.0 on both paths, and a reduce
    task's grouping takes A's value even when it reads B's rows first."""
    monkeypatch.setattr(relake.diff.shuffle, "ROWS_PER_BUCKET", 8)
    schema = pa.schema([("k", pa.float64()), ("v", pa.string())])
    a = [{"k": float(i), "v": f"a{i}"} for i in range(1, 30)] + [{"k": -0.0, "v": "zero"}]
    b = [{"k": 0.0, "v": "changed"}] + [{"k": float(i), "v": f"a{i}"} for i in range(1, 30)]
    write_split(pa.Table.from_pylist(a, schema=schema), tmp_path / "a", 2)
    write_split(pa.Table.from_pylist(b, schema=schema), tmp_path / "b", 2)
    lake = Lake.at(tmp_path / "lake")
    outs = {}
    for name, engine in (("local", None), ("threads", LocalEngine(2))):
        diff_versions(lake, f"{tmp_path / 'a'}/", f"{tmp_path / 'b'}/", key=["k"], engine=engine,
                      out=str(tmp_path / f"{name}.jsonl"))
        outs[name] = (tmp_path / f"{name}.jsonl").read_bytes()
    assert outs["threads"] == outs["local"]
    assert b'"k":-0.0' in outs["local"].replace(b" ", b"")

    con = duckdb.connect()
    con.sql("SELECT * FROM (VALUES (0.0::DOUBLE, 1::UBIGINT, NULL::UBIGINT, 0::UBIGINT, 'b'), "
            "(-0.0::DOUBLE, 2::UBIGINT, 0::UBIGINT, 0::UBIGINT, 'a')) AS t(k, h, f, fi, side)").create_view("parts")
    relake.diff.shuffle.query("diff/shuffle_key_groups").run(con)
    assert [str(x) for x in con.sql("SELECT ka, kb FROM kg").fetchall()[0]] == ["-0.0", "0.0"]

    # B's duplicated 0.0 is shown as B holds it, not as A's -0.0
    write_split(pa.Table.from_pylist([*b, {"k": 0.0, "v": "again"}], schema=schema), tmp_path / "b2", 2)
    errors = []
    for engine in (None, LocalEngine(2)):
        with pytest.raises(InputError) as info:
            diff_versions(lake, f"{tmp_path / 'a'}/", f"{tmp_path / 'b2'}/", key=["k"], engine=engine)
        errors.append(str(info.value))
    assert errors[0] == errors[1] and "in B (e.g. 0.0)" in errors[0]


def test_engine_default_key_falls_back_as_locally(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A's id is duplicated, so the default key is URL + caption, chosen by the engine's check as locally."""
    monkeypatch.setattr(relake.diff.shuffle, "ROWS_PER_BUCKET", 8)
    rows = v1_rows(80)
    rows[5]["URL"] = "https://e.example.com/5.jpg"  # URL + TEXT unique
    rows[7]["SAMPLE_ID"] = rows[6]["SAMPLE_ID"]
    write_split(pa.Table.from_pylist(rows, schema=V1_SCHEMA), tmp_path / "a", 2)
    edited = [dict(r, WIDTH=1) if i in (2, 9, 33) else r for i, r in enumerate(rows) if i != 50]
    write_split(pa.Table.from_pylist(edited, schema=V1_SCHEMA), tmp_path / "b", 3)
    lake = Lake.at(tmp_path / "lake")
    plain = diff_versions(lake, f"{tmp_path / 'a'}/", f"{tmp_path / 'b'}/", out=str(tmp_path / "a.jsonl"))
    mapped = diff_versions(lake, f"{tmp_path / 'a'}/", f"{tmp_path / 'b'}/", out=str(tmp_path / "b.jsonl"),
                           engine=LocalEngine(2))
    assert plain.key == ["URL", "TEXT"]  # not SAMPLE_ID, duplicated in A
    assert (plain.changed, plain.removed, plain.added) == (3, 1, 0)
    assert _without_time(mapped.to_dict()) == _without_time(plain.to_dict())
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


def test_engine_fetches_only_the_differing_rows_and_falls_back_for_interval_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fetch tasks write exactly the rows of the differing keys; an INTERVAL value (which parquet would alter)
    is fetched by the driver instead, with the same result as locally."""
    monkeypatch.setattr(relake.diff.shuffle, "ROWS_PER_BUCKET", 8)
    fetched: list[int] = []
    real = relake.diff.shuffle.shuffle_fetch

    def counting(job: relake.diff.shuffle.FetchJob) -> int:
        n = real(job)
        fetched.append(n)
        return n

    monkeypatch.setattr(relake.diff.shuffle, "shuffle_fetch", counting)
    v1, v2 = _pair(tmp_path)
    lake = Lake.at(tmp_path / "lake")
    plain = diff_versions(lake, f"{v1}/", f"{v2}/", maps=["URL=url"])
    mapped = diff_versions(lake, f"{v1}/", f"{v2}/", maps=["URL=url"], engine=LocalEngine(2))
    assert _without_time(mapped.to_dict()) == _without_time(plain.to_dict())
    # A holds the removed and changed keys' rows, B the added and changed ones
    assert sum(fetched) == (plain.removed + plain.changed) + (plain.added + plain.changed) and len(fetched) == 2

    fetched.clear()
    con = duckdb.connect()
    for side, n in (("a", 40), ("b", 40)):
        (tmp_path / side / "i").mkdir(parents=True)
        con.execute("COPY (SELECT i AS id, to_seconds(i + CASE WHEN $side = 'b' AND i % 7 = 0 THEN 1 ELSE 0 END) "
                    "+ to_microseconds(3) AS wait FROM range($n) t(i)) TO $out (FORMAT parquet)",
                    {"side": side, "n": n, "out": str(tmp_path / side / "i" / "x.parquet")})
    plain = diff_versions(lake, f"{tmp_path / 'a' / 'i'}/", f"{tmp_path / 'b' / 'i'}/", key=["id"],
                          out=str(tmp_path / "i1.jsonl"))
    mapped = diff_versions(lake, f"{tmp_path / 'a' / 'i'}/", f"{tmp_path / 'b' / 'i'}/", key=["id"],
                           out=str(tmp_path / "i2.jsonl"), engine=LocalEngine(2))
    assert plain.changed == 6 and fetched == []
    assert _without_time(mapped.to_dict()) == _without_time(plain.to_dict())
    assert (tmp_path / "i1.jsonl").read_bytes() == (tmp_path / "i2.jsonl").read_bytes()


def test_map_tasks_match_column_names_case_insensitively_as_the_driver_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """B's second file spells TEXT as text: the driver's union_by_name read matches it to TEXT, and so must each
    map task reading that file alone (else its captions read as NULL and the edit of row 45, NULL before, is
    missed)."""
    monkeypatch.setattr(relake.diff.shuffle, "ROWS_PER_BUCKET", 8)
    rows = v1_rows()
    write_split(pa.Table.from_pylist(rows, schema=V1_SCHEMA), tmp_path / "a", 2)
    edited = [dict(r, TEXT=f"edited {i}") if i in (3, 40, 45) else r for i, r in enumerate(rows)]  # 45: was NULL
    b = write_split(pa.Table.from_pylist(edited, schema=V1_SCHEMA), tmp_path / "b", 2)
    second = pq.read_table(b[1])
    write_table(second.rename_columns(["text" if c == "TEXT" else c for c in second.column_names]), b[1])
    lake = Lake.at(tmp_path / "lake")
    plain = diff_versions(lake, f"{tmp_path / 'a'}/", f"{tmp_path / 'b'}/")
    mapped = diff_versions(lake, f"{tmp_path / 'a'}/", f"{tmp_path / 'b'}/", engine=LocalEngine(2))
    assert (plain.changed, plain.added, plain.removed) == (3, 0, 0)
    assert _without_time(mapped.to_dict()) == _without_time(plain.to_dict())


def test_check_tasks_match_column_names_case_insensitively(copy_case: Planted, tmp_path: Path) -> None:
    """One copy shard spells url as URL: the per-shard check jobs must find it, as the whole-copy read does."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(copy_case.copy, copy)
    shard = sorted(copy.glob("*.parquet"))[-2]  # one with affected rows
    t = pq.read_table(shard)
    write_table(t.rename_columns(["URL" if c == "url" else c for c in t.column_names]), shard)
    lake = Lake.at(tmp_path / "no-lake")
    local = check_copy(lake, copy, copy_case.manifest)
    jobs = check_copy(lake, copy, copy_case.manifest, engine=LocalEngine(2))
    assert local.affected > 0 and any(s.affected for s in local.shards if shard.stem in s.shard)
    def rows(report: Any) -> list[tuple[int, int, str]]:
        return [(r.shard, r.pos, r.how) for r in report.affected_rows]

    assert rows(jobs) == rows(local)


def test_keys_that_parquet_would_change_are_refused_on_the_shuffle(tmp_path: Path) -> None:
    con = duckdb.connect()
    for side in ("a", "b"):
        (tmp_path / side).mkdir()
        con.execute("COPY (SELECT to_milliseconds(i) AS k, i AS v FROM range(5) t(i)) TO $out (FORMAT parquet)",
                    {"out": str(tmp_path / side / "p.parquet")})
    lake = Lake.at(tmp_path / "lake")
    assert diff_versions(lake, f"{tmp_path / 'a'}/", f"{tmp_path / 'b'}/", key=["k"]).changed == 0
    with pytest.raises(InputError, match=r"a key of type INTERVAL does not survive"):
        diff_versions(lake, f"{tmp_path / 'a'}/", f"{tmp_path / 'b'}/", key=["k"], engine=LocalEngine(1))


@pytest.mark.parametrize("order", [("orig", "research"), ("research", "orig")])
def test_ray_diff_withholds_a_sensitive_row_without_a_url_by_its_key(
    ray_engine: RayEngine, tmp_path: Path, order: tuple[str, str]
) -> None:
    """As the local diff (test_withholding): the map tasks withhold rows without a URL by their key."""
    lake, secrets = keyed_world(tmp_path)
    out = tmp_path / "d.jsonl"
    r = CliRunner().invoke(app, ["--lake", str(lake), "diff", *order, "--key", "SAMPLE_ID", "--engine", "ray",
                                 "--json", "--out", str(out)])
    assert r.exit_code == 1, r.stderr
    assert not any(s in r.stdout + r.stderr + out.read_text(encoding="utf-8") for s in secrets)
    data = json.loads(r.stdout)
    assert data["withheld_a"] + data["withheld_b"] == 3
