"""Reports are dataclasses whose JSON comes from their fields (STYLE 15): each report's ``to_dict()`` equals the dict
written out here by hand from a known instance, is JSON as it stands (``json.dumps`` without ``default=``), and the
CLI never hands ``print_json`` a dict or list it built itself."""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import relake.publish
from relake.blocklist import Blocklist, BlocklistListing, BlocklistShow, BlocklistUse
from relake.build import BuildPlan, BuildResult
from relake.cli import app
from relake.copies import CheckReport, CleanReport
from relake.copies.check import AffectedRow, ShardCheck
from relake.copies.perceptual import PdqCheck, PdqMatch, PdqShard
from relake.demo import DemoReport
from relake.diff import DiffSummary
from relake.engine import EngineKind
from relake.explore import Rows
from relake.fingerprint import FingerprintReport
from relake.ingest import IngestReport
from relake.lake import Leftovers
from relake.page.collect import Count, CrowdLine, LineageNode, PairReport, VersionFacts
from relake.publish import Canon, Canonicalised, Listed, Lookup, ManifestSummary, Published
from relake.record import Column, Fingerprint, Roles, Shard, Version, VersionEntry, VersionListing
from relake.remove import Removed
from relake.report import HIDDEN, Report, json_meta, json_value
from relake.synth import Synthesised
from relake.synthcopy import SynthCopyReport
from relake.verify import Verification, VerifyReport

CLI = Path(__file__).resolve().parents[1] / "src" / "relake" / "cli"

FP = Fingerprint("relake-fp/2: test", 3, "ab" * 16, {"00": (2, "11"), "ff": (1, "22")})
VERSION = Version(
    name="v1", kind="derived", parent="orig", roles=Roles("URL", "TEXT", None),
    schema=(Column("URL", "VARCHAR"), Column("TEXT", "VARCHAR")), rows=3, bytes=100,
    shards=(Shard("data/part-00000.parquet", 3, 100, "cd" * 32, (Column("URL", "VARCHAR"),)),),
    fingerprint=FP, tool={"relake": "0"}, sources=("/in/a.parquet",), recipe={"rules": [{"id": "r"}]},
    stats={"removed_rows": 1, "removed_by_rule": {"r": 1}},
)
ROW_URL = AffectedRow(0, 4, "000004", "success", None, True, False, False)
ROW_FAILED = AffectedRow(0, 7, None, "failed_to_download", "host said no", False, True, True)


def _check() -> CheckReport:
    hit = ShardCheck("00000", 10, affected=2, url=1, image=1, not_in_release=1, failed=1, keys=[ROW_URL, ROW_FAILED])
    return CheckReport("copy", "webdataset", "m", "rel", "md5", [hit, ShardCheck("00001", 5)], [ROW_URL, ROW_FAILED],
                       notes=["n"], columns={"url": "url", "image": "md5"}, seconds=1.23456)


CHECK_JSON: dict[str, Any] = {
    "copy": "copy", "layout": "webdataset", "manifest": "m", "keep_only": "rel", "image_matching": "md5",
    "columns": {"url": "url", "image": "md5"}, "rows": 15, "affected": 2, "by_url": 1, "by_image": 1, "by_both": 0,
    "not_in_release": 1, "failed_downloads": 1, "by_url_alone": 0, "by_url_caption_alone": 0, "shards_affected": 1,
    "shards": [{"shard": "00000", "rows": 10, "affected": 2, "url": 1, "image": 1, "both": 0, "not_in_release": 1,
                "failed": 1, "keys": [{"key": "000004", "pos": 4, "how": "url", "failed": False},
                                      {"key": None, "pos": 7, "how": "image+not-in-release", "failed": True}],
                "orphans": 0, "orphan_keys": [], "misplaced": []}],
    "notes": ["n"], "seconds": 1.235, "orphans": 0, "manifest_format": None,
}


