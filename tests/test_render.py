"""The HTML map without a browser: self-contained, escaped, deterministic, filtered right."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ecosystem_kg.compile import Compiled
from ecosystem_kg.errors import EkgError
from ecosystem_kg.pipeline import check, compile_graph

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "render" / "graph"
PAYLOAD = "<img src=x onerror=alert(1)>"
DATA_RE = re.compile(r'<script type="application/json" id="ekg-data">(.*?)</script>', re.S)


@pytest.fixture(scope="module")
def compiled() -> Compiled:
    return compile_graph(FIXTURE)


@pytest.fixture(scope="module")
def html(compiled: Compiled) -> str:
    from ecosystem_kg.render import render_html

    return render_html(compiled)


def payload(html: str) -> dict[str, Any]:
    m = DATA_RE.search(html)
    assert m, "the graph data block is missing"
    data: dict[str, Any] = json.loads(m.group(1))
    return data


def vis_edges(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The drawn edges, as the page makes them from the [from, to, relation] positions."""
    nodes, rels = data["nodes"], data["rels"]
    return [{"from": nodes[a]["id"], "to": nodes[b]["id"], "rel": rels[r]["n"],
             "label": rels[r]["zh"], "arrows": "" if rels[r]["sym"] else "to"}
            for a, b, r in data["vis"]["edges"]]


def edge_triples(data: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(e["from"], e["rel"], e["to"]) for e in vis_edges(data)}


# -- self-contained ------------------------------------------------------------------------


def test_no_outside_resources(html: str) -> None:
    lowered = html.lower()
    for bad in ('src="http', "src='http", 'href="http', "href='http", "//cdn",
                "@import url(http", "@import", "<link", "<script src", "<iframe"):
        assert bad not in lowered, bad
    assert "bootstrap" not in lowered
    assert "tom-select" not in lowered and "tomselect" not in lowered
    assert "lib/" not in re.sub(r"\s+", "", lowered.split("<body>")[0]).replace("</", "")
    # every url(...) in the styles is inline data
    for url in re.findall(r"url\(\s*['\"]?([^'\")]*)", html):
        assert url.startswith("data:"), url
    # the Content-Security-Policy forbids any request to any host
    assert "default-src 'none'" in html


def test_contains_vis_network(html: str) -> None:
    import pyvis

    js = (Path(pyvis.__file__).parent / "lib" / "vis-9.1.2" / "vis-network.min.js").read_text(
        encoding="utf-8")
    assert "vis-network" in html and "@version 9.1.2" in html
    middle = len(js) // 2
    assert js[middle:middle + 5000] in html  # the library itself, inlined, not referenced
    assert html.count("\n<script") == 3  # data, vis-network, the page's own script
    assert "sourceMappingURL" not in html


def test_utf8_and_fonts(html: str) -> None:
    assert '<meta charset="utf-8">' in html
    for font in ("PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", "WenQuanYi Micro Hei"):
        assert font in html
    html.encode("utf-8")


def test_csp_hashes_match_scripts(html: str) -> None:
    import base64

    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', html)
    assert csp
    hashes = set(re.findall(r"'sha256-([^']+)'", csp.group(1)))
    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
    assert len(scripts) == 2
    for code in scripts:
        digest = base64.b64encode(hashlib.sha256(code.encode("utf-8")).digest()).decode()
        assert digest in hashes


# -- escaping ------------------------------------------------------------------------------


def test_payload_is_escaped(html: str) -> None:
    assert PAYLOAD not in html
    assert "onerror" not in html.split('id="ekg-data">')[0]
    assert "\\u003cimg src=x onerror=alert(1)\\u003e" in html
    assert "</script><script>alert(2)" not in html
    assert "\u2028" not in html and "\u2029" not in html
    data = payload(html)
    node = next(n for n in data["nodes"] if n["id"] == "xss-lab")
    assert node["zh"] == PAYLOAD
    assert node["en"] == "</script><script>alert(2)</script>"
    assert "&amp; \u2028 <b>bold</b>" in node["al"]
    assert next(n for n in data["vis"]["nodes"] if n["id"] == "xss-lab")["label"] == PAYLOAD
    assert data["sources"]["news-hostile"]["t"].startswith("<img src=x onerror=alert(6)>")
    assert "title" not in next(n for n in data["vis"]["nodes"] if n["id"] == "xss-lab")


