"""A ``PairReport`` as one self-contained HTML file: styles and SVG charts inline, no script, and a Content Security
Policy that lets the page load nothing at all (it opens from disk with no network, and cannot reach one)."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

from relake import __version__
from relake.lake import replacing
from relake.page.charts import bar_chart, histogram, lineage_tree
from relake.page.collect import PairReport, VersionFacts

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto; max-width: 1100px;
       color: #1d2330; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 2px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #dde;
     padding-bottom: 4px; }
.sub { color: #5a6275; margin-top: 0; }
.cards { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
.card { border: 1px solid #dde; border-radius: 8px; padding: 10px 14px; }
.card h3 { margin: 0 0 6px; font-size: 15px; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
td, th { padding: 3px 10px 3px 0; text-align: left; vertical-align: top; }
td.n, th.n { text-align: right; }
code, .mono { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; word-break: break-all; }
.totals { display: flex; gap: 12px; flex-wrap: wrap; }
.total { border: 1px solid #dde; border-radius: 8px; padding: 8px 14px; min-width: 120px; }
.total .n { font-size: 20px; font-weight: 600; display: block; }
.chart text { font-size: 12px; fill: #1d2330; } .chart .tick { fill: #5a6275; font-size: 11px; }
.bars rect { fill: #3b6fd8; } .histogram rect { fill: #d8643b; } .axis { stroke: #99a; }
.tree rect { fill: #f3f5fa; stroke: #99a; } .tree .edge { fill: none; stroke: #99a; stroke-width: 1.5; }
.tree .mark-a rect { fill: #e4ecff; stroke: #3b6fd8; } .tree .mark-b rect { fill: #e5f6e8; stroke: #2f9a4b; }
.tree .badge { font-weight: 700; }
.empty, .note { color: #5a6275; } .bad { color: #b3261e; font-weight: 600; } .good { color: #2f7a3b; }
.examples td { max-width: 360px; overflow-wrap: anywhere; }
footer { margin-top: 32px; color: #5a6275; font-size: 12px; }
"""


def write_report(report: PairReport, out: Path) -> Path:
    """Write ``report`` as HTML to ``out`` (a temp file beside it, then one rename); returns ``out``."""
    with replacing(out) as tmp:
        tmp.write_text(render_html(report), encoding="utf-8")
    return out


def render_html(r: PairReport) -> str:
    """The whole page."""
    kind = "public report" if r.public else "report"
    body = [f"<h1>{escape(r.a.name)} → {escape(r.b.name)}</h1>",
            f'<p class="sub">relake {kind}: {_relation(r)}</p>',
            _totals(r),
            "<h2>Versions</h2>", f'<div class="cards">{_card(r.a, "A")}{_card(r.b, "B")}</div>',
            "<h2>Lineage</h2>", lineage_tree(r.lineage, {r.a.name: "A", r.b.name: "B"})]
    if r.relation == "derived" or r.removed_by_category:
        if r.removed_by_rule:
            body += ["<h2>Removed rows by rule</h2>", bar_chart(r.removed_by_rule, "by-rule")]
        body += [f"<h2>Removed {r.category_unit} by category</h2>",
                 bar_chart(r.removed_by_category, "by-category", r.category_unit)]
    if r.removed_by_shard:
        body += ["<h2>Removed rows by shard of A</h2>", histogram(r.removed_by_shard, "by-shard")]
    if r.top_domains:
        body += ["<h2>Top hosts of removed rows</h2>", bar_chart(r.top_domains, "by-domain"),
                 '<p class="note">Rows a sensitive rule removed (and rows sharing their URL) are left out.</p>']
    if r.relation != "derived":
        body += ["<h2>Changed columns</h2>", bar_chart(r.changed_columns, "by-column"), _schema(r.schema)]
        if r.examples:
            body += ["<h2>Example rows</h2>", _examples(r.examples)]
    if r.crowd:
        body += ["<h2>The crowd rule</h2>", _crowd(r)]
    if r.notes:
        body += ["<h2>Notes</h2>", "<ul>" + "".join(f"<li>{escape(n)}</li>" for n in r.notes) + "</ul>"]
    body.append(f"<footer>Written by relake {escape(__version__)}. {_disclosure(r)}</footer>")
    title = f"relake {kind}: {r.a.name} → {r.b.name}"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{STYLE}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def _relation(r: PairReport) -> str:
    if r.relation == "derived":
        return f"{escape(r.b.name)} was built from {escape(r.a.name)}: every row it lacks was removed by a rule."
    if r.relation == "reversed":
        return (f"{escape(r.a.name)} was built from {escape(r.b.name)}, the other way round: the two were compared "
                "row by row (a diff), so the rows the builds removed are listed as added.")
    return (f"{escape(r.b.name)} does not descend from {escape(r.a.name)}: the two were compared row by row "
            "(a diff).")


def _total(label: str, n: int, ident: str) -> str:
    return f'<div class="total"><span class="n" id="{ident}" data-value="{n}">{n:,}</span>{escape(label)}</div>'


