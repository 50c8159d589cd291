"""The crowd rule against the adversary relake assumes, and the lake's private log of what it published.

The adversary holds the original (LAION-5B is out there), every release and public manifest relake published
from this lake, and the spec's public parts. Holding the original, every publication is to them a set of the
original's rows, each with its public category. So a sensitive removal is safe only inside a crowd of at least
K removals that this adversary cannot tell apart from it:

- a removal a **public rule explains** (a non-sensitive ``where`` over the base's columns, or a non-sensitive
  domain rule: both are recomputed from the original) is not crowd: it is subtracted with one line of SQL;
- **no set operation over publications** (difference, intersection, union, per category) may leave a set whose
  sensitive removals have fewer than K benign companions. Every such set is a union of *atoms* (the rows held
  by exactly the same publications), so checking each atom of each category covers them all.

Every public manifest relake writes (``relake manifest``, ``relake publish``; a release's data too, which
reveals the rows removed since the lineage's original) is logged under ``LAKE/private/published/`` (folder
0700, files 0600): the identities of the rows it reveals (url / caption / key hashes), their category and
status. Before anything new is written, the atoms of all logged publications plus the new ones are checked
(``manifest/crowd``). The entry is logged just *before* the final rename and removed if anything fails, so
a crash in between leaves a logged publication that may not exist: it only makes later checks stricter. A
refused publication changes nothing in the lake.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from relake.db import Db, write_parquet_stable
from relake.errors import CrowdError
from relake.lake import Lake, make_private
from relake.record import Version
from relake.sql import query

PRIVATE_DIR = "private"  # LAKE/private: owner-only, never handed out
PUBLISHED_DIR = "published"
EXPLAINING_KINDS = ("domain",)  # blocklist kinds a public rule is: the adversary recomputes them from the original


def private_dir(lake: Lake, *parts: str) -> Path:
    """``LAKE/private/<parts>``, each folder created owner-only (0700)."""
    path = lake.root
    for part in (PRIVATE_DIR, *parts):
        path = path / part
        path.mkdir(mode=0o700, exist_ok=True)
        make_private(path)
    return path


def rule_explains(rule: dict[str, object]) -> bool:
    """A non-sensitive rule whose matches anyone holding the original recomputes: a ``where`` or a domain rule."""
    if rule.get("sensitive"):
        return False
    bl = rule.get("blocklist")
    return rule.get("where") is not None or (isinstance(bl, dict) and bl.get("kind") in EXPLAINING_KINDS)


def bind_rule_kinds(db: Db, chain: Sequence[Version]) -> None:
    """View ``rule_kinds(generation, rule, sensitive, explains)`` from each generation's recorded rules."""
    recs = [(v.name, str(r.get("id")), bool(r.get("sensitive")), rule_explains(r))
            for v in chain for r in v.recipe.get("rules", []) if isinstance(r, dict)]
    table = pa.table({"generation": [g for g, _, _, _ in recs], "rule": [r for _, r, _, _ in recs],
                      "sensitive": pa.array([s for _, _, s, _ in recs], pa.bool_()),
                      "explains": pa.array([e for _, _, _, e in recs], pa.bool_())},
                     schema=pa.schema([("generation", pa.string()), ("rule", pa.string()),
                                       ("sensitive", pa.bool_()), ("explains", pa.bool_())]))
    db.con.from_arrow(table).create_view("rule_kinds", replace=True)


