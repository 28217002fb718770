"""The shipped dataset: competency questions an analyst asks, answered through the library API
with the answers the source articles give, and data-quality rules every statement must meet."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, SHIPPED

SEEDS = ROOT.parent / "shared" / "seeds"


@pytest.fixture(scope="module")
def ix(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The shipped graph, built once into a private folder (no HTML)."""
    from ecosystem_kg import build, open_index

    base = tmp_path_factory.mktemp("shipped")
    graph = base / "graph"
    shutil.copytree(SHIPPED, graph)
    build(graph, base / "build", html=False)
    return open_index(graph, base / "build")


@pytest.fixture(scope="module")
def compiled() -> Any:
    from ecosystem_kg import compile_graph

    return compile_graph(SHIPPED)


def rels(ix: Any, entity: str, rel: str, direction: str = "out") -> dict[str, dict[str, Any]]:
    """The entity's relations of one kind, keyed by the other end's id."""
    return {r["id"]: r for r in ix.show(entity)["relations"]
            if r["rel"] == rel and r["direction"] == direction}


def attr(ix: Any, entity: str, name: str) -> list[dict[str, Any]]:
    return [a for a in ix.show(entity)["attributes"] if a["attribute"] == name]


def source_ids(statement: dict[str, Any]) -> set[str]:
    return {s["id"] for s in statement["sources"]}


# -- competency questions ------------------------------------------------------------------


def test_q01_gpu_makers_listed_in_hong_kong_and_when(ix: Any) -> None:
    """Which Shanghai GPU makers listed in Hong Kong, and when?"""
    gpu_makers = {e["id"] for e in ix.list_entities("GPUMaker")}
    listed = {r["id"]: r["date"] for r in ix.show("hkex")["relations"]
              if r["rel"] == "listed_on" and r["direction"] == "in" and r["id"] in gpu_makers}
    assert listed == {"biren": "2026-01-02", "iluvatar-corex": "2026-01-08"}


def test_q02_who_else_listed_in_hong_kong_in_january_2026(ix: Any) -> None:
    """Which companies listed on HKEX in January 2026 (the Shanghai AI wave)?"""
    rows = ix.timeline(start="2026-01-01", end="2026-01-31", rels=["listed_on"])
    got = [(r["subject"]["id"], r["date"]) for r in rows if r["object"]["id"] == "hkex"]
    assert got == [("biren", "2026-01-02"), ("iluvatar-corex", "2026-01-08"),
                   ("minimax", "2026-01-09")]
    assert ix.show("稀宇科技")["id"] == "minimax"


def test_q03_the_four_little_dragons(ix: Any) -> None:
    """Who are Shanghai's four GPU 'little dragons', and where did each list?"""
    members = rels(ix, "shanghai-gpu-four-little-dragons", "member_of", "in")
    assert set(members) == {"metax", "biren", "iluvatar-corex", "enflame"}
    assert rels(ix, "metax", "listed_on")["star-market"]["date"] == "2025-12"
    assert "hkex" not in rels(ix, "enflame", "listed_on")


def test_q04_who_invested_in_metax_and_how_much(ix: Any) -> None:
    investors = rels(ix, "沐曦", "invested_in", "in")
    assert set(investors) == {"pudong-venture-capital"}
    stake = investors["pudong-venture-capital"]
    assert stake["amount"] == {"value": 5, "unit": "RMB_100M"}  # 5亿元
    assert stake["role"] == "strategic investor"
    assert source_ids(stake) == {"yuanchuan-2026-01-08"}
    founders = rels(ix, "metax", "founded_by")
    assert set(founders) == {"chen-weiliang"}


def test_q05_metax_first_day_gain(ix: Any) -> None:
    gain = attr(ix, "metax", "price_change")
    assert [(a["value"], a["unit"], a["date"]) for a in gain] == [(700, "percent", "2025-12")]


def test_q06_what_compute_sits_in_lingang(ix: Any) -> None:
    """What compute sits in Lingang, who runs it and whose chips does it use?"""
    centres = {r["id"] for r in ix.neighbors("lingang", rels=["located_in"])
               if r["type"] == "ComputeCentre"}
    assert centres == {"sensecore", "china-telecom-lingang-computing-centre"}
    assert [(a["value"], a["unit"]) for a in attr(ix, "sensecore", "compute_capacity")] == [
        (12000, "PFLOPS")]
    assert set(rels(ix, "china-telecom-lingang-computing-centre", "hosts_chips_of")) == {
        "metax", "biren"}
    assert set(rels(ix, "sensecore", "operates", "in")) == {"sensetime"}
    assert set(rels(ix, "china-telecom-lingang-computing-centre", "operates", "in")) == {
        "china-telecom"}