def _diff() -> DiffSummary:
    return DiffSummary(
        a={"spec": "a", "kind": "version", "files": 1}, b={"spec": "b", "kind": "files", "files": 2}, mode="keyed",
        key=["URL"], key_note=None, compared=["URL", "TEXT"], rows_a=5, rows_b=4, added=1, removed=2, changed=1,
        unchanged=2, column_changes={"TEXT": 1}, schema={"added": [], "removed": [], "retyped": []},
        removed_by_rule={"r": 2}, removed_by_category={"c": 2}, provenance_note="p", withheld_sensitive=1,
        provenance_rows=2, removed_by_domain=[("example.com", 2), (None, 1)],
        removed_by_shard=[{"rows": 2, "shard": 0, "file": "f"}], buckets={"equal": 3, "scan_skipped": False},
        hints=["h"], out="d.parquet", out_rows=4, seconds=0.12345,
    )


DIFF_JSON: dict[str, Any] = {
    "a": {"spec": "a", "kind": "version", "files": 1}, "b": {"spec": "b", "kind": "files", "files": 2},
    "mode": "keyed", "key": ["URL"], "key_note": None, "identical": False,
    "rows": {"a": 5, "b": 4, "added": 1, "removed": 2, "changed": 1, "unchanged": 2},
    "compared_columns": ["URL", "TEXT"], "column_changes": {"TEXT": 1},
    "schema": {"added": [], "removed": [], "retyped": []}, "removed_by_rule": {"r": 2},
    "removed_by_category": {"c": 2}, "provenance_note": "p", "withheld_sensitive": 1, "withheld_a": 0, "withheld_b": 0,
    "removed_by_domain": [{"host": "example.com", "rows": 2}, {"host": None, "rows": 1}],
    "removed_by_shard": [{"rows": 2, "shard": 0, "file": "f"}], "buckets": {"equal": 3, "scan_skipped": False},
    "hints": ["h"], "unchecked": [], "out": "d.parquet", "out_rows": 4, "seconds": 0.123, "examples": [],
}

BLOCKLIST = Blocklist("bl", "url-sha256", "raw", "list.txt", 5, 3, 1, 1, "ef" * 32, Path("/lake/bl/entries.parquet"))
BLOCKLIST_JSON = {"name": "bl", "kind": "url-sha256", "hash_of": "raw", "raw_entries": 5, "unique_entries": 3,
                  "skipped": 1, "empty": 1, "sha256": "ef" * 32, "invisible_stripped": 0, "revision": 1}
USE = BlocklistUse("v1", "r", 1, "ef" * 32, 3, 2, 7)
USE_JSON = {"version": "v1", "rule": "r", "revision": 1, "sha256": "ef" * 32, "entries": 3, "matched_entries": 2,
            "removed_rows": 7}
CANON = Canon("HTTP://A/b", "http://a/b", "02" * 32)
CANON_JSON = {"url": "HTTP://A/b", "canonical": "http://a/b", "url_sha256": "02" * 32}
VERSION_JSON: dict[str, Any] = {
    "name": "v1", "kind": "derived", "parent": "orig", "roles": {"url": "URL", "caption": "TEXT", "id": None},
    "schema": [{"name": "URL", "type": "VARCHAR"}, {"name": "TEXT", "type": "VARCHAR"}], "rows": 3, "bytes": 100,
    "shards": [{"path": "data/part-00000.parquet", "rows": 3, "bytes": 100, "sha256": "cd" * 32,
                "schema": [{"name": "URL", "type": "VARCHAR"}]}],
    "fingerprint": {"algorithm": "relake-fp/2: test", "rows": 3, "value": "ab" * 16},
    "tool": {"relake": "0"}, "sources": ["/in/a.parquet"], "storage": "lake", "recipe": {"rules": [{"id": "r"}]},
    "stats": {"removed_rows": 1, "removed_by_rule": {"r": 1}}, "files": [],
}
VERSION_ENTRY_JSON = {"name": "v1", "parent": "orig", "kind": "derived", "rows": 3, "shards": 1,
                      "fingerprint": "ab" * 16, "storage": "lake"}  # issue 17: versions shows the storage