@dataclass
class PublicationLog:
    """The lake's private log of publications. ``add`` computes what a new publication reveals (temp table
    ``pending_rows`` of the connection), ``check`` applies the crowd rule to it and every logged one, ``write``
    logs it (just before the caller's final rename) and ``discard`` removes what ``write`` wrote (on failure)."""

    lake: Lake
    out: Path | None = None  # the folder being published, when it is not the manifest's own (a release)
    pending: dict[str, dict[str, str]] = field(default_factory=dict)
    written: list[Path] = field(default_factory=list)

    @property
    def folder(self) -> Path:
        """The log's folder (not created: reading an empty log changes nothing in the lake)."""
        return self.lake.root / PRIVATE_DIR / PUBLISHED_DIR

    def add(self, db: Db, chain: Sequence[Version], what: str, ancestor: str, descendant: str, out: Path) -> str:
        """What a publication reveals (view ``removed_all`` of ``chain`` bound): the rows removed from
        ``ancestor`` to ``descendant``; ``what`` says how ("manifest", "release data")."""
        bind_rule_kinds(db, chain)
        pub = f"{time.time_ns():020d}-{secrets.token_hex(4)}"
        rel = query("manifest/publication_rows").relation(db.con, pub=pub)
        if self.pending:
            rel.insert_into("pending_rows")
        else:
            rel.create("pending_rows")
        self.pending[pub] = {"id": pub, "what": what, "from": ancestor, "to": descendant,
                             "out": str((self.out or out).absolute())}
        return pub

    def write(self, db: Db) -> None:
        """Log the pending publications: ``LAKE/private/published/<id>.parquet`` and ``.json`` (0600)."""
        folder = private_dir(self.lake, PUBLISHED_DIR)
        for pub, meta in self.pending.items():
            for path in (folder / f"{pub}.parquet", folder / f"{pub}.json"):
                self.written.append(path)
                if path.suffix == ".parquet":
                    write_parquet_stable(query("manifest/pending_rows").relation(db.con, pub=pub).to_arrow_reader(),
                                         path)
                else:
                    path.write_text(json.dumps(meta, sort_keys=True) + "\n", encoding="utf-8")
                make_private(path)

    def discard(self) -> None:
        """Remove the entries ``write`` wrote (what they describe was not published)."""
        for path in self.written:
            path.unlink(missing_ok=True)
        self.written.clear()

    def describe(self, pub: str) -> str:
        if pub in self.pending:
            meta = self.pending[pub]
            return f"this {meta['what']} {meta['from']}..{meta['to']} (to {meta['out']})"
        try:
            meta = json.loads((self.folder / f"{pub}.json").read_text(encoding="utf-8"))
            return f"the {meta['what']} {meta['from']}..{meta['to']} published to {meta['out']}"
        except (OSError, ValueError, KeyError, TypeError):
            return f"publication {pub} (LAKE/{PRIVATE_DIR}/{PUBLISHED_DIR})"

    def check(self, db: Db, k: int) -> None:
        """Refuse (CrowdError) when the logged publications plus the pending ones single out fewer than ``k``."""
        files = sorted(self.folder.glob("*.parquet")) if self.folder.is_dir() else []
        logged = (db.con.read_parquet([db.plain_path(f) for f in files]) if files
                  else db.con.table("pending_rows").limit(0))
        logged.create_view("published_logged", replace=True)
        query("manifest/published_all").run(db.con)
        bad = query("manifest/crowd").rows(db.con, new=list(self.pending), k=k)
        if not bad:
            return
        pubs, cat, sensitive, benign, rules = bad[0]
        holding = [str(p) for p in pubs]
        shared = [str(p) for (p,) in query("manifest/shared_with_earlier").rows(db.con, new=list(self.pending))]
        outside = [p for p in [*self.pending, *shared] if p not in holding]
        earlier = sorted({p for p in [*holding, *outside] if p not in self.pending})
        others = f" (and {len(bad) - 1} more set(s))" if len(bad) > 1 else ""
        rule_names = ", ".join(str(r) for r in rules) or "?"
        if earlier:
            where = "the rows in " + " and in ".join(self.describe(p) for p in holding) + (
                " but not in " + " nor in ".join(self.describe(p) for p in outside) if outside else "")
        else:
            where = self.describe(holding[0])
        head = (f"crowd rule: category {cat!r}{others}: {where} holds {sensitive} removal(s) by sensitive rule(s) "
                f"{rule_names} but only {benign} removal(s) that no public rule explains, fewer than the crowd of "
                f"{k} needed to hide them from someone holding the original and every publication of this lake; "
                "nothing was written")
        if earlier:
            fix = ("; ".join(self.describe(p) for p in earlier) + " cannot be taken back: add non-sensitive "
                   f"removals that no `where` or domain rule explains to category {cat!r} in the generation that "
                   "removed these (so that no difference isolates them), publish from another ancestor so the "
                   "difference with it is not these rows alone, or hold the release")
        else:
            fix = ("Merge the sensitive rule into a larger public category, add a benign filter that no public "
                   "rule explains (a blocklist: rows a `where` or domain rule removed are recomputed from the "
                   "original, so they are no crowd) to its category, or lower the crowd with --min-crowd / "
                   "min_crowd only if the exposure is acceptable")
        raise CrowdError(f"{head}. {fix}")


__all__ = ["EXPLAINING_KINDS", "PRIVATE_DIR", "PUBLISHED_DIR", "PublicationLog", "bind_rule_kinds", "private_dir",
           "rule_explains"]
