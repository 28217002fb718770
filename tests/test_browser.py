"""The HTML map in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

Every request the page makes is routed: file:// loads go through, anything else is blocked and
counted (there must be none). Without Playwright or Chromium these tests skip, unless
EKG_REQUIRE_BROWSER=1 (as in CI): then they fail.

Set up: apt-get install -y chromium fonts-noto-cjk && pip install playwright
(no `playwright install`: the system Chromium is used).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "graph"
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "render" / "graph"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = os.environ.get("EKG_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
REQUIRE = os.environ.get("EKG_REQUIRE_BROWSER") == "1"
PAYLOAD = "<img src=x onerror=alert(1)>"


def unavailable(reason: str) -> None:
    if REQUIRE:
        pytest.fail(f"{reason} (EKG_REQUIRE_BROWSER=1, so this is a failure, not a skip)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install playwright)")
    if not Path(CHROMIUM).is_file():
        unavailable(f"{CHROMIUM} not found (apt-get install -y chromium fonts-noto-cjk)")
    with sync_playwright() as pw:
        try:
            b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Error as exc:
            unavailable(f"Chromium did not start: {str(exc).splitlines()[0]}")
        yield b
        b.close()


def _build(graph: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ecosystem_kg", "build", "--graph", str(graph),
                           "--out", str(out)], capture_output=True, text=True, timeout=300)


@dataclass
class Built:
    html: Path
    entities: int
    relations: int
    graph: Path


@pytest.fixture(scope="session")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The shipped graph built with `ekg build`; the fixture graph if the shipped one is
    temporarily invalid (people are editing it) or lacks MetaX."""
    base = tmp_path_factory.mktemp("shipped")
    graph = SHIPPED
    r = _build(graph, base / "build")
    if r.returncode != 0 or not (graph / "companies" / "metax.yaml").is_file():
        graph = FIXTURE
        r = _build(graph, base / "build")
    assert r.returncode == 0, r.stderr
    summary = json.loads((base / "build" / "summary.json").read_text(encoding="utf-8"))
    return Built(base / "build" / "ecosystem.html", summary["entities"], summary["relations"],
                 graph)


@pytest.fixture(scope="session")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Built:
    base = tmp_path_factory.mktemp("hostile")
    graph = base / "graph"
    shutil.copytree(FIXTURE, graph)
    r = _build(graph, base / "build")
    assert r.returncode == 0, r.stderr
    summary = json.loads((base / "build" / "summary.json").read_text(encoding="utf-8"))
    return Built(base / "build" / "ecosystem.html", summary["entities"], summary["relations"],
                 graph)


@dataclass
class Page:
    page: Any
    outside: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def js(self, code: str, arg: Any = None) -> Any:
        return self.page.evaluate(code, arg)

    def node_point(self, node_id: str) -> tuple[float, float]:
        """Page coordinates of a node's centre."""
        x, y = self.js("""id => {
            const net = window.ekgMap.network;
            const p = net.canvasToDOM(net.getPositions([id])[id]);
            const r = document.getElementById('map').getBoundingClientRect();
            return [p.x + r.left, p.y + r.top];
        }""", node_id)
        return float(x), float(y)

    def settle(self) -> None:
        """Stop the physics and wait until the view (focus animations too) stands still."""
        self.js("window.ekgMap.network.stopSimulation()")
        self.page.wait_for_function("""() => new Promise(done => {
            const net = window.ekgMap.network;
            const look = () => JSON.stringify([net.getViewPosition(), net.getScale(),
                                               net.getPositions()]);
            const before = look();
            setTimeout(() => done(look() === before), 150);
        })""", timeout=10_000)


@pytest.fixture()
def open_map(browser: Any) -> Iterator[Any]:
    contexts: list[Any] = []

    def load(path: Path) -> Page:
        ctx = browser.new_context(viewport={"width": 1400, "height": 900},
                                  service_workers="block")
        contexts.append(ctx)
        page = ctx.new_page()
        p = Page(page)

        def route(r: Any) -> None:
            if r.request.url.startswith("file:"):
                r.continue_()
            else:
                p.outside.append(r.request.url)
                r.abort()

        ctx.route("**/*", route)
        page.on("console", lambda m: p.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: p.errors.append(str(e)))

        def on_dialog(d: Any) -> None:
            p.dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", on_dialog)
        page.goto(path.resolve().as_uri())
        page.wait_for_function("window.ekgMap && window.ekgMap.ready", timeout=60_000)
        return p

    yield load
    for ctx in contexts:
        ctx.close()


def test_draws_every_node_offline_without_errors(open_map: Any, shipped: Built) -> None:
    p = open_map(shipped.html)
    drawn = p.js("""() => { const b = window.ekgMap.network.body;
        return [window.ekgMap.nodes.length, b.nodeIndices.length, b.edgeIndices.length]; }""")
    assert drawn == [shipped.entities, shipped.entities, shipped.relations]
    stats = p.page.text_content("#stats")
    assert f"{shipped.entities} 个节点" in stats and "数据截至" in stats
    assert p.page.is_visible("#types li")
    p.page.wait_for_timeout(300)
    assert p.errors == []
    assert p.outside == []