VERIFY_BAD = VerifyReport("v2", 1, 2, ["shard changed"], ["note"])
VERIFY_BAD_JSON = {"target": "v2", "shards": 1, "rows": 2, "problems": ["shard changed"], "notes": ["note"],
                   "ok": False}

FACTS = VersionFacts("v1", "derived", "orig", 3, 100, 1, "ab" * 16, "relake-fp/2: test", "ef" * 32, {"relake": "0"})
FACTS_JSON: dict[str, Any] = {"name": "v1", "kind": "derived", "parent": "orig", "rows": 3, "bytes": 100, "shards": 1,
                              "fingerprint": "ab" * 16, "fingerprint_algorithm": "relake-fp/2: test",
                              "spec_sha256": "ef" * 32, "tool": {"relake": "0"}}
CROWD = CrowdLine("safety", 10, 5, sensitive=1, benign=4, explained=5)
CROWD_JSON = {"category": "safety", "hashes": 10, "sensitive": 1, "benign": 4, "explained": 5, "hidden": False}


def _pair() -> PairReport:
    return PairReport(FACTS, FACTS, False, "derived", [LineageNode("orig", None, 4), LineageNode("v1", "orig", None)],
                      rows_a=4, rows_b=3, removed=1, sensitive=1, removed_by_rule=[Count("v1: r", 1)],
                      removed_by_category=[Count("safety", 1)], removed_by_shard=[Count("0", 1)],
                      top_domains=[Count("a.example", 1)], min_crowd=5, crowd=[CROWD], notes=["n"])


PAIR_JSON: dict[str, Any] = {
    "a": FACTS_JSON, "b": FACTS_JSON, "public": False, "relation": "derived",
    "lineage": [{"name": "orig", "parent": None, "rows": 4}, {"name": "v1", "parent": "orig", "rows": None}],
    "rows": {"a": 4, "b": 3, "added": 0, "removed": 1, "changed": 0, "sensitive": 1},
    "removed_by_rule": [{"label": "v1: r", "rows": 1}], "removed_by_category": [{"label": "safety", "rows": 1}],
    "removed_by_shard": [{"label": "0", "rows": 1}], "top_domains": [{"label": "a.example", "rows": 1}],
    "changed_columns": [], "schema": {}, "examples": [], "min_crowd": 5, "crowd": [CROWD_JSON], "notes": ["n"],
}
PDQ_MATCH = PdqMatch("00000", 3, "000003", 12, 93, True)
PDQ_MATCH_JSON = {"shard": "00000", "pos": 3, "key": "000003", "distance": 12, "quality": 93, "trimmed": True}
PDQ_SHARD_JSON: dict[str, Any] = {
    "matches": [PDQ_MATCH_JSON], "hashed": 9, "trimmed": 2, "low_quality": 1, "undecodable": 1, "missing": 0,
    "low_quality_keys": ["000001"], "undecodable_keys": ["000002"], "missing_keys": []}


def _pdq_shard() -> PdqShard:
    return PdqShard([PDQ_MATCH], 9, 2, 1, 1, 0, ["000001"], ["000002"], [])


def _pdq_check() -> PdqCheck:
    check = PdqCheck(blocklist="partner", entries=1000, max_distance=31, min_quality=50)
    check.add(_pdq_shard())
    return check