def _totals(r: PairReport) -> str:
    items = [_total(f"rows in {r.a.name}", r.rows_a, "rows-a"), _total(f"rows in {r.b.name}", r.rows_b, "rows-b"),
             _total("rows removed", r.removed, "rows-removed")]
    if r.relation != "derived":
        items += [_total("rows added", r.added, "rows-added"), _total("rows changed", r.changed, "rows-changed")]
    if not r.public:
        items.append(_total("removed by sensitive rules (counted, never shown)", r.sensitive, "rows-sensitive"))
    return '<div class="totals">' + "".join(items) + "</div>"


def _card(v: VersionFacts, mark: str) -> str:
    rows: list[tuple[str, str]] = [
        ("kind", v.kind + (f" of {v.parent}" if v.parent else "")), ("rows", f"{v.rows:,}"),
        ("bytes", f"{v.bytes:,}"), ("shards", f"{v.shards:,}"),
        ("fingerprint", v.fingerprint), ("fingerprint recipe", v.fingerprint_algorithm),
        ("spec sha256", v.spec_sha256 or "(none: an original)"),
        ("tools", ", ".join(f"{k} {t}" for k, t in sorted(v.tool.items()))),
    ]
    cells = "".join(f'<tr><th>{escape(k)}</th><td class="{"mono" if k in ("fingerprint", "spec sha256") else ""}">'
                    f"{escape(val)}</td></tr>" for k, val in rows)
    return (f'<div class="card" id="version-{mark.lower()}" data-name="{escape(v.name)}"><h3>{escape(mark)}: '
            f"{escape(v.name)}</h3><table>{cells}</table></div>")


def _schema(schema: dict[str, Any]) -> str:
    rows = [("added", c.get("name", ""), c.get("type", "")) for c in schema.get("added", [])]
    rows += [("removed", c.get("name", ""), c.get("type", "")) for c in schema.get("removed", [])]
    rows += [("retyped", c.get("name", ""), f"{c.get('a')} → {c.get('b')}") for c in schema.get("retyped", [])]
    if not rows:
        return '<p class="note">Same columns on both sides.</p>'
    return ('<table id="schema"><tr><th>change</th><th>column</th><th>type</th></tr>'
            + "".join(f"<tr><td>{escape(str(a))}</td><td>{escape(str(b))}</td><td>{escape(str(c))}</td></tr>"
                      for a, b, c in rows) + "</table>")


def _examples(examples: list[dict[str, Any]]) -> str:
    def text(v: Any) -> str:
        t = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
        return escape(t if len(t) <= 160 else t[:159] + "…")

    def values(e: dict[str, Any]) -> str:
        if e["change"] == "changed":
            return "<br>".join(f"<b>{escape(c)}</b>: {text(b)} → {text(a)}" for c, (b, a) in e["values"].items())
        return "<br>".join(f"<b>{escape(c)}</b>: {text(v)}" for c, v in e["values"].items())

    rows = "".join(f'<tr class="{escape(e["change"])}"><td>{escape(e["change"])}</td>'
                   f'<td class="mono">{text(e["key"])}</td><td>{values(e)}</td></tr>' for e in examples)
    return ('<table class="examples" id="examples"><tr><th>change</th><th>key</th><th>values</th></tr>'
            f"{rows}</table><p class=\"note\">A few rows of each kind of change; rows a sensitive rule of this lake "
            "removed are never shown.</p>")


def _crowd(r: PairReport) -> str:
    k = r.min_crowd or 0
    if r.public:
        rows = "".join(f'<tr data-category="{escape(c.category)}"><td>{escape(c.category)}</td>'
                       f'<td class="n">{c.hashes:,}</td></tr>' for c in r.crowd)
        return (f"<p>relake publishes a release only when every public category holding a removal by a sensitive "
                f"rule also holds at least <b id=\"crowd-k\">{k:,}</b> removals that no public rule explains (K), in "
                "it and in every set operation over the lake's publications (the crowd rule)."
                f'</p><table id="crowd"><tr><th>category</th><th class="n">URL hashes</th></tr>{rows}</table>')
    rows = "".join(
        f'<tr data-category="{escape(c.category)}"><td>{escape(c.category)}</td><td class="n">{c.hashes:,}</td>'
        f'<td class="n">{c.sensitive or 0:,}</td><td class="n">{c.benign or 0:,}</td>'
        f'<td class="n">{c.explained or 0:,}</td><td class="{"good" if c.hidden else "bad"}">'
        f'{"ok" if c.hidden else "too few"}</td></tr>' for c in r.crowd)
    return (f"<p>A sensitive removal is published only inside a crowd of at least <b id=\"crowd-k\">{k:,}</b> URL "
            "hashes (K) of its category that no public rule explains (rows a <code>where</code> or domain rule removed "
            "are recomputed by anyone holding the original: no crowd). The numbers of this pair alone; "
            "<code>relake publish</code> also checks every earlier publication of the lake.</p>"
            '<table id="crowd"><tr><th>category</th><th class="n">URL hashes</th><th class="n">sensitive</th>'
            '<th class="n">crowd</th><th class="n">explained</th><th>K</th></tr>' + rows + "</table>")


def _disclosure(r: PairReport) -> str:
    if r.public:
        return ("A public report: it shows only what the release's public manifest and version.json disclose (no "
                "rule, host, shard, URL or caption of any removed row).")
    return ("A private report: rule ids, hosts and example rows are the maintainer's; publish the --public one. "
            "Rows a sensitive rule removed are counted, never shown.")


__all__ = ["CSP", "render_html", "write_report"]
