"""Charts as inline SVG written here: horizontal bar charts, a histogram and the lineage tree.

No plotting library: the report's charts are bars and a tree, a few dozen lines of SVG each, which every browser
renders from disk with no script, no network and nothing to install (altair's offline rendering needs vl-convert,
tens of MB; plotly inlines ~4 MB of JavaScript per report). Every text is escaped; every bar carries its label and
value as ``data-label`` / ``data-value`` and a ``<title>`` tooltip, so a test (or a reader) can check what is drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from relake.page.collect import Count, LineageNode

BAR_HEIGHT = 22
LABEL_WIDTH = 260
PLOT_WIDTH = 420
VALUE_WIDTH = 90


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def bar_chart(bars: Sequence[Count], chart_id: str, unit: str = "rows") -> str:
    """Horizontal bars, one per item, longest first as given; the value written at each bar's end."""
    if not bars:
        return '<p class="empty">none</p>'
    top = max(max(b.rows for b in bars), 1)
    height = BAR_HEIGHT * len(bars) + 8
    width = LABEL_WIDTH + PLOT_WIDTH + VALUE_WIDTH
    parts = [f'<svg class="chart bars" id="{escape(chart_id)}" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">']
    for i, b in enumerate(bars):
        y = 4 + i * BAR_HEIGHT
        length = max(round(PLOT_WIDTH * b.rows / top), 1 if b.rows else 0)
        label, value = escape(b.label), f"{b.rows:,}"
        parts.append(
            f'<g class="bar" data-label="{label}" data-value="{b.rows}"><title>{label}: {value} {escape(unit)}</title>'
            f'<text class="label" x="{LABEL_WIDTH - 8}" y="{y + 15}" text-anchor="end">{escape(_clip(b.label, 38))}'
            f'</text><rect x="{LABEL_WIDTH}" y="{y + 3}" width="{length}" height="{BAR_HEIGHT - 6}" rx="2"/>'
            f'<text class="value" x="{LABEL_WIDTH + length + 6}" y="{y + 15}">{value}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def histogram(bars: Sequence[Count], chart_id: str, unit: str = "rows") -> str:
    """Vertical bars side by side (shards in order), so one that stands out shows; tick labels thinned out."""
    if not bars:
        return '<p class="empty">none</p>'
    plot_h, left, bottom = 180, 70, 34
    step = max(min(36, 720 // len(bars)), 2)
    width, height = left + step * len(bars) + 20, plot_h + bottom + 10
    top = max(max(b.rows for b in bars), 1)
    every = max(1, len(bars) // 20)
    parts = [f'<svg class="chart histogram" id="{escape(chart_id)}" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
             f'<line class="axis" x1="{left}" y1="{plot_h + 5}" x2="{width - 10}" y2="{plot_h + 5}"/>',
             f'<text class="tick" x="{left - 6}" y="{15}" text-anchor="end">{top:,}</text>',
             f'<text class="tick" x="{left - 6}" y="{plot_h + 5}" text-anchor="end">0</text>']
    for i, b in enumerate(bars):
        h = round(plot_h * b.rows / top)
        x = left + i * step
        label, value = escape(b.label), f"{b.rows:,}"
        tick = (f'<text class="tick" x="{x + step / 2:.1f}" y="{plot_h + 20}" text-anchor="middle">{label}</text>'
                if i % every == 0 else "")
        parts.append(f'<g class="bar" data-label="{label}" data-value="{b.rows}"><title>{label}: {value} '
                     f'{escape(unit)}</title><rect x="{x + 1}" y="{plot_h + 5 - h}" width="{max(step - 2, 1)}" '
                     f'height="{h}"/>{tick}</g>')
    parts.append("</svg>")
    return "".join(parts)


def lineage_tree(nodes: Sequence[LineageNode], marks: dict[str, str]) -> str:
    """The versions as a tree, originals at the left and each derived version indented under its parent, one
    per line; ``marks`` names a version's badge ("A", "B")."""
    names = {n.name for n in nodes}
    children: dict[str | None, list[LineageNode]] = {}
    for n in nodes:
        children.setdefault(n.parent if n.parent in names else None, []).append(n)
    order: list[tuple[LineageNode, int]] = []

    def walk(parent: str | None, depth: int) -> None:
        for child in children.get(parent, []):
            if any(o.name == child.name for o, _ in order):
                continue
            order.append((child, depth))
            walk(child.name, depth + 1)

    walk(None, 0)
    row_h, indent, box_w, box_h = 44, 36, 300, 32
    depth_max = max((d for _, d in order), default=0)
    width, height = 20 + depth_max * indent + box_w + 10, row_h * len(order) + 10
    pos = {n.name: (10 + d * indent, 5 + i * row_h) for i, (n, d) in enumerate(order)}
    parts = [f'<svg class="chart tree" id="lineage" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">']
    for n, _ in order:
        if n.parent in pos:
            px, py = pos[n.parent]
            x, y = pos[n.name]
            parts.append(f'<path class="edge" d="M{px + 14},{py + box_h} V{y + box_h / 2} H{x}"/>')
    for n, _ in order:
        x, y = pos[n.name]
        mark = marks.get(n.name, "")
        cls = "node" + (f" mark-{mark.lower()}" if mark else "")
        name = escape(n.name)
        badge = f'<text class="badge" x="{x + box_w - 10}" y="{y + 21}" text-anchor="end">{escape(mark)}</text>' \
            if mark else ""
        rows = "" if n.rows is None else f" · {n.rows:,} rows"
        data = "" if n.rows is None else f' data-rows="{n.rows}"'
        parts.append(f'<g class="{cls}" data-name="{name}"{data}><title>{name}{rows}</title>'
                     f'<rect x="{x}" y="{y}" width="{box_w}" height="{box_h}" rx="6"/>'
                     f'<text x="{x + 10}" y="{y + 21}">{escape(_clip(n.name, 26))}{rows}</text>{badge}</g>')
    parts.append("</svg>")
    return "".join(parts)


__all__ = ["bar_chart", "histogram", "lineage_tree"]
