"""Benchmark the HTML map: write time, file size, and time until the page answers in Chromium.

    /work/venv/bin/python benchmarks/bench_render.py [--sizes 2000 10000] [--no-browser]

For the shipped graph and synthetic graphs (ecosystem_kg.synth) of each size it prints:
compile time (YAML -> Compiled, for context), HTML time (render_html + atomic write), file size,
and in headless Chromium (Debian's /usr/bin/chromium via Playwright, every non-file request
blocked and counted): the time from navigation start until the map is drawn and settled
(vis-network's stabilisation done and a frame drawn, or the first frame when physics is off),
then the latency of a real mouse click on the best-connected node until its side panel is
filled and the next frame is drawn.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from ecosystem_kg.pipeline import compile_graph  # noqa: E402
from ecosystem_kg.render import render_html  # noqa: E402
from ecosystem_kg.synth import synth  # noqa: E402

CHROMIUM = os.environ.get("EKG_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@dataclass
class Row:
    name: str
    nodes: int
    edges: int
    compile_s: float
    html_s: float
    size: int
    ready_ms: float | None = None
    click_ms: float | None = None
    outside: int | None = None
    errors: int | None = None


def write_html(graph: Path, out: Path, name: str) -> Row:
    t0 = time.perf_counter()
    compiled = compile_graph(graph)
    t1 = time.perf_counter()
    html = render_html(compiled)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, out)
    t2 = time.perf_counter()
    members = [e for e in compiled.entities if not e.is_source]
    return Row(name, len(members), sum(len(e.relations) for e in members), t1 - t0, t2 - t1,
               out.stat().st_size)


def measure_browser(browser: Any, path: Path, row: Row) -> None:
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, service_workers="block")
    page = ctx.new_page()
    outside: list[str] = []
    errors: list[str] = []

    def route(r: Any) -> None:
        if r.request.url.startswith("file:"):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    ctx.route("**/*", route)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.resolve().as_uri())
    page.wait_for_function("window.ekgMap && window.ekgMap.ready", timeout=300_000,
                           polling=20)
    row.ready_ms = float(page.evaluate("window.ekgMap.readyAt"))
    if row.nodes:
        page.evaluate("window.ekgMap.network.stopSimulation()")
        x, y = page.evaluate("""() => {
            const m = window.ekgMap, net = m.network;
            const best = m.nodes.get().reduce((a, b) => (b.size > a.size ? b : a));
            const p = net.canvasToDOM(net.getPositions([best.id])[best.id]);
            const r = document.getElementById('map').getBoundingClientRect();
            return [p.x + r.left, p.y + r.top];
        }""")
        t = time.perf_counter()
        page.mouse.click(x, y)
        page.wait_for_function("window.ekgMap.clicks >= 1", polling="raf", timeout=60_000)
        page.evaluate("new Promise(r => requestAnimationFrame(() => r(null)))")
        row.click_ms = (time.perf_counter() - t) * 1000
        assert page.is_visible("#panel"), "the click did not open the panel"
    row.outside = len(outside)
    row.errors = len(errors)
    ctx.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[2000, 10000])
    ap.add_argument("--graph", type=Path, default=ROOT / "graph", help="the shipped graph")
    ap.add_argument("--no-browser", action="store_true")
    args = ap.parse_args()

    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="ekg-bench-") as tmp_s:
        tmp = Path(tmp_s)
        graphs = [("shipped", args.graph)]
        for n in args.sizes:
            g = tmp / f"synth-{n}"
            t = time.perf_counter()
            synth(n, g, seed=0)
            print(f"synth {n}: {time.perf_counter() - t:.2f} s", file=sys.stderr)
            graphs.append((f"synth-{n}", g))
        pages = []
        for name, g in graphs:
            out = tmp / f"{name}.html"
            rows.append(write_html(g, out, name))
            pages.append(out)
        if not args.no_browser:
            from playwright.sync_api import sync_playwright

            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                for row, out in zip(rows, pages, strict=True):
                    measure_browser(browser, out, row)
                browser.close()

    head = (f"{'graph':<13}{'nodes':>7}{'edges':>8}{'compile s':>11}{'html s':>8}{'size':>10}"
            f"{'ready ms':>10}{'click ms':>10}{'outside':>9}{'errors':>8}")
    print(head)
    print("-" * len(head))
    for r in rows:
        def f(v: float | None, fmt: str) -> str:
            return "-" if v is None else format(v, fmt)

        print(f"{r.name:<13}{r.nodes:>7}{r.edges:>8}{r.compile_s:>11.2f}{r.html_s:>8.2f}"
              f"{r.size / 1e6:>8.2f}MB{f(r.ready_ms, '.0f'):>10}{f(r.click_ms, '.0f'):>10}"
              f"{f(r.outside, 'd'):>9}{f(r.errors, 'd'):>8}")
    print(json.dumps([r.__dict__ for r in rows]), file=sys.stderr)


if __name__ == "__main__":
    main()
