"""Query algorithms against networkx on a synthetic graph with hubs."""

from __future__ import annotations

import random
from typing import Any

import pytest


@pytest.fixture(scope="module")
def synth_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    import networkx as nx

    from ecosystem_kg import build, compile_graph, open_index
    from ecosystem_kg.compile import to_networkx
    from ecosystem_kg.synth import synth

    base = tmp_path_factory.mktemp("synth")
    graph = base / "graph"
    synth(400, graph, seed=7)
    build(graph, base / "build", html=False)
    g = to_networkx(compile_graph(graph))
    return open_index(graph, base / "build"), nx.Graph(g)


def test_shortest_paths_match_networkx(synth_index: tuple[Any, Any]) -> None:
    import networkx as nx

    ix, undirected = synth_index
    nodes = sorted(undirected.nodes)
    rng = random.Random(3)
    checked = 0
    for _ in range(60):
        a, b = rng.sample(nodes, 2)
        got = ix.path(a, b, max_hops=12)
        try:
            want = nx.shortest_path_length(undirected, a, b)
        except nx.NetworkXNoPath:
            assert got["found"] is False
            continue
        assert got["found"] and got["hops"] == want, (a, b)
        walk = [a] + [s["to"] for s in got["steps"]]
        assert walk[-1] == b
        for s in got["steps"]:  # each step is a real edge, reported in its true direction
            edge = (s["from"], s["to"]) if s["direction"] == "out" else (s["to"], s["from"])
            rels = {r["rel"] for r in ix.show(edge[0])["relations"]
                    if r["direction"] == "out" and r["id"] == edge[1]}
            assert s["rel"] in rels
        assert ix.path(a, b, max_hops=12) == got  # deterministic
        all_paths = ix.path(a, b, max_hops=12, all_paths=True)
        assert all_paths["hops"] == want
        assert got["steps"] in all_paths["paths"] or len(all_paths["paths"]) == 100
        checked += 1
    assert checked > 30


def test_max_hops_bounds_the_search(synth_index: tuple[Any, Any]) -> None:
    import networkx as nx

    ix, undirected = synth_index
    lengths = dict(nx.all_pairs_shortest_path_length(undirected))
    a = sorted(undirected.nodes)[0]
    far = sorted(n for n, d in lengths[a].items() if d >= 3)
    assert far
    b = far[0]
    d = lengths[a][b]
    assert ix.path(a, b, max_hops=d)["hops"] == d
    assert ix.path(a, b, max_hops=d - 1)["found"] is False


def test_find_prefers_matches_and_falls_back_to_close_spellings(
        synth_index: tuple[Any, Any]) -> None:
    ix, undirected = synth_index
    eid = sorted(n for n in undirected.nodes if "-" in n)[0]
    hits = ix.find(eid)
    assert hits[0]["id"] == eid and hits[0]["score"] == 100.0
    typo = eid[:-1] + ("x" if eid[-1] != "x" else "y")
    close = ix.find(typo)
    assert close and all(h["score"] <= 40.0 for h in close)
    assert eid in {h["id"] for h in close}