def test_q07_which_policy_funds_compute_vouchers_and_with_how_much(ix: Any) -> None:
    funders = rels(ix, "算力券", "supports", "in")
    assert set(funders) == {"ai-application-measures-2025"}
    measure = ix.show("ai-application-measures-2025")
    budget = [a for a in measure["attributes"] if a["attribute"] == "budget"]
    assert [(a["value"], a["unit"]) for a in budget] == [(6, "RMB_100M")]  # 6亿元
    assert rels(ix, "ai-application-measures-2025", "issued_by")["shanghai"]["date"] == (
        "2025-07-28")
    assert "minimax" in rels(ix, "compute-vouchers", "supports")


def test_q08_what_was_launched_at_the_forum_and_by_whom(ix: Any) -> None:
    launched = rels(ix, "zhisuan-shencheng-forum-2026", "launched_at", "in")
    assert {"shanghai-zhisuan-initiative-2026", "report-shanghai-intelligent-compute-2026",
            "compute-economy-co-creation-system", "ai-data-ecosystem-open-plaza",
            "industry-dynamic-map", "science-intelligence-compute-support-plan",
            "agent-system-capability-grading-standard"} <= set(launched)
    assert {r["date"] for r in launched.values()} == {"2026-01-27"}
    publishers = rels(ix, "compute-economy-co-creation-system", "initiated_by")
    assert set(publishers) == {"caict", "china-telecom-shanghai", "china-mobile-shanghai",
                               "china-unicom-shanghai"}
    assert publishers["caict"]["role"].startswith("lead")
    assert set(rels(ix, "ai-data-ecosystem-open-plaza", "initiated_by")) == {
        "china-mobile-shanghai"}


def test_q09_who_took_part_in_the_forum(ix: Any) -> None:
    present = rels(ix, "zhisuan-shencheng-forum-2026", "participated_in", "in")
    assert {"metax", "biren", "iluvatar-corex", "sensetime", "inesa", "caict",
            "china-telecom-shanghai", "china-mobile-shanghai", "china-unicom-shanghai"} <= set(
        present)
    assert rels(ix, "zhisuan-shencheng-forum-2026", "held_in")["shanghai"]["date"] == (
        "2026-01-27")


def test_q10_how_pudong_money_reaches_lingang_compute(ix: Any) -> None:
    route = ix.path("浦东创投", "临港")
    assert route["found"] and route["hops"] == 3
    assert [(s["from"], s["rel"], s["to"]) for s in route["steps"]] == [
        ("pudong-venture-capital", "invested_in", "metax"),
        ("metax", "hosts_chips_of", "china-telecom-lingang-computing-centre"),
        ("china-telecom-lingang-computing-centre", "located_in", "lingang"),
    ]


def test_q11_the_best_connected_entity_is_the_city(ix: Any) -> None:
    top = ix.rank(by="degree", top=2)
    assert [r["id"] for r in top] == ["shanghai", "zhisuan-shencheng-forum-2026"]


def test_q12_shanghai_compute_and_industry_figures(ix: Any) -> None:
    figures = {a["attribute"]: (a["value"], a.get("unit"), a.get("date"))
               for a in ix.show("shanghai")["attributes"]}
    assert figures["compute_capacity"] == (120000, "PFLOPS", "2026-01")
    assert figures["industry_size"] == (5500, "RMB_100M", "2025")
    assert figures["revenue"] == (4354.92, "RMB_100M", "2025")
    scheduling = attr(ix, "shanghai-compute-scheduling-platform", "compute_capacity")
    assert [(a["value"], a["unit"]) for a in scheduling] == [(20000, "PFLOPS")]


def test_q13_ucloud_qingpu_centre(ix: Any) -> None:
    """Where is UCloud's compute, and how big is it?"""
    assert set(rels(ix, "ucloud", "operates")) == {"ucloud-qingpu-centre"}
    assert set(rels(ix, "ucloud-qingpu-centre", "located_in")) == {"qingpu"}
    racks = attr(ix, "ucloud-qingpu-centre", "racks")
    assert [(a["value"], a["unit"]) for a in racks] == [(2000, "rack")]


def test_q14_who_runs_inesa_and_what_it_operates(ix: Any) -> None:
    assert set(rels(ix, "inesa", "operates")) == {
        "inesa-intelligent-computing-cloud", "inesa-compute-scheduling-service-platform",
        "inesa-10k-card-cluster"}
    execs = rels(ix, "inesa", "executive_of", "in")
    assert "zhang-jianming" in execs and "总裁" in execs["zhang-jianming"]["role"]


def test_q15_jingan_parks_and_their_operators(ix: Any) -> None:
    assert set(rels(ix, "shibei-hi-tech-park", "operates", "in")) == {"shibei-group"}
    assert set(rels(ix, "daning-zone", "operates", "in")) == {"daning-group"}
    assert set(rels(ix, "suhewan-zone", "operates", "in")) == {"suhewan-group"}
    power = attr(ix, "shibei-hi-tech-park", "power_capacity")
    assert [(a["value"], a["unit"], a["date"]) for a in power] == [(22000, "kVA", "2023")]