# every report class -> (a known instance, its JSON written out by hand)
CASES: dict[type[Report], tuple[Report, Any]] = {
    DiffSummary: (_diff(), DIFF_JSON),
    CheckReport: (_check(), CHECK_JSON),
    ShardCheck: (ShardCheck("00001", 5), {"shard": "00001", "rows": 5, "affected": 0, "url": 0, "image": 0,
                                          "both": 0, "not_in_release": 0, "failed": 0, "keys": [],
                                          "orphans": 0, "orphan_keys": [], "misplaced": []}),
    AffectedRow: (ROW_URL, {"pos": 4, "key": "000004", "how": "url", "failed": False}),
    PdqMatch: (PDQ_MATCH, PDQ_MATCH_JSON),
    PdqShard: (_pdq_shard(), PDQ_SHARD_JSON),
    PdqCheck: (_pdq_check(), {**PDQ_SHARD_JSON, "blocklist": "partner", "entries": 1000, "max_distance": 31,
                              "min_quality": 50, "matched": 1}),
    CleanReport: (
        CleanReport("copy", "out", False, "parquet", 2, rewritten=1, copied=1, files=3, resumed=0, removed_rows=2,
                    removed_members=0, failed_removed=1, tar_bytes_in=0, tar_bytes_out=0, stale=["x.idx"],
                    seconds=2.0004, check=_check()),
        {"copy": "copy", "out": "out", "dry_run": False, "layout": "parquet", "shards": 2, "rewritten": 1,
         "copied": 1, "files": 3, "resumed": 0, "removed_rows": 2, "removed_members": 0, "failed_removed": 1,
         "tar_bytes_in": 0, "tar_bytes_out": 0, "orphans_kept": 0, "orphans_dropped": 0, "verified": 0,
         "stale": ["x.idx"], "seconds": 2.0, "affected": CHECK_JSON},
    ),
    FingerprintReport: (
        FingerprintReport("v1", "version", "computed", FP, True, 0.5, buckets=FP.buckets),
        {"target": "v1", "kind": "version", "source": "computed", "algorithm": "relake-fp/2: test", "rows": 3,
         "fingerprint": "ab" * 16, "manifest_matches": True, "seconds": 0.5,
         "buckets": {"00": {"rows": 2, "value": "11"}, "ff": {"rows": 1, "value": "22"}}},
    ),
    VerifyReport: (VERIFY_BAD, VERIFY_BAD_JSON),
    Verification: (Verification([VerifyReport("v1", 1, 3), VERIFY_BAD]),
                   [{"target": "v1", "shards": 1, "rows": 3, "problems": [], "notes": [], "ok": True},
                    VERIFY_BAD_JSON]),
    Blocklist: (BLOCKLIST, BLOCKLIST_JSON),
    BlocklistListing: (BlocklistListing([BLOCKLIST]), [BLOCKLIST_JSON]),
    BuildResult: (BuildResult(VERSION, 1, {"r": 1, "bl": 0}, {"c": 1}, {"bl": 2}, 3.14159),
                  {"name": "v1", "base": "orig", "rows": 3, "removed": 1, "by_rule": {"r": 1, "bl": 0},
                   "by_category": {"c": 1}, "unmatched_entries": {"bl": 2}, "fingerprint": "ab" * 16,
                   "seconds": 3.142}),
    BuildPlan: (BuildPlan("v1", "orig", 3, 1, {"r": 1, "bl": 0}, {"c": 1}, {"bl": 2}, "reused", 3.14159),
                {"name": "v1", "base": "orig", "rows": 3, "removed": 1, "by_rule": {"r": 1, "bl": 0},
                 "by_category": {"c": 1}, "unmatched_entries": {"bl": 2}, "url_cache": "reused", "seconds": 3.142,
                 "kept": 2}),
    IngestReport: (IngestReport("v1", 3, 1, 100, "ab" * 16, 0.0004, VERSION),
                   {"name": "v1", "rows": 3, "shards": 1, "bytes": 100, "fingerprint": "ab" * 16, "seconds": 0.0}),
    SynthCopyReport: (SynthCopyReport(Path("/tmp/copy"), "webdataset", "md5", 10, 1, 9, 1, 1234),
                      {"out": "/tmp/copy", "format": "webdataset", "hash": "md5", "rows": 10, "shards": 1,
                       "successes": 9, "failures": 1, "bytes": 1234, "notes": []}),
    ManifestSummary: (ManifestSummary(Path("/tmp/m"), 2, {"quality": 2}, False, None, "orig", "v2", ("v1",),
                                      {"url": 1, "caption": 1}, 0),
                      {"out": "/tmp/m", "rows": 2, "counts": {"quality": 2}, "private": False, "image_hash": None,
                       "ancestor": "orig", "descendant": "v2", "between": ["v1"], "levels": {"url": 1, "caption": 1},
                       "kept_matched": 0}),
    Listed: (Listed("http://a/", "01" * 32, "quality", True),
             {"url": "http://a/", "url_sha256": "01" * 32, "listed": True, "category": "quality",
              "some_rows_only": True}),
    Lookup: (Lookup([Listed("http://a/", "01" * 32, None)]),
             [{"url": "http://a/", "url_sha256": "01" * 32, "listed": False, "category": None,
               "some_rows_only": False}]),
    BlocklistUse: (USE, USE_JSON),
    BlocklistShow: (BlocklistShow("bl", [BLOCKLIST], [USE]),
                    {"name": "bl", "revisions": [BLOCKLIST_JSON], "used_by": [USE_JSON]}),
    Canon: (CANON, CANON_JSON),
    Canonicalised: (Canonicalised([CANON]), [CANON_JSON]),
    Rows: (Rows((Column("n", "BIGINT"),), [(1,), (None,)], True, 2, ("v1",)),
           {"columns": [{"name": "n", "type": "BIGINT"}], "rows": [[1], [None]], "truncated": True, "limit": 2,
            "count": 2}),
    Synthesised: (Synthesised(Path("/tmp/s"), 10, [Path("/tmp/s/p0.parquet")], 0.12345),
                  {"out": "/tmp/s", "rows": 10, "paths": ["/tmp/s/p0.parquet"], "seconds": 0.123, "shards": 1}),
    Published: (Published("v1", Path("/tmp/r"), "orig", 3, 1),
                {"name": "v1", "out": "/tmp/r", "since": "orig", "rows": 3, "shards": 1}),
    Leftovers: (Leftovers(Path("/lake"), [Path("/lake/staging/x")], True),
                {"root": "/lake", "removed": ["/lake/staging/x"], "dry_run": True}),
    Removed: (Removed("v1", Path("/lake/versions/v1"), 2, 300),
              {"name": "v1", "folder": "/lake/versions/v1", "files": 2, "bytes": 300, "dry_run": False}),
    DemoReport: (DemoReport(Path("/lake"), ["a"], Path("/r"), Path("/c"), Path("/cc"), 3, 0, 1.0004, ["relake x"]),
                 {"lake": "/lake", "versions": ["a"], "release": "/r", "copy": "/c", "cleaned": "/cc", "affected": 3,
                  "affected_after_clean": 0, "seconds": 1.0, "try_next": ["relake x"]}),
    Version: (VERSION, VERSION_JSON),
    VersionEntry: (VersionEntry.of(VERSION), VERSION_ENTRY_JSON),
    VersionListing: (VersionListing(Path("/lake"), [VersionEntry.of(VERSION)], [("bad", "corrupt")]),
                     [VERSION_ENTRY_JSON]),
    VersionFacts: (FACTS, FACTS_JSON),
    LineageNode: (LineageNode("orig", None, 4), {"name": "orig", "parent": None, "rows": 4}),
    Count: (Count("a.example", 2), {"label": "a.example", "rows": 2}),
    CrowdLine: (CROWD, CROWD_JSON),
    PairReport: (_pair(), PAIR_JSON),
}


