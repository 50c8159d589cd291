"""relake report (relake.page): the numbers equal an independent count made with pyarrow from the versions' shard
files, a public report (and the one every release holds) discloses no removed row's URL, caption or host and no
private rule text, example rows of unrelated versions never show a row a sensitive rule removed, errors exit 2,
and the page renders in a real browser (headless Chromium, no network) with every chart drawn.

The world is test_publish's: rows planted with distinctive URLs and captions removed by a sensitive URL blocklist,
a benign key blocklist, a public ``where`` rule, and a second generation."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from helpers import fails, ok, version_shard_tables, write_table
from relake.page.collect import CrowdLine
from test_publish import (
    GEN1,
    GEN2,
    NEEDLES,
    PLANTED,
    SCHEMA,
    SPEC_RESEARCH,
    SPEC_SAFE,
    VERY_T,
    make_lake,
    punsafe,
    rows,
    run,
    url_of,
    write_spec,
)

SENSITIVE_RULE_TEXT = ["partner-urls", "secret-urls", "unsafe-keys", "very-unsafe", "borderline", "punsafe", "unsafe"]
CHANGED_CAPTIONS = (4, 10, 20, 30)  # rows whose caption orig2 changes (4 is planted: a sensitive rule removed it)


@dataclass
class World:
    root: Path
    lake: Path

    def version_rows(self, name: str) -> list[list[dict[str, Any]]]:
        """Each shard's rows of a version, read with pyarrow from its files (a vector version: its root's shards
        without the positions its deletes.parquet lists)."""
        return [t.to_pylist() for t in version_shard_tables(self.lake / "versions" / name)]

    def ids(self, name: str) -> list[set[int]]:
        return [{r["SAMPLE_ID"] for r in shard} for shard in self.version_rows(name)]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("page")
    lake = make_lake(root)
    ok(run(lake, "build", "research", "--spec", write_spec(root, SPEC_RESEARCH, "research")))
    ok(run(lake, "build", "research-safe", "--spec", write_spec(root, SPEC_SAFE, "research-safe")))
    changed = [dict(r, TEXT=f"new caption {r['SAMPLE_ID']}") if r["SAMPLE_ID"] - 10_000 in CHANGED_CAPTIONS else r
               for r in rows()]
    src2 = write_table(pa.Table.from_pylist(changed, schema=SCHEMA), root / "src2" / "part-00000.parquet")
    ok(run(lake, "ingest", "orig2", src2))
    (root / "out").mkdir()
    return World(root, lake)


def independent_removals(w: World, a: str, b: str) -> tuple[list[int], Counter[str]]:
    """Rows of A missing from B, per shard of A, and their hosts (rows of planted URLs left out), from the data."""
    ids_a, ids_b = w.ids(a), set().union(*w.ids(b))
    per_shard = [len(s - ids_b) for s in ids_a]
    removed = set().union(*ids_a) - ids_b
    hosts = Counter(url_of(i - 10_000).split("/")[2] for i in removed if i - 10_000 not in PLANTED)
    return per_shard, hosts


def report_json(w: World, *args: str) -> dict[str, Any]:
    r = ok(run(w.lake, "report", *args, "--json"))
    data: dict[str, Any] = json.loads(r.stdout)
    return data


# --- the numbers ----------------------------------------------------------------------------------------------


def test_numbers_equal_an_independent_count(world: World) -> None:
    data = report_json(world, "orig", "research-safe")
    per_shard, hosts = independent_removals(world, "orig", "research-safe")
    n_a = sum(len(s) for s in world.ids("orig"))
    n_b = sum(len(s) for s in world.ids("research-safe"))
    assert data["relation"] == "derived"
    assert data["rows"] == {"a": n_a, "b": n_b, "added": 0, "removed": n_a - n_b, "changed": 0,
                            "sensitive": len(PLANTED)}
    assert n_a - n_b == len(GEN1) + len(GEN2) == sum(per_shard)
    assert [c["rows"] for c in data["removed_by_shard"]] == per_shard
    very = {i for i in range(len(rows())) if punsafe(i) > VERY_T}
    assert {c["label"]: c["rows"] for c in data["removed_by_rule"]} == {
        "research: partner-urls": len(PLANTED), "research: unsafe": len(GEN1) - len(PLANTED),
        "research: very-unsafe": len(very), "research-safe: borderline": len(GEN2)}
    assert {c["label"]: c["rows"] for c in data["removed_by_category"]} == {"safety": len(GEN1), "nsfw": len(GEN2)}
    shown = {c["label"]: c["rows"] for c in data["top_domains"]}
    assert len(shown) == 10 and all(hosts[h] == n for h, n in shown.items())
    assert min(shown.values()) >= max(n for h, n in hosts.items() if h not in shown)  # the top ones
    assert not any("planted" in h for h in shown)
    assert data["min_crowd"] == 1000
    assert data["crowd"] == [
        {"category": "nsfw", "hashes": len(GEN2), "sensitive": 0, "benign": 0, "explained": len(GEN2),
         "hidden": True},
        {"category": "safety", "hashes": len(GEN1), "sensitive": len(PLANTED),
         "benign": len(GEN1) - len(PLANTED) - len(very), "explained": len(very), "hidden": True},
    ]
    assert [n["name"] for n in data["lineage"]] == ["orig", "research", "research-safe"]


class Page(HTMLParser):
    """The bars (chart id -> label -> value), the totals (id -> value) and the text of a report page."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.charts: dict[str, dict[str, int]] = {}
        self.totals: dict[str, int] = {}
        self.tags: Counter[str] = Counter()
        self._chart = ""
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags[tag] += 1
        if tag == "svg":
            self._chart = a.get("id") or ""
        if tag == "g" and "bar" in (a.get("class") or "").split():
            self.charts.setdefault(self._chart, {})[a.get("data-label") or ""] = int(a.get("data-value") or -1)
        if (a.get("id") or "").startswith("rows-"):
            self.totals[a.get("id") or ""] = int(a.get("data-value") or -1)