def test_page_builds_dom_without_inner_html(html: str) -> None:
    from ecosystem_kg.render import APP_JS

    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function"):
        assert sink not in APP_JS, sink
    assert "textContent" in APP_JS and "createElement" in APP_JS


def test_title_is_escaped(compiled: Compiled) -> None:
    from ecosystem_kg.render import render_html

    out = render_html(compiled, title="<b>x</b> & y")
    assert "<title>&lt;b&gt;x&lt;/b&gt; &amp; y</title>" in out
    assert payload(out)["title"] == "<b>x</b> & y"


def test_only_http_urls_are_links(html: str) -> None:
    data = payload(html)
    for src in data["sources"].values():
        if "u" in src:
            assert re.match(r"^https?://", src["u"])
    assert data["sources"]["news-hostile"]["u"] == "https://example.com/article?a=1&b=<x>"


# -- content -------------------------------------------------------------------------------


def test_nodes_edges_styles_and_labels(compiled: Compiled, html: str) -> None:
    data = payload(html)
    onto = compiled.ontology
    members = [e for e in compiled.entities if not e.is_source]
    assert [n["id"] for n in data["vis"]["nodes"]] == sorted(e.id for e in members)
    assert len(data["vis"]["edges"]) == sum(len(e.relations) for e in members)
    groups = data["vis"]["options"]["groups"]
    for t in data["types"]:
        color, shape = onto.style_of(t["n"])
        assert (t["c"], t["sh"]) == (color, shape)
        assert groups[t["n"]]["shape"] == shape
        assert groups[t["n"]]["color"]["background"] == color
    listed = next(e for e in vis_edges(data) if e["rel"] == "listed_on")
    assert listed["label"] == onto.relations["listed_on"].label_zh
    assert listed["arrows"] == "to"
    partner = next(e for e in vis_edges(data) if e["rel"] == "partner_of")
    assert partner["arrows"] == ""  # symmetric: no direction to show
    sizes = {n["id"]: n["size"] for n in data["vis"]["nodes"]}
    assert sizes["metax"] > sizes["chen-weiliang"]  # size grows with degree
    assert data["dataDate"] == "2026-01-09"
    assert data["physics"] is True
    assert data["vis"]["options"]["physics"]["stabilization"]["iterations"] <= 200


def test_search_keys_include_pinyin_and_aliases(html: str) -> None:
    data = payload(html)
    keys = next(n for n in data["nodes"] if n["id"] == "metax")["k"]
    assert {"metax", "沐曦股份", "沐曦", "muxi", "muxigufen"} <= set(keys)


def test_panel_data_has_sources_dates_and_attributes(html: str) -> None:
    data = payload(html)
    metax = next(n for n in data["nodes"] if n["id"] == "metax")
    assert metax["s"] == ["news-a", "news-b"]
    assert {"p": "chips_delivered", "v": "1000", "u": "chip", "d": "2025-06",
            "s": ["news-a"]} in metax["a"]
    assert data["units"]["chip"] == ["片", "chips"]
    assert data["sources"]["news-a"] == {"t": "测试报道甲", "te": "Test report A",
                                         "p": "测试日报", "pe": "Test Daily", "d": "2026-01-09"}
    i = next(i for i, e in enumerate(vis_edges(data))
             if (e["from"], e["rel"]) == ("metax", "listed_on"))
    assert data["edges"][i] == {"d": "2025-12", "s": ["news-a", "news-b"],
                                "n": "first-day gain of nearly 7x"}
    assert "2025-12" in data["dates"] and data["dates"] == sorted(data["dates"])


# -- determinism ---------------------------------------------------------------------------