def test_q16_star_market_listings_with_dates(ix: Any) -> None:
    listed = {r["id"]: r["date"] for r in ix.show("star-market")["relations"]
              if r["rel"] == "listed_on" and r["direction"] == "in"}
    assert listed["metax"] == "2025-12"
    assert listed["intellifusion"] == "2023-04"


def test_q17_who_backed_intellifusion_in_daning(ix: Any) -> None:
    backers = rels(ix, "intellifusion", "invested_in", "in")
    assert set(backers) == {"daning-group"}
    assert backers["daning-group"]["date"] == "2023"


def test_q18_executives_of_iluvatar_corex(ix: Any) -> None:
    execs = rels(ix, "天数智芯", "executive_of", "in")
    assert set(execs) == {"yu-xuesong", "shan-tianyi", "zou-qiao"}


# -- data quality --------------------------------------------------------------------------


def test_every_entity_has_both_names_a_description_and_a_source(compiled: Any) -> None:
    missing = [(e.id, what) for e in compiled.entities if not e.is_source
               for what, ok in (("zh name", e.name_zh), ("en name", e.name_en),
                                ("description", e.description), ("source", e.sources))
               if not ok]
    assert missing == []


def test_every_statement_cites_a_registered_source(compiled: Any) -> None:
    registry = {e.id for e in compiled.entities if e.is_source}
    assert len(registry) == 5
    unsourced, unknown = [], []
    for e in compiled.entities:
        if e.is_source:
            continue
        for s in [*e.relations, *e.facts]:
            if not s.sources:
                unsourced.append((e.id, getattr(s, "rel", None) or getattr(s, "prop", "")))
            unknown.extend(x for x in s.sources if x not in registry)
        unknown.extend(x for x in e.sources if x not in registry)
    assert unsourced == [] and unknown == []


def test_every_source_is_cited_and_describes_its_article(compiled: Any) -> None:
    cited = {x for e in compiled.entities for s in [*e.relations, *e.facts] for x in s.sources}
    for src in (e for e in compiled.entities if e.is_source):
        assert src.id in cited
        for key in ("title", "publisher", "date", "language", "file"):
            assert src.extra.get(key), (src.id, key)


def test_no_orphans_without_a_note(compiled: Any) -> None:
    linked = {e.id for e in compiled.entities for r in e.relations} | {
        r.target for e in compiled.entities for r in e.relations}
    orphans = [e.id for e in compiled.entities
               if not e.is_source and e.id not in linked and not e.note]
    assert orphans == []


def test_dataset_size_and_mix(ix: Any) -> None:
    stats = ix.stats()
    assert stats["entities"] > 150 and stats["relations"] > 250
    assert stats["dated_relations"] > 80 and stats["attribute_facts"] > 50
    for t in ("GPUMaker", "ComputeCentre", "Park", "Fund", "Forum", "StockExchange", "Person"):
        assert stats["by_type"].get(t), t


def _compact(text: str) -> str:
    return re.sub(r"[\s\"'“”‘’「」,，.。:：;；()（）、]+", "", text)


def _copied_run(text: str, article: str, window: int = 30) -> str | None:
    flat = _compact(text)
    for i in range(0, len(flat) - window + 1):
        if flat[i:i + window] in article:
            return flat[i:i + window]
    return None


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the source articles are not beside the project")
def test_descriptions_and_notes_are_not_copied_from_the_articles(compiled: Any) -> None:
    """Facts carry over, sentences do not: no run of 30 characters is taken from an article."""
    article = "".join(_compact(p.read_text(encoding="utf-8")) for p in sorted(SEEDS.glob("*.txt")))
    assert len(article) > 10_000
    texts: list[tuple[str, str]] = []
    for e in compiled.entities:
        texts.extend((e.id, t) for t in e.description.values())
        texts.extend((e.id, s.note) for s in [*e.relations, *e.facts] if s.note)
        if e.note:
            texts.append((e.id, e.note))
    copied = [(eid, run) for eid, text in texts if (run := _copied_run(text, article))]
    # The check itself finds a sentence lifted from an article, even re-spaced.
    planted = " ".join(SEEDS.joinpath("001_e78719298bb10bf9.txt").read_text(
        encoding="utf-8").split("。")[3])
    assert _copied_run(planted, article)
    assert copied == []


def test_seed_files_named_by_the_registry_exist(compiled: Any) -> None:
    if not SEEDS.is_dir():
        pytest.skip("the source articles are not beside the project")
    for src in (e for e in compiled.entities if e.is_source):
        assert (SEEDS / str(src.extra["file"])).is_file(), src.id


def test_shipped_graph_paths(compiled: Any) -> None:
    """One entity a file, filed under the folder of its kind."""
    assert len({e.path for e in compiled.entities}) == len(compiled.entities)
    assert all(Path(e.path).suffix == ".yaml" for e in compiled.entities)