def test_the_page_draws_the_json_numbers(world: World) -> None:
    out = world.root / "out" / "private.html"
    ok(run(world.lake, "report", "orig", "research-safe", "--out", out))
    data = report_json(world, "orig", "research-safe")
    page = Page(out.read_text(encoding="utf-8"))
    for chart, key in (("by-rule", "removed_by_rule"), ("by-category", "removed_by_category"),
                       ("by-shard", "removed_by_shard"), ("by-domain", "top_domains")):
        assert page.charts[chart] == {c["label"]: c["rows"] for c in data[key]}, chart
    assert page.totals == {"rows-a": data["rows"]["a"], "rows-b": data["rows"]["b"],
                           "rows-removed": data["rows"]["removed"], "rows-sensitive": len(PLANTED)}
    assert page.tags["script"] == 0 and page.tags["link"] == 0 and page.tags["img"] == 0


# --- nothing private in a public report -------------------------------------------------------------------------


def removed_row_needles() -> list[str]:
    """Every removed row's URL, host and path, and the planted needles (URLs, captions, hosts)."""
    out = set(NEEDLES)
    for i in GEN1 | GEN2:
        url = url_of(i)
        out |= {url, url.split("/")[2], url.split("/", 3)[3]}
    return sorted(out)


def private_traces(html: str) -> list[str]:
    """What of the removed rows (URL, host, path, caption: every caption is 'caption N') and of the private rule
    text (rule ids, blocklist names, the predicate's column) a page shows."""
    low = html.lower()
    found = [n for n in removed_row_needles() if n.lower() in low]
    found += re.findall(r"caption \d+", low)
    found += [t for t in SENSITIVE_RULE_TEXT if re.search(rf"\b{re.escape(t)}\b(?!-inline)", low)]  # not CSP's
    return found


def test_public_report_and_release_report_hold_nothing_private(world: World) -> None:
    out = world.root / "out"
    ok(run(world.lake, "report", "orig", "research-safe", "--public", "--out", out / "public.html"))
    ok(run(world.lake, "publish", "research-safe", out / "release"))
    ok(run(world.lake, "report", "orig", "research-safe", "--out", out / "private-check.html"))
    release = (out / "release" / "report.html").read_text(encoding="utf-8")
    assert "report.html" in (out / "release" / "SHA256SUMS").read_text(encoding="utf-8")
    for html in ((out / "public.html").read_text(encoding="utf-8"), release):
        assert private_traces(html) == []
        page = Page(html)
        assert set(page.charts) == {"by-category"}  # no rule, shard or host chart
        assert "rows-sensitive" not in page.totals
        assert page.charts["by-category"] == {"safety": len(GEN1), "nsfw": len(GEN2)}  # the manifest's hashes
    manifest = json.loads((out / "release" / "manifest" / "manifest.json").read_text(encoding="utf-8"))
    assert Page(release).charts["by-category"] == manifest["counts"]
    # ... and the scan finds what a private report shows
    traces = private_traces((out / "private-check.html").read_text(encoding="utf-8"))
    assert "partner-urls" in traces and "img1.example.com" in traces
    assert not [n for n in NEEDLES if n in traces]  # sensitive rows: counted, never shown