def test_edges_are_the_relations_with_their_labels_and_arrows(open_map: Any,
                                                              shipped: Built) -> None:
    # the page makes the edge objects from compact [from, to, relation] positions
    from ecosystem_kg import check

    loaded = check(shipped.graph)
    rels = loaded.ontology.relations
    kept = {e.id for e in loaded.entities if not e.is_source}
    expected = sorted((e.id, r.rel, r.target, rels[r.rel].label_zh or r.rel,
                       "" if rels[r.rel].symmetric else "to")
                      for e in loaded.entities for r in e.relations if r.target in kept)
    p = open_map(shipped.html)
    drawn = p.js("""() => window.ekgMap.edges.get().map(
        e => [e.from, e.rel, e.to, e.label, e.arrows])""")
    assert sorted(tuple(e) for e in drawn) == expected
    assert any(arrows == "" for *_, arrows in expected)  # symmetric ones too
    p.page.click("#lang")  # English labels after the switch
    label = p.js("""() => window.ekgMap.edges.get().find(e => e.rel === 'located_in').label""")
    assert label == rels["located_in"].label_en
    assert p.errors == []


def test_search_focuses_metax_and_panel_shows_sources(open_map: Any, shipped: Built) -> None:
    from ecosystem_kg.pipeline import compile_graph

    compiled = compile_graph(shipped.graph)
    by_id = {e.id: e for e in compiled.entities}
    metax = by_id["metax"]
    titles = [by_id[s].extra["title"] for s in metax.sources]
    assert titles, "metax must cite a source for this test"

    p = open_map(shipped.html)
    p.page.fill("#search", "沐曦")
    p.page.wait_for_selector("#results li button")
    first = p.page.text_content("#results li button")
    assert first.startswith(metax.name_zh)
    p.page.press("#search", "Enter")
    p.page.wait_for_function("window.ekgMap.network.getSelectedNodes()[0] === 'metax'")
    assert p.page.is_visible("#panel")
    assert p.page.text_content("#panel h2") == metax.name_zh
    # pinyin finds it too
    assert p.js("window.ekgMap.search('muxi')")[0] == "metax"
    assert p.js("window.ekgMap.search('METAX')")[0] == "metax"

    # a real click on the node opens its panel, which lists its sources by title
    p.page.click("#close")
    assert not p.page.is_visible("#panel")
    p.settle()
    x, y = p.node_point("metax")
    p.page.mouse.click(x, y)
    p.page.wait_for_selector("#panel:not([hidden])")
    text = p.page.text_content("#panel")
    assert metax.name_zh in text and metax.name_en in text
    assert any(t in text for t in titles)
    assert p.js("window.ekgMap.network.getSelectedNodes()") == ["metax"]

    # the language toggle switches labels and the panel
    p.page.click("#lang")
    assert p.js("window.ekgMap.nodes.get('metax').label") == metax.name_en
    assert p.page.text_content("#panel h2") == metax.name_en
    p.page.click("#lang")
    assert p.js("window.ekgMap.nodes.get('metax').label") == metax.name_zh

    ARTIFACTS.mkdir(exist_ok=True)
    p.page.screenshot(path=str(ARTIFACTS / "map.png"))
    assert p.errors == [] and p.outside == [] and p.dialogs == []


def test_hostile_names_stay_text(open_map: Any, hostile: Built) -> None:
    p = open_map(hostile.html)
    p.settle()
    x, y = p.node_point("xss-lab")
    # hover: the tooltip is a DOM element holding the literal text
    p.page.mouse.move(x - 40, y - 40)
    p.page.mouse.move(x, y, steps=4)
    p.page.wait_for_selector("div.vis-tooltip", state="visible", timeout=5000)
    tip = p.page.text_content("div.vis-tooltip")
    assert PAYLOAD in tip and "</script><script>alert(2)</script>" in tip
    assert p.js("document.querySelectorAll('div.vis-tooltip img, div.vis-tooltip script')"
                ".length") == 0
    # click: the panel shows every hostile field as characters
    p.page.mouse.click(x, y)
    p.page.wait_for_selector("#panel:not([hidden])")
    text = p.page.text_content("#panel")
    for literal in (PAYLOAD, "</script><script>alert(2)</script>", "<svg onload=alert(3)>",
                    "<img src=x onerror=alert(4)>", "<img src=x onerror=alert(6)> 报道",
                    "<b>Publisher</b>", "&amp; \u2028 <b>bold</b>"):
        assert literal in text, literal
    assert p.js("document.querySelectorAll('#panel img, #panel svg, #panel script, #panel b')"
                ".length") == 0
    assert p.js("document.querySelectorAll('img').length") == 0
    links = p.js("[...document.querySelectorAll('#panel a')].map(a => a.href)")
    assert links and all(h.startswith("https://") for h in links)
    # the hostile alias is searchable and listed as text too
    p.page.fill("#search", "<img")
    p.page.wait_for_selector("#results li button")
    assert PAYLOAD in p.page.text_content("#results")
    p.page.wait_for_timeout(200)
    assert p.dialogs == []
    assert p.errors == [] and p.outside == []