def _report_classes() -> set[type[Report]]:
    found: set[type[Report]] = set()
    todo = list(Report.__subclasses__())
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("relake."):
            found.add(cls)
        todo += cls.__subclasses__()
    return found


def test_every_report_class_has_a_case() -> None:
    assert _report_classes() <= set(CASES), sorted(c.__name__ for c in _report_classes() - set(CASES))


@pytest.mark.parametrize("cls", list(CASES), ids=lambda c: c.__name__)
def test_a_report_json_is_its_fields(cls: type[Report]) -> None:
    """The JSON equals the dict written by hand (keys and values; order is not part of it) and is JSON as is."""
    report, expected = CASES[cls]
    assert isinstance(report, cls)
    data = report.to_dict()
    assert data == expected
    assert json.loads(json.dumps(data)) == expected  # no default=: paths, enums and tuples already converted


def test_json_meta_hides_renames_nests_converts_and_omits() -> None:
    @dataclasses.dataclass
    class Example(Report):
        json_computed = ("total",)

        a: int = dataclasses.field(metadata=json_meta(within="pair", name="first"))
        b: int = dataclasses.field(metadata=json_meta(within="pair"))
        secret: str = dataclasses.field(metadata=HIDDEN)
        where: Path = dataclasses.field(metadata=json_meta(name="path"))
        maybe: int | None = dataclasses.field(default=None, metadata=json_meta(omit_none=True))
        seconds: float = dataclasses.field(default=0.0, metadata=json_meta(convert=lambda s: round(s, 1)))

        @property
        def total(self) -> int:
            return self.a + self.b

    e = Example(1, 2, "s3cret", Path("/x"), seconds=1.26)
    assert e.to_dict() == {"pair": {"first": 1, "b": 2}, "path": "/x", "seconds": 1.3, "total": 3}
    assert dataclasses.replace(e, maybe=0).to_dict()["maybe"] == 0
    assert json_value({Path("k"): (1, Path("v"))}) == {"k": [1, "v"]}
    assert json_value([EngineKind.ray]) == ["ray"]  # a StrEnum by its value


