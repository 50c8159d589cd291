"""What a report of two versions shows, gathered into one dataclass (``PairReport``; its ``--json`` is ``to_dict()``).

When B was built from A (through any chain of derived versions) every number comes from the versions' records
and the removals each build recorded (``removed.parquet``): no row of the data is read. Otherwise the two are
diffed (``relake.diff``), and the few example rows come from the diff's written rows, where rows a sensitive rule
of this lake removed never are.

A **public** report (``public=True``, the one ``relake publish`` writes into a release) holds only what the
release's public manifest and ``version.json`` already disclose: rows, bytes, shards, fingerprints, the spec's
sha256, tool versions, the lineage, removed URL hashes per public category and the crowd K. No rule ids, hosts,
shards of removals, sensitive counts, URLs, captions or example rows.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from relake.canonical import register_canonical
from relake.crowd import bind_rule_kinds
from relake.db import Db, connect
from relake.diff import DiffSummary, diff_versions
from relake.errors import InputError
from relake.lake import Lake
from relake.lineage import ancestry, bind_removed, crowd_size, lineage
from relake.record import Version
from relake.report import HIDDEN, Report, json_meta
from relake.sql import query

Relation = Literal["derived", "reversed", "unrelated"]
TOP = 10  # hosts listed
EXAMPLES = 3  # example rows per change (added, removed, changed) of an unrelated pair


@dataclass(frozen=True)
class VersionFacts(Report):
    """One version as a report shows it (all of it is in a release's public ``version.json``)."""

    name: str
    kind: str
    parent: str | None
    rows: int
    bytes: int
    shards: int
    fingerprint: str
    fingerprint_algorithm: str
    spec_sha256: str | None
    tool: dict[str, str]

    @staticmethod
    def of(v: Version) -> VersionFacts:
        spec = v.recipe.get("spec_sha256")
        return VersionFacts(v.name, v.kind, v.parent, v.rows, v.bytes, len(v.shards), v.fingerprint.value,
                            v.fingerprint.algorithm, spec if isinstance(spec, str) else None, dict(v.tool))


@dataclass(frozen=True)
class LineageNode(Report):
    """A version of the lineage tree: A, B and their ancestors up to the originals."""

    name: str
    parent: str | None
    rows: int | None  # None: not shown (a version between A and B in a public report)


@dataclass(frozen=True)
class Count(Report):
    """One bar of a chart: a label and its rows (or hashes)."""

    label: str
    rows: int


@dataclass(frozen=True)
class CrowdLine(Report):
    """The crowd rule's numbers for one public category (``queries/report/crowd.sql``); ``sensitive``, ``benign``
    and ``explained`` are None in a public report."""

    json_computed: ClassVar[tuple[str, ...]] = ("hidden",)

    category: str
    hashes: int
    k: int = field(metadata=HIDDEN)
    sensitive: int | None = field(default=None, metadata=json_meta(omit_none=True))
    benign: int | None = field(default=None, metadata=json_meta(omit_none=True))
    explained: int | None = field(default=None, metadata=json_meta(omit_none=True))

    @property
    def hidden(self) -> bool | None:
        """Whether this category's sensitive removals (if any) sit in a crowd of at least K (None: not shown)."""
        if self.sensitive is None or self.benign is None:
            return None
        return self.sensitive == 0 or self.benign >= self.k


@dataclass
class PairReport(Report):
    """What ``relake report A B`` shows: the two versions, their lineage, the rows that differ and why."""

    a: VersionFacts
    b: VersionFacts
    public: bool
    relation: Relation  # "derived": B was built from A; "reversed": A from B; "unrelated": neither (both diffed)
    lineage: list[LineageNode]
    rows_a: int = field(default=0, metadata=json_meta(within="rows", name="a"))
    rows_b: int = field(default=0, metadata=json_meta(within="rows", name="b"))
    added: int = field(default=0, metadata=json_meta(within="rows"))
    removed: int = field(default=0, metadata=json_meta(within="rows"))
    changed: int = field(default=0, metadata=json_meta(within="rows"))
    sensitive: int = field(default=0, metadata=json_meta(within="rows"))  # counted, never shown; 0 when public
    removed_by_rule: list[Count] = field(default_factory=list)  # "generation: rule"; private only
    removed_by_category: list[Count] = field(default_factory=list)  # rows (private) / URL hashes (public)
    removed_by_shard: list[Count] = field(default_factory=list)  # private only
    top_domains: list[Count] = field(default_factory=list)  # private only, sensitive rows left out
    changed_columns: list[Count] = field(default_factory=list)
    schema: dict[str, Any] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)  # private, unrelated pairs only
    min_crowd: int | None = None
    crowd: list[CrowdLine] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def category_unit(self) -> str:
        """What ``removed_by_category`` counts."""
        return "URL hashes" if self.public else "rows"