def test_edge_click_shows_statement_sources(open_map: Any, hostile: Built) -> None:
    p = open_map(hostile.html)
    p.settle()
    edge = p.js("""() => window.ekgMap.edges.get().find(
        e => e.from === 'metax' && e.rel === 'listed_on').id""")
    x, y = p.js("""id => {
        const net = window.ekgMap.network;
        const pt = net.body.edges[id].edgeType.getPoint(0.5);
        const d = net.canvasToDOM(pt);
        const r = document.getElementById('map').getBoundingClientRect();
        return [d.x + r.left, d.y + r.top];
    }""", edge)
    p.page.mouse.click(x, y)
    p.page.wait_for_selector("#panel:not([hidden])")
    text = p.page.text_content("#panel")
    assert "上市于" in text and "沐曦股份" in text and "科创板" in text
    assert "测试报道甲" in text and "测试报道乙" in text and "2025-12" in text
    assert "first-day gain of nearly 7x" in text
    assert p.errors == [] and p.outside == []


def test_filters_and_date_slider(open_map: Any, hostile: Built) -> None:
    p = open_map(hostile.html)
    total_nodes = p.js("window.ekgMap.nodesView.length")
    total_edges = p.js("window.ekgMap.edgesView.length")
    assert (total_nodes, total_edges) == (hostile.entities, hostile.relations)
    # type filter: hide the GPU makers (2) and every edge touching them
    p.page.uncheck("#types input[value=GPUMaker]")
    assert p.js("window.ekgMap.nodesView.length") == total_nodes - 2
    left = p.js("window.ekgMap.edgesView.get().every(e => !['metax','biren'].includes(e.from)"
                " && !['metax','biren'].includes(e.to))")
    assert left
    assert p.js("window.ekgMap.network.body.nodeIndices.length") == total_nodes - 2
    p.page.check("#types input[value=GPUMaker]")
    # relation filter
    p.page.uncheck("#rels input[value=located_in]")
    assert p.js("window.ekgMap.edgesView.length") == total_edges - 5
    p.page.check("#rels input[value=located_in]")
    # date slider: the earliest date keeps only undated or already-begun statements
    assert p.page.is_visible("#asof")
    set_slider = ("(s, v) => { s.value = v === 'max' ? s.max : v; "
                  "s.dispatchEvent(new Event('input')); }")
    p.page.eval_on_selector("#asof", set_slider, "0")
    first = p.js("window.ekgMap.edgesView.length")
    assert first < total_edges
    assert "时间点" in p.page.text_content("#stats")
    p.page.eval_on_selector("#asof", set_slider, "max")
    assert p.js("window.ekgMap.edgesView.length") == total_edges
    assert p.errors == [] and p.outside == []


@pytest.fixture(scope="session")
def large(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """A synthetic 2,000-entity graph: layout from Python, physics off, level-of-detail edges."""
    from ecosystem_kg.pipeline import compile_graph
    from ecosystem_kg.render import render_html
    from ecosystem_kg.synth import synth

    base = tmp_path_factory.mktemp("large")
    synth(2000, base / "graph", seed=1)
    compiled = compile_graph(base / "graph")
    html = base / "large.html"
    html.write_text(render_html(compiled), encoding="utf-8")
    members = [e for e in compiled.entities if not e.is_source]
    return Built(html, len(members), sum(len(e.relations) for e in members), base / "graph")


def test_large_map_draws_all_nodes_and_selected_edges(open_map: Any, large: Built) -> None:
    p = open_map(large.html)
    assert p.js("[window.ekgMap.physics, window.ekgMap.lod]") == [False, True]
    assert p.js("window.ekgMap.network.body.nodeIndices.length") == large.entities
    assert f"{large.relations} 条关系" in p.page.text_content("#stats")
    hub = p.js("window.ekgMap.nodes.get().reduce((a, b) => (b.size > a.size ? b : a)).id")
    degree = p.js("""id => window.ekgMap.edges.get().filter(
        e => e.from === id || e.to === id).length""", hub)
    x, y = p.node_point(hub)
    p.page.mouse.click(x, y)
    p.page.wait_for_selector("#panel:not([hidden])")
    drawn = p.js("""id => window.ekgMap.edgesView.get().filter(
        e => e.from === id || e.to === id).length""", hub)
    assert drawn == degree  # the selected node's relations are all drawn
    # zooming in draws the edges near the view
    p.js(f"window.ekgMap.network.moveTo({{position: window.ekgMap.network.getPositions"
         f"(['{hub}'])['{hub}'], scale: 1.0}})")
    p.page.click("#close")
    p.js("window.ekgMap.network.emit('zoom', {})")
    p.page.wait_for_function("window.ekgMap.edgesView.length > 0")
    assert p.errors == [] and p.outside == []
