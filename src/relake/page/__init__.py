"""``relake report``: two versions as one self-contained HTML page with charts.

``collect`` gathers the numbers into a ``PairReport`` dataclass (``--json`` is its ``to_dict()``), ``charts`` draws
them as inline SVG, ``render`` writes the page. ``relake publish`` writes the public one into every release.
"""

from relake.page.collect import PairReport, report_pair
from relake.page.render import render_html, write_report

__all__ = ["PairReport", "render_html", "report_pair", "write_report"]