def report_pair(lake: Lake, a: str, b: str, *, public: bool = False, top: int = TOP) -> PairReport:
    """The report of versions ``a`` and ``b`` of ``lake`` (see the module docstring); ``public`` keeps to what a
    release discloses."""
    va, vb = lake.load_version(a), lake.load_version(b)
    if va.name == vb.name:
        raise InputError(f"{a!r} and {b!r} are the same version; give two versions to compare")
    tree = _tree(lake, va, vb)
    derived = _descends(tree, vb.name, va.name)
    if derived and public:  # the versions the manifest names: A, B and those between (rows of A and B only)
        between = {v.name for v in lineage(lake, va.name, vb.name)}
        tree = [n if n.name in (va.name, vb.name) else LineageNode(n.name, n.parent, None)
                for n in tree if n.name in between or n.name == va.name]
        tree[0] = LineageNode(va.name, None, va.rows)
    relation: Relation = "derived" if derived else "reversed" if _descends(tree, va.name, vb.name) else "unrelated"
    report = PairReport(VersionFacts.of(va), VersionFacts.of(vb), public, relation, tree, rows_a=va.rows,
                        rows_b=vb.rows)
    if derived:
        _removals(lake, report, lineage(lake, va.name, vb.name), top)
    else:
        _differences(lake, report, top)
    return report


def _tree(lake: Lake, va: Version, vb: Version) -> list[LineageNode]:
    """A, B and every ancestor of either, roots first (each version once)."""
    seen: dict[str, LineageNode] = {}
    for v in [*reversed(ancestry(lake, va.name)), *reversed(ancestry(lake, vb.name))]:
        seen.setdefault(v.name, LineageNode(v.name, v.parent, v.rows))
    return list(seen.values())


def _descends(tree: list[LineageNode], name: str, ancestor: str) -> bool:
    parents = {n.name: n.parent for n in tree}
    current: str | None = parents.get(name)
    seen: set[str] = set()
    while current is not None and current not in seen:
        if current == ancestor:
            return True
        seen.add(current)
        current = parents.get(current)
    return False


def _removals(lake: Lake, report: PairReport, chain: list[Version], top: int) -> None:
    """B built from A: the removals the chain's builds recorded, and the crowd rule's numbers."""
    report.removed = report.rows_a - report.rows_b
    report.min_crowd = crowd_size(chain, None)
    with connect(lake) as db:
        bind_removed(db, lake, chain)
        register_canonical(db.con)
        crowd = _crowd(db, chain, report.min_crowd, report.public)
        report.crowd = crowd
        if report.public:
            report.removed_by_category = [Count(c.category, c.hashes) for c in crowd]
            return
        recorded, report.sensitive = (int(x) for x in query("report/removed_totals").rows(db.con)[0])
        if recorded != report.removed:
            report.notes.append(f"the builds recorded {recorded:,} removed rows; the records' row counts differ by "
                                f"{report.removed:,}")
        rows = query("report/removed_by_rule").rows(db.con)
        report.removed_by_rule = [Count(f"{g}: {r}", int(n)) for g, r, n in rows]
        rows = query("report/removed_by_category").rows(db.con)
        report.removed_by_category = [Count(str(c), int(n)) for c, n in rows]
        by_shard = {int(s): int(n) for s, n in query("manifest/removed_by_shard").rows(db.con)}
        shards = max([report.a.shards, *(s + 1 for s in by_shard)])
        report.removed_by_shard = [Count(str(i), by_shard.get(i, 0)) for i in range(shards)]
        query("build/url_host").run(db.con)
        report.top_domains = [Count("(no host)" if h is None else str(h), int(n))
                              for h, n in query("report/removed_domains").rows(db.con, top=top)]