def _print_json_arguments() -> list[tuple[str, int, ast.expr]]:
    found = []
    for path in sorted(CLI.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "print_json":
                assert len(node.args) == 1 and not node.keywords, f"{path.name}:{node.lineno}"
                found.append((path.name, node.lineno, node.args[0]))
    return found


def _derived(arg: ast.expr) -> bool:
    """Whether a ``print_json`` argument is ``<something>.to_dict()``."""
    return (isinstance(arg, ast.Call) and isinstance(arg.func, ast.Attribute) and arg.func.attr == "to_dict"
            and not arg.args and not arg.keywords)


def test_the_cli_prints_only_json_derived_from_a_report() -> None:
    """Every ``print_json(x)`` in ``cli/`` prints ``report.to_dict()``: never a dict, list or comprehension built
    there, nor ``asdict`` or anything else."""
    calls = _print_json_arguments()
    assert len(calls) >= 14  # every --json command
    hand_built = [f"{name}:{line}" for name, line, arg in calls if not _derived(arg)]
    assert hand_built == []


def test_the_cli_check_catches_a_hand_built_dict() -> None:
    """The check above fails on the shapes it forbids, and passes the one it wants."""
    def argument(source: str) -> ast.expr:
        call = ast.parse(source, mode="eval").body
        assert isinstance(call, ast.Call)
        return call.args[0]

    for source in ('console.print_json({"a": 1})', "console.print_json([r.to_dict() for r in rs])",
                   "console.print_json(asdict(r))", "console.print_json(r.to_dict() | {'ok': r.ok})",
                   "console.print_json(r.to_dict(buckets=True))"):
        assert not _derived(argument(source)), source
    assert _derived(argument("console.print_json(report.to_dict())"))


def test_a_new_report_field_shows_up_in_json_without_touching_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Adding a field to a report dataclass adds it to the command's --json: here a subclass of ManifestSummary with
    one more field, returned by the library call ``relake manifest`` makes, comes out through the unchanged CLI."""
    Extended = dataclasses.make_dataclass(
        "Extended", [("new_field", int, dataclasses.field(default=42))], bases=(ManifestSummary,), frozen=True)

    def write_manifest(*args: object, **kwargs: object) -> ManifestSummary:
        return Extended(tmp_path / "m", 2, {"quality": 2}, False, None)  # type: ignore[no-any-return]

    monkeypatch.setattr(relake.publish, "write_manifest", write_manifest)  # the command imports it when it runs
    r = CliRunner().invoke(app, ["--lake", str(tmp_path / "lake"), "manifest", "a", "b", "--out",
                                 str(tmp_path / "m"), "--json"])
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout) == {"out": str(tmp_path / "m"), "rows": 2, "counts": {"quality": 2},
                                    "private": False, "image_hash": None, "ancestor": "", "descendant": "",
                                    "between": [], "levels": {}, "kept_matched": 0, "new_field": 42}
