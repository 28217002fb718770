"""Synthetic graph folders for benchmarks and scale tests.

:func:`synth` writes ``n`` entity files (plus ``sources/``) in the same folder layout as the
shipped ``graph/``, valid against the bundled ontology: the shipped data's mix of types,
bilingual names, some aliases, a few attributes, and about six relations per entity whose
subjects and objects respect each relation's domain and range. Targets are drawn with
Zipf-like weights inside each type, so a few hubs (a city, an exchange, a big park) collect
most links and degrees are heavy-tailed, as in the real data.

Everything is drawn from one ``random.Random(seed)``: the same ``n`` and ``seed`` give the same
files byte for byte. Files are written as preformatted text (no YAML dumper), so 100,000
entities take seconds.
"""

from __future__ import annotations

import json
import random
from bisect import bisect_left
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path

from .ontology import Ontology, bundled_ontology_dir, load_ontology

# Relative share of each type (types missing from the ontology are skipped).
TYPE_WEIGHTS: dict[str, float] = {
    "Company": 9, "ChipDesigner": 7, "GPUMaker": 2, "ComputeProvider": 6, "ModelDeveloper": 7,
    "TelecomOperator": 1, "StateGroup": 2,
    "Fund": 3, "VentureCapital": 4, "StateInvestmentPlatform": 2,
    "GovernmentBody": 2, "Association": 2, "University": 2, "ResearchInstitute": 3,
    "Place": 2, "Park": 2, "ComputeCentre": 4,
    "Plan": 2, "Measure": 2, "Initiative": 1, "Standard": 1, "Report": 1,
    "Forum": 3, "Listing": 1, "Award": 1,
    "Product": 7, "Person": 5,
}
# How often a relation is picked when its domain allows it.
REL_WEIGHTS: dict[str, float] = {
    "located_in": 3, "headquartered_in": 3, "part_of": 0.5, "subsidiary_of": 1, "operates": 1.5,
    "hosts_chips_of": 3, "invested_in": 3, "listed_on": 0.7, "preparing_listing_on": 0.3,
    "member_of": 2, "issued_by": 3, "initiated_by": 1, "launched_at": 1, "released": 1.5,
    "made_by": 4, "uses": 2, "partner_of": 2.5, "executive_of": 4, "founded_by": 0.7,
    "spun_out_of": 0.5, "supports": 1.5, "organized_by": 3, "participated_in": 2.5,
    "held_in": 3, "received_award": 1, "applies_to": 2, "customer_of": 2,
}
ACYCLIC = ("part_of", "subsidiary_of")

# Name material: a character, its pinyin (for the English name and the id).
SYLLABLES = [
    ("华", "hua"), ("芯", "xin"), ("智", "zhi"), ("算", "suan"), ("云", "yun"), ("海", "hai"),
    ("天", "tian"), ("星", "xing"), ("启", "qi"), ("元", "yuan"), ("微", "wei"), ("图", "tu"),
    ("灵", "ling"), ("沐", "mu"), ("燧", "sui"), ("壁", "bi"), ("摩", "mo"), ("昆", "kun"),
    ("寒", "han"), ("鲲", "kun"), ("光", "guang"), ("量", "liang"), ("深", "shen"), ("蓝", "lan"),
    ("极", "ji"), ("速", "su"), ("源", "yuan"), ("泰", "tai"), ("恒", "heng"), ("通", "tong"),
    ("新", "xin"), ("东", "dong"), ("申", "shen"), ("浦", "pu"), ("明", "ming"), ("锐", "rui"),
    ("博", "bo"), ("瀚", "han"), ("晶", "jing"), ("谷", "gu"),
]
# type -> (Chinese suffix, English suffix)
SUFFIX: dict[str, tuple[str, str]] = {
    "Company": ("科技", "Technology"), "ChipDesigner": ("半导体", "Semiconductor"),
    "GPUMaker": ("图形芯片", "GPU"), "ComputeProvider": ("云计算", "Cloud"),
    "ModelDeveloper": ("智能", "AI"), "TelecomOperator": ("通信", "Telecom"),
    "StateGroup": ("集团", "Group"), "Fund": ("产业基金", "Industry Fund"),
    "VentureCapital": ("资本", "Capital"), "StateInvestmentPlatform": ("投资", "Investment"),
    "GovernmentBody": ("管理局", "Administration"), "Association": ("产业联盟", "Alliance"),
    "University": ("大学", "University"), "ResearchInstitute": ("研究院", "Institute"),
    "Place": ("区", "District"), "Park": ("产业园", "Park"),
    "ComputeCentre": ("智算中心", "Computing Centre"), "Plan": ("行动方案", "Action Plan"),
    "Measure": ("若干措施", "Measures"), "Initiative": ("倡议", "Initiative"),
    "Standard": ("标准", "Standard"), "Report": ("白皮书", "White Paper"),
    "Forum": ("峰会", "Summit"), "Listing": ("上市", "Listing"), "Award": ("创新奖", "Award"),
    "Product": ("加速卡", "Accelerator"), "Person": ("", ""),
}
SURNAMES = [("王", "Wang"), ("李", "Li"), ("张", "Zhang"), ("刘", "Liu"), ("陈", "Chen"),
            ("杨", "Yang"), ("赵", "Zhao"), ("黄", "Huang"), ("周", "Zhou"), ("吴", "Wu")]