def _crowd(db: Db, chain: list[Version], k: int, public: bool) -> list[CrowdLine]:
    """Per public category, the URL hashes a manifest A → B lists and (private) how many are sensitive, crowd
    (benign, unexplained) and explained by a public rule."""
    bind_rule_kinds(db, chain)
    query("manifest/publication_rows").relation(db.con, pub="report").create_view("revealed", replace=True)
    lines = []
    for cat, hashes, sensitive, benign, explained in query("report/crowd").rows(db.con):
        if public:
            lines.append(CrowdLine(str(cat), int(hashes), k))
        else:
            lines.append(CrowdLine(str(cat), int(hashes), k, int(sensitive), int(benign), int(explained)))
    return lines


def _differences(lake: Lake, report: PairReport, top: int) -> None:
    """Any other pair: a keyed (or keyless) diff, its changed columns and (private) a few example rows."""
    with tempfile.TemporaryDirectory(prefix="relake-report-") as tmp:
        out = Path(tmp) / "diff.parquet"
        s = diff_versions(lake, report.a.name, report.b.name, out=None if report.public else str(out), top=top)
        _from_diff(report, s)
        if not report.public:
            with connect(None) as db:
                db.con.read_parquet(db.plain_path(out), file_row_number=True).create_view("diff_rows")
                report.examples = [_example(str(c), json.loads(str(j)))
                                   for c, j in query("report/examples").rows(db.con, n=EXAMPLES)]


def _example(change: str, row: dict[str, Any]) -> dict[str, Any]:
    """A written diff row made short: its key, the change, and the values it has (added: B's, removed: A's,
    changed: each changed column's [before, after])."""
    key = {c: v for c, v in row.items() if c not in ("change", "changed_columns")
           and not c.startswith(("before_", "after_"))}
    before = {c[7:]: v for c, v in row.items() if c.startswith("before_")}
    after = {c[6:]: v for c, v in row.items() if c.startswith("after_")}
    if change == "changed":
        values: dict[str, Any] = {c: [before.get(c), after.get(c)] for c in row.get("changed_columns") or []}
    else:
        values = after if change == "added" else before
    return {"change": change, "key": key, "values": values}


def _from_diff(report: PairReport, s: DiffSummary) -> None:
    report.rows_a, report.rows_b = s.rows_a, s.rows_b
    report.added, report.removed, report.changed = s.added, s.removed, s.changed
    report.changed_columns = [Count(c, n) for c, n in s.column_changes.items()]
    report.schema = s.schema
    report.notes += [s.key_note] if s.key_note else []
    if report.public:
        return
    report.notes += [s.provenance_note] if s.provenance_note else []
    report.sensitive = s.withheld_sensitive
    report.top_domains = [Count("(no host)" if h is None else h, n) for h, n in s.removed_by_domain]
    report.removed_by_shard = [Count(str(e["shard"]), int(e["rows"])) for e in s.removed_by_shard
                               if e.get("shard") is not None]
    report.removed_by_rule = [Count(r, n) for r, n in (s.removed_by_rule or {}).items()]
    report.removed_by_category = [Count(c, n) for c, n in (s.removed_by_category or {}).items()]
    report.notes += s.hints


__all__ = ["Count", "CrowdLine", "LineageNode", "PairReport", "VersionFacts", "report_pair"]