def test_public_json_omits_the_private_numbers(world: World) -> None:
    data = report_json(world, "orig", "research-safe", "--public")
    assert data["removed_by_rule"] == data["removed_by_shard"] == data["top_domains"] == []
    assert data["rows"]["sensitive"] == 0
    assert data["crowd"] == [{"category": "nsfw", "hashes": len(GEN2), "hidden": None},
                             {"category": "safety", "hashes": len(GEN1), "hidden": None}]
    assert [n["rows"] for n in data["lineage"]] == [len(rows()), None, len(rows()) - len(GEN1) - len(GEN2)]
    assert CrowdLine("c", 1, 5, 1, 4, 0).hidden is False and CrowdLine("c", 1, 5, 0, 0, 0).hidden is True


# --- unrelated versions ---------------------------------------------------------------------------------------


def test_unrelated_versions_show_changed_columns_and_examples_but_no_sensitive_row(world: World) -> None:
    out = world.root / "out" / "unrelated.html"
    ok(run(world.lake, "report", "orig", "orig2", "--out", out))
    data = report_json(world, "orig", "orig2")
    assert data["relation"] == "unrelated"
    visible = len(CHANGED_CAPTIONS) - 1  # the planted rows are withheld on both sides
    assert data["rows"]["changed"] == visible and data["rows"]["sensitive"] == 2 * len(PLANTED)  # A's and B's
    assert data["changed_columns"] == [{"label": "TEXT", "rows": visible}]
    assert [(e["change"], e["key"]) for e in data["examples"]] == [
        ("changed", {"SAMPLE_ID": 10_000 + i}) for i in CHANGED_CAPTIONS[1:]]
    assert data["examples"][0]["values"] == {"TEXT": ["caption 10", "new caption 10010"]}
    html = out.read_text(encoding="utf-8")
    assert "new caption 10010" in html and not [n for n in NEEDLES if n.lower() in html.lower()]
    assert Page(html).charts["by-column"] == {"TEXT": visible}
    public = report_json(world, "orig", "orig2", "--public")
    assert public["examples"] == [] and public["rows"]["sensitive"] == 0


def test_a_pair_the_other_way_round_is_diffed_and_withholds_the_sensitive_rows(world: World) -> None:
    r = ok(run(world.lake, "report", "research", "orig", "--json", "--out", world.root / "out" / "reversed.html"))
    data = json.loads(r.stdout)
    assert data["relation"] == "reversed"
    assert data["rows"]["added"] == len(GEN1) and data["rows"]["removed"] == 0  # the sensitive rows counted
    assert data["rows"]["sensitive"] == len(PLANTED)
    assert [e["change"] for e in data["examples"]] == ["added"] * 3
    html = (world.root / "out" / "reversed.html").read_text(encoding="utf-8")
    assert "the other way round" in html
    for text in (r.stdout, html):
        assert not [n for n in NEEDLES if n.lower() in text.lower()]


# --- errors ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "message"), [
    (("orig", "research"), "needs --out FILE"),
    (("orig", "nope", "--out", "r.html"), "no version named 'nope'"),
    (("orig", "orig", "--out", "r.html"), "the same version"),
    (("orig", "research", "--out", "."), "is a folder"),
    (("orig", "research", "--out", "no/such/folder/r.html"), "does not exist"),
])
def test_errors_exit_2_with_one_line(world: World, args: tuple[str, ...], message: str) -> None:
    line = fails(run(world.lake, "report", *args))
    assert message in line, line
    assert not Path("r.html").exists()


# --- in a real browser ----------------------------------------------------------------------------------------