@pytest.mark.parametrize("way", ["relative to each folder", "by whole path"])
def test_newest_mtime_sees_every_file(tmp_path: Any, way: str) -> None:
    import os

    from ecosystem_kg import query

    def newest(folder: Any) -> float:
        if way == "by whole path":
            return query._newest_by_path((folder,))
        return query.newest_mtime(folder)

    sub = tmp_path / "g" / "companies"
    deep = tmp_path / "g" / "places" / "cities"
    sub.mkdir(parents=True)
    deep.mkdir(parents=True)
    paths = [sub / f"e{i:05d}.yaml" for i in range(300)] + [deep / "shanghai.yaml"]
    for p in paths:
        p.write_text("id: x\n")
        os.utime(p, (1_000_000, 1_000_000))
    hidden = tmp_path / "g" / ".cache"
    hidden.write_text("")
    os.utime(hidden, (9_000_000, 9_000_000))  # hidden files do not count
    for d in (sub, deep, deep.parent, tmp_path / "g"):
        os.utime(d, (1_000_000, 1_000_000))
    assert newest(tmp_path / "g") == 1_000_000
    for k in (len(paths) - 1, len(paths) // 2, 0):
        os.utime(paths[k], (2_000_000 + k, 2_000_000 + k))
        assert newest(tmp_path / "g") == 2_000_000 + k
        os.utime(paths[k], (1_000_000, 1_000_000))
    os.utime(deep, (3_000_000, 3_000_000))  # a folder's own time counts (a file removed)
    assert newest(tmp_path / "g") == 3_000_000


def test_pinyin_keys_are_pypinyins_lazy_pinyin() -> None:
    # the key is built word by word with a cache; it must be what lazy_pinyin gives for the
    # whole text: polyphones read by their word (银行/行业), ü as v; none for text without Chinese
    from pathlib import Path

    import yaml
    from pypinyin import lazy_pinyin

    from ecosystem_kg.names import _CJK, normalize, pinyin_key

    texts = {"银行", "行业", "重庆", "绿色", "女足", "长江存储", "AI芯片2024", "沐曦 MetaX",
             "中芯国际（SMIC）", "〇", "乐乐", "朝阳", "略", "𠀀", "曦"}
    for f in (Path(__file__).resolve().parent.parent / "graph").rglob("*.yaml"):
        doc = yaml.safe_load(f.read_text(encoding="utf-8"))
        name = doc.get("name") or {}
        texts.update(t for t in (name.get("zh"), doc.get("title"), *(doc.get("aliases") or []))
                     if isinstance(t, str))
    assert len(texts) > 100
    for text in sorted(texts):
        if _CJK.search(text):
            assert pinyin_key(text) == normalize("".join(lazy_pinyin(text))), text
        else:
            assert pinyin_key(text) is None, text
    assert pinyin_key("银行") == "yinhang" and pinyin_key("行业") == "hangye"
    assert pinyin_key("MetaX") is None


def test_the_index_file_is_the_same_however_its_rows_come(tmp_path: Any) -> None:
    # a full build hands the writer every row at once (sorted in Python, written straight to
    # the tables); a rebuild adds them one by one, some copied from the previous index, in
    # any order (kept aside, then sorted by SQLite): the same bytes either way
    from pathlib import Path

    from ecosystem_kg import compile_graph
    from ecosystem_kg.index import IndexWriter, entity_rows

    c = compile_graph(Path(__file__).resolve().parents[1] / "graph")
    rows = [entity_rows(e, c.ontology) for e in c.entities]
    assert any(r[1] is None for r in rows) and any(r[2] for r in rows)
    meta = {"summary": "{}"}
    whole = IndexWriter(tmp_path / "whole.sqlite", c.ontology)
    whole.fill(list(reversed(rows)))
    whole.finish(meta)
    shuffled = rows[:]
    random.Random(4).shuffle(shuffled)
    one_by_one = IndexWriter(tmp_path / "one.sqlite", c.ontology)
    for r in shuffled[: len(rows) // 2]:
        one_by_one.add(r)
    one_by_one.fill(shuffled[len(rows) // 2:])  # rows came before: added as they are
    one_by_one.finish(meta)
    copied = IndexWriter(tmp_path / "copied.sqlite", c.ontology)
    copied.copy_from(tmp_path / "whole.sqlite", [r[0][0] for r in shuffled[::2]])
    for r in shuffled[1::2]:
        copied.add(r)
    copied.finish(meta)
    whole_bytes = (tmp_path / "whole.sqlite").read_bytes()
    assert (tmp_path / "one.sqlite").read_bytes() == whole_bytes
    assert (tmp_path / "copied.sqlite").read_bytes() == whole_bytes