def test_byte_identical_twice(compiled: Compiled, html: str) -> None:
    from ecosystem_kg.render import render_html

    assert render_html(compile_graph(FIXTURE)) == html
    assert render_html(compiled) == html


@pytest.mark.slow
def test_byte_identical_across_hash_seeds() -> None:
    code = ("import hashlib, sys; from pathlib import Path; "
            "from ecosystem_kg.pipeline import compile_graph; "
            "from ecosystem_kg.render import render_html; "
            f"h = render_html(compile_graph(Path({str(FIXTURE)!r})), as_of='2025'); "
            "sys.stdout.write(hashlib.sha256(h.encode()).hexdigest())")
    digests = set()
    for seed in ("0", "1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env=env, timeout=120)
        assert r.returncode == 0, r.stderr
        digests.add(r.stdout)
    assert len(digests) == 1


def test_pyvis_is_imported_lazily() -> None:
    code = ("import sys, ecosystem_kg.render, ecosystem_kg.synth, ecosystem_kg.pipeline; "
            "sys.exit(1 if 'pyvis' in sys.modules else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, "importing ecosystem_kg.render must not import pyvis"


# -- keep / as_of --------------------------------------------------------------------------


def test_keep_restricts_nodes_and_edges(compiled: Compiled) -> None:
    from ecosystem_kg.render import render_html

    data = payload(render_html(compiled, keep={"metax", "shanghai", "star-market", "nope"}))
    assert [n["id"] for n in data["vis"]["nodes"]] == ["metax", "shanghai", "star-market"]
    assert edge_triples(data) == {("metax", "listed_on", "star-market"),
                                  ("metax", "located_in", "shanghai")}
    assert {t["n"] for t in data["types"]} == {"GPUMaker", "Place", "StockExchange"}
    assert set(data["sources"]) == {"news-a", "news-b"}  # only what the kept data cites


def test_as_of_drops_statements_not_in_force(compiled: Compiled) -> None:
    from ecosystem_kg.render import render_html

    full = edge_triples(payload(render_html(compiled)))
    old = payload(render_html(compiled, as_of="2020"))
    t_old = edge_triples(old)
    assert ("xss-lab", "located_in", "shanghai") in t_old  # 2019 .. 2021-06
    assert ("xss-lab", "partner_of", "metax") not in t_old  # 2024-03
    assert ("metax", "listed_on", "star-market") not in t_old  # 2025-12
    assert ("biren", "located_in", "shanghai") in t_old  # undated: always holds
    metax = next(n for n in old["nodes"] if n["id"] == "metax")
    assert [f["p"] for f in metax.get("a", [])] == ["founded"]  # chips_delivered is 2025-06
    assert old["asOf"] == "2020"
    later = edge_triples(payload(render_html(compiled, as_of="2025-10")))
    assert ("xss-lab", "located_in", "shanghai") not in later  # ended 2021-06
    assert ("compute-vouchers", "supports", "metax") in later  # 2025-08 .. 2025-12
    assert ("metax", "listed_on", "star-market") not in later
    assert later < full
    with pytest.raises(EkgError, match="date"):
        render_html(compiled, as_of="2025-13")


def test_empty_selection_renders_an_empty_map(compiled: Compiled) -> None:
    from ecosystem_kg.render import render_html

    data = payload(render_html(compiled, keep=set()))
    assert data["vis"]["nodes"] == [] and data["vis"]["edges"] == []
    assert data["physics"] is False


# -- render_file (ekg render) --------------------------------------------------------------


@pytest.fixture()
def graph_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "graph"
    shutil.copytree(FIXTURE, dst)
    return dst


def _render(graph: Path, out: Path, **kw: Any) -> tuple[Path, list[str]]:
    from ecosystem_kg.render import render_file

    notes: list[str] = []
    args: dict[str, Any] = {"ontology": None, "entity": None, "hops": 2, "types": None,
                            "rels": None, "as_of": None, "output": None}
    args.update(kw)
    path = render_file(graph=graph, out=out, notify=notes.append, **args)
    return path, notes


def test_render_file_ego_network_by_alias(graph_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "build"
    path, _ = _render(graph_copy, out, entity="沐曦", hops=1)
    assert path == out / "render-metax.html"
    data = payload(path.read_text(encoding="utf-8"))
    ids = {n["id"] for n in data["vis"]["nodes"]}
    assert ids == {"metax", "star-market", "shanghai", "telecom-lingang", "chen-weiliang",
                   "pudong-vc", "compute-vouchers", "xss-lab"}
    assert data["title"].startswith("沐曦股份")
    assert not [p for p in out.iterdir() if ".tmp-" in p.name]  # written atomically
    two = payload(_render(graph_copy, out, entity="metax", hops=2)[0].read_text("utf-8"))
    ids2 = {n["id"] for n in two["vis"]["nodes"]}
    assert {"lingang", "biren"} <= ids2 and "hkex" not in ids2  # hkex is 3 hops away


def test_render_file_types_rels_and_output(graph_copy: Path, tmp_path: Path) -> None:
    target = tmp_path / "maps" / "m.html"
    path, _ = _render(graph_copy, tmp_path / "build", entity="MetaX", hops=2,
                      types=["Organization"], output=target)
    assert path == target and target.is_file()
    data = payload(target.read_text(encoding="utf-8"))
    types = {n["group"] for n in data["vis"]["nodes"]}
    # Organization includes its subclasses (GPUMaker, StockExchange, ...); places are out
    assert "Place" not in types and "Park" not in types and "GPUMaker" in types
    path2, _ = _render(graph_copy, tmp_path / "build", rels=["listed_on"])
    assert path2.name == "render-subset.html"
    data2 = payload(path2.read_text(encoding="utf-8"))
    assert {e["rel"] for e in vis_edges(data2)} == {"listed_on"}
    path3, _ = _render(graph_copy, tmp_path / "build", entity="metax", hops=3,
                       rels=["located_in"], output=tmp_path / "loc.html")
    ids = {n["id"] for n in payload(path3.read_text("utf-8"))["vis"]["nodes"]}
    assert ids == {"metax", "shanghai", "biren", "lingang", "telecom-lingang", "xss-lab"}


def test_render_file_as_of(graph_copy: Path, tmp_path: Path) -> None:
    path, _ = _render(graph_copy, tmp_path / "b", entity="xss-lab", hops=1, as_of="2020",
                      output=tmp_path / "x.html")
    ids = {n["id"] for n in payload(path.read_text("utf-8"))["vis"]["nodes"]}
    assert ids == {"xss-lab", "shanghai"}  # the 2024 partnership is not in force yet


def test_render_file_bad_input(graph_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "build"
    with pytest.raises(EkgError, match="unknown type 'Compnay'; did you mean 'Company'"):
        _render(graph_copy, out, types=["Compnay"])
    with pytest.raises(EkgError, match="unknown relation 'listed'"):
        _render(graph_copy, out, rels=["listed"])
    with pytest.raises(EkgError, match="nothing to draw"):
        _render(graph_copy, out, types=["University"])
    with pytest.raises(EkgError, match="no entity matches"):
        _render(graph_copy, out, entity="no such thing at all")
    with pytest.raises(EkgError, match="hops"):
        _render(graph_copy, out, entity="metax", hops=0)


def test_render_file_without_build_folder_keeps_it_buildable(graph_copy: Path,
                                                             tmp_path: Path) -> None:
    from ecosystem_kg.pipeline import build

    out = tmp_path / "fresh"
    path, _ = _render(graph_copy, out)
    assert path.is_file()
    build(graph_copy, out, html=False)  # the folder is marked as ekg's own: build may replace it
    assert (out / "index.sqlite").is_file()


# -- large graphs and synth ----------------------------------------------------------------


def test_synth_validates_and_is_deterministic(tmp_path: Path) -> None:
    from ecosystem_kg.synth import synth

    a, b = tmp_path / "a", tmp_path / "b"
    synth(1000, a, seed=3)
    synth(1000, b, seed=3)
    files = sorted(p.relative_to(a).as_posix() for p in a.rglob("*.yaml"))
    assert files == sorted(p.relative_to(b).as_posix() for p in b.rglob("*.yaml"))
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    loaded = check(a)  # raises ValidationFailed if anything is invalid
    members = [e for e in loaded.entities if not e.is_source]
    assert len(members) == 1000
    assert len({e.type for e in members}) >= 15
    n_rel = sum(len(e.relations) for e in members)
    assert 4.5 <= n_rel / len(members) <= 7.5
    degree: dict[str, int] = {}
    for e in members:
        for r in e.relations:
            degree[e.id] = degree.get(e.id, 0) + 1
            degree[r.target] = degree.get(r.target, 0) + 1
    top = sorted(degree.values(), reverse=True)
    assert top[0] > 10 * sorted(top)[len(top) // 2]  # heavy tail: hubs
    assert any(e.aliases for e in members)
    assert all(e.name_zh and e.name_en for e in members)
    assert any(r.date or r.start for e in members for r in e.relations)
    assert sum(1 for e in loaded.entities if e.is_source) == 100
    synth(1000, tmp_path / "c", seed=4)
    assert (tmp_path / "c" / files[0]).read_bytes() != (a / files[0]).read_bytes() or \
        sorted(p.name for p in (tmp_path / "c").rglob("*.yaml")) != [Path(f).name for f in files]


@pytest.mark.slow
def test_large_graph_has_python_layout_and_no_physics(tmp_path: Path) -> None:
    from ecosystem_kg.render import PHYSICS_LIMIT, render_html
    from ecosystem_kg.synth import synth

    synth(PHYSICS_LIMIT + 500, tmp_path / "g")
    data = payload(render_html(compile_graph(tmp_path / "g")))
    assert data["physics"] is False
    assert data["vis"]["options"]["physics"] == {"enabled": False}
    pos = {(n["x"], n["y"]) for n in data["vis"]["nodes"]}
    assert len(pos) > 0.99 * len(data["vis"]["nodes"])  # nodes are spread out, not stacked
    assert data["vis"]["options"]["edges"]["smooth"] == {"enabled": False}


def test_layout_is_seeded_and_spreads_nodes() -> None:
    from ecosystem_kg.render import _layout

    edges = [(0, i) for i in range(1, 60)] + [(i, i + 1) for i in range(60, 99)] + [(5, 60)]
    a = _layout(120, edges)
    assert a == _layout(120, list(edges))
    assert len(set(a)) == 120
    assert _layout(0, []) == []


def test_the_data_block_is_written_record_by_record_as_one_dump_would_write_it() -> None:
    """The page's JSON is made record by record (so that a rebuild can replace one entity's
    records): the same text as dumping it whole, with each record where the spans say."""
    import json

    from ecosystem_kg.render import _data_json, _Text, script_json

    hostile = 'a</script><b>&"\u2028\u2029\\'
    data = {
        "title": hostile, "dates": ["2025", "2026-01"], "asOf": None, "lod": False,
        "nodes": [{"id": "a", "k": ["a", hostile], "deg": 2, "zh": "甲"},
                  {"id": "b", "k": ["b"], "deg": 0},
                  {"id": "c", "k": ["c"], "deg": 2, "desc": {"en": hostile}}],
        "edges": [{"n": hostile}, {"d": "2025"}, {}],
        "vis": {"nodes": [{"id": x, "label": x + hostile, "x": 1.5, "y": -2.0, "size": 9.0}
                          for x in "abc"],
                "edges": [[0, 2, 0], [0, 2, 1], [2, 0, 0]], "options": {"physics": {"a": 1}}},
    }
    out = _Text()
    out.add("<prefix>")
    records = _data_json(data, [0, 0, 2], out)
    text = "".join(out.parts)
    assert text == "<prefix>" + script_json(data)
    assert records.ids == ["a", "b", "c"]
    spans = records.spans
    edges_of = {0: data["edges"][:2], 1: [], 2: data["edges"][2:]}
    for i in range(3):
        ns, ne, vs, ve, es, ee = spans[6 * i:6 * i + 6]
        assert json.loads(text[ns:ne]) == data["nodes"][i]
        assert json.loads(text[vs:ve]) == data["vis"]["nodes"][i]
        assert json.loads("[" + text[es:ee] + "]") == edges_of[i]
        assert "<" not in text[ns:ne] + text[vs:ve] + text[es:ee]


@pytest.mark.parametrize("graph", ["fixture", "shipped"])
def test_records_made_entity_by_entity_are_the_records_of_the_whole_page(graph: str) -> None:
    # the map's records are written as text when each entity comes in (a build hands them
    # over while the other files are read), the degree, size and position put in at the end:
    # the same text as writing each finished record, and the same page in any entity order
    from ecosystem_kg.index import entity_rows
    from ecosystem_kg.render import (
        MapData,
        _edge_record,
        _edge_text,
        _node_item,
        _vis_node,
        map_part,
        render_data,
        render_map,
        script_json,
    )

    root = Path(__file__).resolve().parents[1] / "graph" if graph == "shipped" else FIXTURE
    c = compile_graph(root)
    data = MapData(c.ontology)
    for e in reversed(c.entities):
        data.add(e)
    page = render_data(data)[0]
    assert page == render_map(c)[0]
    got = payload(page)
    ents = {e.id: e for e in c.entities}
    assert got["nodes"] and got["edges"]
    drawn: dict[int, list[Any]] = {i: [] for i in range(len(got["nodes"]))}
    for i, (s, _, _) in enumerate(got["vis"]["edges"]):
        drawn[s].append(got["edges"][i])
    for i, (node, vis) in enumerate(zip(got["nodes"], got["vis"]["nodes"], strict=True)):
        e = ents[node["id"]]
        used: tuple[set[str], set[str], set[str], set[str]] = (set(), set(), set(), set())
        assert script_json(node) == script_json(_node_item(e, node["deg"], None, *used))
        assert script_json(vis) == script_json(_vis_node(e, vis["x"], vis["y"], node["deg"]))
        rels = sorted((r for r in e.relations
                       if r.target in ents and not ents[r.target].is_source),
                      key=lambda r: (r.rel, r.target, r.index))
        records = [_edge_record(r) for r in rels]
        assert script_json(drawn[i]) == script_json(records)
        assert [_edge_text(r) for r in rels] == [script_json(x) for x in records]
    # a build makes each part where the file is read, the search keys from the index's rows
    for e in c.entities:
        rows = entity_rows(e, c.ontology)
        assert map_part(e, c.ontology.relations, None, rows[1]) == map_part(
            e, c.ontology.relations)


def test_a_relation_record_written_directly_is_the_encoder_s_text() -> None:
    # one record per relation is written without the JSON encoder: the same text, escapes
    # for the page included, and the encoder's own text for a field that is not text
    from ecosystem_kg.load import Quantity, Relation
    from ecosystem_kg.render import _edge_record, _edge_text, script_json

    hostile = 'a</script><b>&"\u2028\u2029\\\x01é沐曦'
    cases = [
        Relation(rel="invests_in", target="x"),
        Relation(rel="invests_in", target="x", date="2025-01", start="2024", end="2026-02-03",
                 sources=["news-a", hostile], note=hostile, role=hostile,
                 amount=Quantity(1.5e9, "CNY", ("", 1, 1))),
        Relation(rel="invests_in", target="x", amount=Quantity(12, None, ("", 1, 1)),
                 sources=["s"]),
        Relation(rel="invests_in", target="x", amount=Quantity(True, "", ("", 1, 1))),
        Relation(rel="invests_in", target="x", note=7, role=["a"]),  # type: ignore[arg-type]
    ]
    for r in cases:
        assert _edge_text(r) == script_json(_edge_record(r))
    assert "<" not in _edge_text(cases[1]) and "\u2028" not in _edge_text(cases[1])
    assert json.loads(_edge_text(cases[1]))["n"] == hostile