# Named hubs placed first in their type, so they get the largest weights.
HUBS: dict[str, list[tuple[str, str, str, list[str]]]] = {
    "Place": [("shanghai", "上海", "Shanghai", ["上海市", "申城"]),
              ("pudong", "浦东新区", "Pudong New Area", ["浦东"])],
    "Park": [("lingang", "临港新片区", "Lingang Special Area", ["临港"]),
             ("zhangjiang", "张江科学城", "Zhangjiang Science City", ["张江"])],
    "StockExchange": [("sse", "上海证券交易所", "Shanghai Stock Exchange", ["上交所"]),
                      ("star-market", "科创板", "STAR Market", []),
                      ("hkex", "香港交易所", "Hong Kong Exchanges", ["港交所"])],
    "GovernmentBody": [("sheitc", "上海市经济和信息化委员会", "Shanghai Municipal Commission of "
                        "Economy and Informatization", ["上海市经信委"])],
}
PUBLISHERS = [("中国证券报", "China Securities Journal"), ("解放日报", "Jiefang Daily"),
              ("第一财经", "Yicai"), ("澎湃新闻", "The Paper"), ("经济日报", "Economic Daily"),
              ("青年报", "Youth Daily"), ("上海证券报", "Shanghai Securities News")]
FOCUS = ["GPU", "AI inference chips", "large models", "intelligent computing", "photonic chips",
         "data centres", "edge AI", "compute scheduling", "embodied AI"]


@dataclass
class _Ent:
    id: str
    type: str
    zh: str
    en: str
    aliases: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # relation items, preformatted


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(text, ensure_ascii=False)


def _date(rng: random.Random, lo: int = 2015, hi: int = 2026) -> str:
    y = rng.randint(lo, hi)
    r = rng.random()
    if r < 0.3:
        return str(y)
    m = 1 if y == 2026 else rng.randint(1, 12)  # the shipped data runs to early 2026
    if r < 0.7:
        return f"{y}-{m:02d}"
    return f"{y}-{m:02d}-{rng.randint(1, 28):02d}"