def browser() -> str:
    """The Chromium to drive, or a skip saying why; with RELAKE_REQUIRE_BROWSER=1 (CI) a failure instead."""
    found = next((p for p in (os.environ.get("RELAKE_CHROMIUM"), shutil.which("chromium"),
                              shutil.which("chromium-browser")) if p and Path(p).is_file()), None)
    reason = None
    if found is None:
        reason = "no Chromium found (apt-get install -y chromium, or set RELAKE_CHROMIUM)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "playwright is not installed (pip install -e '.[test]')"
    if reason is not None:
        if os.environ.get("RELAKE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"RELAKE_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    assert found is not None
    return found


def test_without_a_browser_the_tests_skip_or_with_require_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's test command skips the browser tests with a reason; CI (RELAKE_REQUIRE_BROWSER=1) fails."""
    monkeypatch.setenv("PATH", "")
    monkeypatch.setenv("RELAKE_CHROMIUM", "/no/such/chromium")
    monkeypatch.delenv("RELAKE_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no Chromium found"):
        browser()
    monkeypatch.setenv("RELAKE_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="RELAKE_REQUIRE_BROWSER=1 but no Chromium found"):
        browser()


def render_in_browser(chromium: str, html: Path, shot: Path) -> dict[str, Any]:
    """Open ``html`` offline in headless Chromium; every non-file request is refused and recorded. Returns the
    console errors, page errors, refused requests, and per chart its bars' labels, values and drawn widths."""
    from playwright.sync_api import sync_playwright

    seen: dict[str, Any] = {"console": [], "errors": [], "requests": []}
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            context = b.new_context(offline=True, viewport={"width": 1200, "height": 900})
            page = context.new_page()
            page.on("console", lambda m: seen["console"].append(m.text) if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: seen["errors"].append(str(e)))

            def refuse(route: Any) -> None:
                if route.request.url.startswith("file:"):
                    route.continue_()
                else:
                    seen["requests"].append(route.request.url)
                    route.abort()

            page.route("**/*", refuse)
            page.goto(html.as_uri(), wait_until="load")
            seen["charts"] = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('svg.chart')]
                .map(svg => [svg.id, [...svg.querySelectorAll('g.bar, g.node')].map(g => {
                    const shape = g.querySelector('rect');
                    const box = shape.getBoundingClientRect();
                    return [g.dataset.label || g.dataset.name, Number(g.dataset.value || g.dataset.rows || -1),
                            box.width, box.height];
                })]))""")
            seen["totals"] = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('.total .n')]
                .map(e => [e.id, e.textContent]))""")
            page.screenshot(path=str(shot), full_page=True)
        finally:
            b.close()
    return seen


def test_report_renders_in_headless_chromium_offline(world: World, tmp_path: Path) -> None:
    chromium = browser()
    out = world.root / "out" / "browser.html"
    ok(run(world.lake, "report", "orig", "research-safe", "--out", out))
    shot = tmp_path / "report.png"
    seen = render_in_browser(chromium, out, shot)
    assert seen["console"] == [] and seen["errors"] == [] and seen["requests"] == []
    per_shard, hosts = independent_removals(world, "orig", "research-safe")
    charts = seen["charts"]
    assert set(charts) == {"lineage", "by-rule", "by-category", "by-shard", "by-domain"}
    assert [v for _, v, _, _ in charts["by-shard"]] == per_shard
    assert {label: v for label, v, _, _ in charts["by-domain"]} == {h: hosts[h] for h, _, _, _ in charts["by-domain"]}
    assert {label: v for label, v, _, _ in charts["by-category"]} == {"safety": len(GEN1), "nsfw": len(GEN2)}
    assert [label for label, *_ in charts["lineage"]] == ["orig", "research", "research-safe"]
    for chart, bars in charts.items():  # drawn: every bar with a value has a visible size
        assert all(w > 0 and h > 0 for _, v, w, h in bars if v), (chart, bars)
    widths = {label: w for label, _, w, _ in charts["by-category"]}
    assert widths["safety"] > widths["nsfw"] if len(GEN1) > len(GEN2) else widths["safety"] < widths["nsfw"]
    n_a = sum(len(s) for s in world.ids("orig"))
    assert seen["totals"]["rows-a"] == f"{n_a:,}" and seen["totals"]["rows-removed"] == f"{sum(per_shard):,}"
    assert seen["totals"]["rows-sensitive"] == str(len(PLANTED))
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 20_000
    keep = os.environ.get("RELAKE_SCREENSHOTS")  # a folder to keep the screenshot in, for a person to look at
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, Path(keep) / "report.png")


def test_public_report_renders_in_headless_chromium_offline(world: World, tmp_path: Path) -> None:
    chromium = browser()
    out = world.root / "out" / "browser-public.html"
    ok(run(world.lake, "report", "orig", "research-safe", "--public", "--out", out))
    seen = render_in_browser(chromium, out, tmp_path / "public.png")
    assert seen["console"] == [] and seen["errors"] == [] and seen["requests"] == []
    assert set(seen["charts"]) == {"lineage", "by-category"}
    assert {label: v for label, v, _, _ in seen["charts"]["by-category"]} == {"safety": len(GEN1),
                                                                              "nsfw": len(GEN2)}
    assert "rows-sensitive" not in seen["totals"]