def _name(kind: str, k: int) -> tuple[str, str, str]:
    """The k-th name of a type: (zh, en, id stem); unique within the type."""
    n = len(SYLLABLES)
    if kind == "Person":
        s = SURNAMES[k % len(SURNAMES)]
        k //= len(SURNAMES)
        a = SYLLABLES[(k * 7) % n]
        b = SYLLABLES[(k // n * 11 + k) % n]
        extra = k // (n * n)
        zh = s[0] + a[0] + b[0]
        en = f"{s[1]} {a[1].capitalize()}{b[1]}"
        stem = f"{s[1]}-{a[1]}{b[1]}".lower()
        if extra:
            en += f" {extra + 1}"
            stem += f"-{extra + 1}"
        return zh, en, stem
    # two characters for the first n*n names of a type, three for the next n**3, ...;
    # a multiplier prime to n**length spreads consecutive k over different characters
    length, offset = 2, 0
    while k - offset >= n ** length:
        offset += n ** length
        length += 1
    x = ((k - offset) * 7919 + 13) % n ** length
    digits: list[tuple[str, str]] = []
    for _ in range(length):
        digits.append(SYLLABLES[x % n])
        x //= n
    word = "".join(d[1] for d in digits)
    zh_suffix, en_suffix = SUFFIX.get(kind, ("", kind))
    zh = "".join(d[0] for d in digits) + zh_suffix
    en = f"{word.capitalize()} {en_suffix}".strip()
    stem = (word + "-" + en_suffix.lower().replace(" ", "-")).strip("-")
    return zh, en, stem


def _type_counts(n: int, onto: Ontology) -> list[tuple[str, int]]:
    """How many entities of each type: hubs' types first, the rest shared by weight."""
    types = [t for t in sorted(TYPE_WEIGHTS) if t in onto.classes and onto.folder_of(t)]
    fixed = {"StockExchange": min(len(HUBS["StockExchange"]), max(1, n // 100))}
    if "StockExchange" not in onto.classes:
        fixed = {}
    rest = max(0, n - sum(fixed.values()))
    total = sum(TYPE_WEIGHTS[t] for t in types)
    counts = {t: int(rest * TYPE_WEIGHTS[t] / total) for t in types}
    # hand out what rounding left, biggest weights first (deterministic)
    short = rest - sum(counts.values())
    for t in sorted(types, key=lambda t: (-TYPE_WEIGHTS[t], t))[:short]:
        counts[t] += 1
    counts.update(fixed)
    return sorted((t, c) for t, c in counts.items() if c > 0)


def synth(n: int, out_dir: Path, *, seed: int = 0) -> None:
    """Write a synthetic graph folder of ``n`` entities (plus sources) to ``out_dir``.

    ``out_dir`` is created if needed; files already there with the same names are overwritten.
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    rng = random.Random(seed)
    onto = load_ontology(bundled_ontology_dir())

    # -- entities and names --------------------------------------------------------------
    ents: list[_Ent] = []
    by_type: dict[str, list[int]] = {}
    used_ids: set[str] = set()
    for kind, count in _type_counts(n, onto):
        hubs = HUBS.get(kind, [])
        for k in range(count):
            if k < len(hubs):
                eid, zh, en, aliases = hubs[k]
                aliases = list(aliases)
            else:
                zh, en, eid = _name(kind, k - len(hubs))
                aliases = []
                if kind != "Person" and rng.random() < 0.3:
                    aliases.append(zh[:2])  # a short name, as people say 沐曦 for 沐曦股份
                if kind != "Person" and rng.random() < 0.15:
                    aliases.append(en.split(" ")[0])
            base, i = eid, 2
            while eid in used_ids:
                eid = f"{base}-{i}"
                i += 1
            used_ids.add(eid)
            by_type.setdefault(kind, []).append(len(ents))
            ents.append(_Ent(eid, kind, zh, en, aliases))

    n_sources = max(5, n // 10)
    source_ids = [f"synth-news-{i:06d}" for i in range(n_sources)]

    # -- candidate targets per relation range, with Zipf weights inside each type --------
    weight: list[float] = [0.0] * len(ents)
    for idxs in by_type.values():
        for rank, i in enumerate(idxs, 1):
            weight[i] = 1.0 / rank ** 1.1
    cands_by_range: dict[tuple[str, ...], tuple[list[int], list[float]]] = {}

    def candidates(rng_classes: list[str]) -> tuple[list[int], list[float]]:
        key = tuple(rng_classes)
        got = cands_by_range.get(key)
        if got is None:
            idxs = [i for t in sorted(by_type) if onto.is_any(t, rng_classes)
                    for i in by_type[t]]
            got = (idxs, list(accumulate(weight[i] for i in idxs)))
            cands_by_range[key] = got
        return got

    rels_for_type: dict[str, tuple[list[str], list[float]]] = {}
    for kind in by_type:
        names = [r for r in sorted(onto.relations) if onto.is_any(kind, onto.relations[r].domain)
                 and any(onto.is_any(t, onto.relations[r].range) for t in by_type)]
        rels_for_type[kind] = (names, list(accumulate(REL_WEIGHTS.get(r, 1.0) for r in names)))

    # -- relations -------------------------------------------------------------------------
    for si, ent in enumerate(ents):
        names, cum = rels_for_type[ent.type]
        if not names:
            continue
        want = max(1, min(12, round(rng.expovariate(1 / 7))))
        seen: set[tuple[str, int]] = set()
        for _ in range(want * 2):
            if len(seen) >= want:
                break
            rel = names[bisect_left(cum, rng.random() * cum[-1])]
            idxs, cw = candidates(onto.relations[rel].range)
            if rel in ACYCLIC:  # only point "down" the list: no cycles possible
                hi = bisect_left(idxs, si)
                if hi == 0:
                    continue
                idxs, cw = idxs[:hi], cw[:hi]
            ti = idxs[min(len(idxs) - 1, bisect_left(cw, rng.random() * cw[-1]))]
            if ti == si or (rel, ti) in seen:
                continue
            seen.add((rel, ti))
            ent.lines.append(_relation(rng, rel, ents[ti].id, source_ids))

    # -- write -----------------------------------------------------------------------------
    out_dir.mkdir(parents=True, exist_ok=True)
    folders: dict[str, Path] = {}
    for ent in ents:
        folder = onto.folder_of(ent.type) or "misc"
        d = folders.get(folder)
        if d is None:
            d = folders[folder] = out_dir / folder
            d.mkdir(exist_ok=True)
        text = _entity_text(rng, ent, onto, source_ids)
        (d / f"{ent.id}.yaml").write_text(text, encoding="utf-8")
    src_dir = out_dir / "sources"
    src_dir.mkdir(exist_ok=True)
    for i, sid in enumerate(source_ids):
        zh_pub, en_pub = PUBLISHERS[i % len(PUBLISHERS)]
        date = _date(rng, 2020, 2026)
        text = (f"id: {sid}\ntype: Source\n"
                f"title: {_q(f'上海智算产业观察（第{i + 1}期）')}\n"
                f"title_en: {_q(f'Shanghai intelligent-computing watch, no. {i + 1}')}\n"
                f"publisher: {_q(zh_pub)}\npublisher_en: {_q(en_pub)}\n"
                f"date: {_q(date)}\nlanguage: zh\n"
                f"url: {_q(f'https://news.example.cn/synth/{i + 1}')}\n")
        (src_dir / f"{sid}.yaml").write_text(text, encoding="utf-8")


def _relation(rng: random.Random, rel: str, target: str, source_ids: list[str]) -> str:
    parts = [f"rel: {rel}", f"to: {target}"]
    r = rng.random()
    if r < 0.55:
        parts.append(f"date: {_q(_date(rng))}")
    elif r < 0.7:
        start = _date(rng, 2015, 2022)
        parts.append(f"start: {_q(start)}")
        if rng.random() < 0.5:
            parts.append(f"end: {_q(str(int(start[:4]) + rng.randint(1, 4)))}")
    srcs = sorted({source_ids[int(rng.paretovariate(1.2)) % len(source_ids)]
                   for _ in range(rng.randint(1, 2))})
    parts.append(f"source: [{', '.join(srcs)}]")
    if rel == "executive_of":
        parts.append(f"role: {_q(rng.choice(['董事长', '首席执行官', '首席技术官', '总经理']))}")
    return "  - {" + ", ".join(parts) + "}\n"


def _entity_text(rng: random.Random, ent: _Ent, onto: Ontology, source_ids: list[str]) -> str:
    src = source_ids[rng.randrange(len(source_ids))]
    out = [f"id: {ent.id}\ntype: {ent.type}\nname:\n  zh: {_q(ent.zh)}\n  en: {_q(ent.en)}\n"]
    if ent.aliases:
        out.append(f"aliases: [{', '.join(_q(a) for a in ent.aliases)}]\n")
    cls = onto.classes[ent.type]
    out.append(f"description:\n  en: {_q(f'Synthetic {cls.label_en.lower()} for scale tests.')}\n"
               f"  zh: {_q(f'用于规模测试的合成{cls.label_zh}。')}\n")
    out.append(f"source: [{src}]\n")
    attrs: list[str] = []

    def fits(prop: str) -> bool:
        info = onto.attributes.get(prop)
        return info is not None and onto.is_any(ent.type, info.domain)

    if ent.type != "Person" and fits("founded") and rng.random() < 0.6:
        attrs.append(f"  founded: {{value: {_q(_date(rng, 1990, 2025))}, source: {src}}}\n")
    if fits("focus") and rng.random() < 0.4:
        attrs.append(f"  focus: {_q(rng.choice(FOCUS))}\n")
    if fits("employees") and "person" in onto.attributes["employees"].units \
            and rng.random() < 0.3:
        attrs.append(f"  employees: {{value: {rng.randint(20, 5000)}, unit: person, "
                     f"date: {_q(_date(rng, 2022, 2026))}, source: {src}}}\n")
    if ent.type == "ComputeCentre" and fits("compute_capacity") \
            and "PFLOPS" in onto.attributes["compute_capacity"].units:
        attrs.append(f"  compute_capacity:\n    - {{value: {rng.randint(50, 5000)}, "
                     f"unit: PFLOPS, date: {_q(_date(rng, 2023, 2026))}, source: {src}}}\n")
    if attrs:
        out.append("attributes:\n")
        out.extend(attrs)
    if ent.lines:
        out.append("relations:\n")
        out.extend(ent.lines)
    return "".join(out)
