"""The per-file steps of a build take shortcuts for the usual case (text fields that hold
text, paths split at "/", dates already seen, pinyin segmentation in one function). Each
must give what the general way gives, and leave anything unusual to it."""

from __future__ import annotations

import json
import math
import re
from pathlib import PurePath
from typing import Any

import pytest

from ecosystem_kg import dates, names
from ecosystem_kg.index import edge_doc, entity_doc, entity_rows, name_rows
from ecosystem_kg.load import Entity, Fact, Quantity, Relation, parse_entity
from ecosystem_kg.ontology import bundled_ontology_dir, load_ontology
from ecosystem_kg.validate import _in_folder, _stem, validate_alone

ONTO = load_ontology(bundled_ontology_dir())


def _dumps(doc: Any) -> str:
    return json.dumps(doc, ensure_ascii=False, sort_keys=True)


@pytest.mark.parametrize("value", ["text", "引号\"和\\", 3, -7, 2.5, 1e300, math.inf, -math.inf,
                                   math.nan, True, False, None, {"b": 1, "a": [1, "x"]},
                                   [1, 2.0, "三"], 10**30])
def test_entity_doc_text_is_json_dumps(value: Any) -> None:
    facts = [Fact(prop="employees", value=value, unit="people", date="2024", sources=["s1"],
                  note="n", index=1),
             Fact(prop="founded", value=value, start="2020", end="2021-05", index=1)]
    e = Entity(id="x", type="Company", path="g/companies/x.yaml", name_zh="某", name_en="X",
               aliases=["甲", "B\u2028"], description={"zh": "中", "en": "e"}, wikidata="Q1",
               sources=["a", "b"], note="\x00 note", facts=facts)
    row = entity_rows(e, ONTO, rel="companies/x.yaml")[0]
    assert row[4] == _dumps(entity_doc(e, ONTO, rel="companies/x.yaml"))


@pytest.mark.parametrize("field,value", [("aliases", [1, "a"]), ("note", 5),
                                          ("wikidata", 8), ("description", {"en": 1}),
                                          ("description", {1: "x", "en": "y"}),
                                          ("sources", ("a", "b")), ("aliases", ("t",))])
def test_entity_doc_of_unusual_fields_is_json_dumps(field: str, value: Any) -> None:
    e = Entity(id="x", type="Company", path="g/companies/x.yaml", name_zh="", name_en="X")
    setattr(e, field, value)
    try:
        want = _dumps(entity_doc(e, ONTO, rel="companies/x.yaml"))
        name_rows(e.id, e.name_zh, e.name_en, e.aliases)
    except TypeError as exc:
        with pytest.raises(TypeError, match=re.escape(str(exc))):
            entity_rows(e, ONTO, rel="companies/x.yaml")
        return
    assert entity_rows(e, ONTO, rel="companies/x.yaml")[0][4] == want


def test_edge_doc_is_json_dumps() -> None:
    loc = ("f", 1, 1)
    for amount in (None, Quantity(3, "RMB_100M", loc), Quantity(math.nan, None, loc)):
        for note in (None, "", "注"):
            for role in (None, "", "lead"):
                r = Relation(rel="invests_in", target="y", sources=["s", "t"], note=note,
                             role=role, amount=amount)
                doc: dict[str, Any] = {"sources": r.sources}
                if amount is not None:
                    doc["amount"] = {"value": amount.value, "unit": amount.unit}
                if note:
                    doc["note"] = note
                if role:
                    doc["role"] = role
                assert edge_doc(r) == _dumps(doc)


@pytest.mark.parametrize("path", ["g/companies/x.yaml", "x.yaml", "a/b.c.yaml", "a/.hidden",
                                  "a/b.", "a/b/", "a/.", "a/..", "", "a//b.yml", "/abs/x.yaml",
                                  "a/b\\c.yaml", "noext"])
def test_stem_is_purepath_stem(path: str) -> None:
    assert _stem(path) == PurePath(path).stem


@pytest.mark.parametrize("rel", ["companies/x.yaml", "companies/sub/x.yaml", "x.yaml",
                                 "companies/", "companies/.", "companies//x.yaml",
                                 "./companies/x.yaml", "companiesx/y.yaml", "other/x.yaml",
                                 "companies/x/", "companies/..", ""])
@pytest.mark.parametrize("folder", ["companies", "a/b", ".", "companiesx"])
def test_in_folder_is_purepath_parts(rel: str, folder: str) -> None:
    parts = PurePath(rel).parts
    assert _in_folder(rel, folder) == (len(parts) == 2 and parts[0] == folder)


def test_check_date_remembers_valid_dates_only() -> None:
    for value in ["2024", "2024-02", "2024-02-29", "2023-02-29", "2024-13", "24", "2024-1-1",
                  "2024\n", "２０２４"]:
        first = dates._check_date(value)
        assert dates.check_date(value) == first
        assert dates.check_date(value) == first  # from the set the second time when valid
        assert (value in dates._VALID) == (first is None)
    with pytest.raises(TypeError):
        dates.check_date(2024)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["AbC-d_e", "Ｍｅｔａ Ｘ", "ÉCOLE", "Straße", "沐曦·MetaX", "",
                                  "A\u212a"])
def test_normalize_of_ascii_is_the_general_key(text: str) -> None:
    import unicodedata

    want = names._STRIP.sub("", unicodedata.normalize("NFKC", text).casefold())
    assert names.normalize(text) == want
    for bad in (1, None):
        with pytest.raises(TypeError):
            names.normalize(bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            names.pinyin_key(bad)  # type: ignore[arg-type]


def test_entity_of_unusual_values_keeps_its_problems() -> None:
    # values that are not text where text is usual: the general helpers say what is wrong
    raw = ("id: x\ntype: Company\nname: {zh: 1, en: true}\naliases: [a, 2, null, [b]]\n"
           "description: {en: 3, zh: [x], fr: y}\nwikidata: 5\nsource: {a: 1}\nnote: [n]\n"
           "attributes:\n  employees: {value: 3, unit: [u], date: 2024, source: s, note: 1}\n"
           "relations:\n  - {rel: 1, to: ' ', source: [a, 1, {b: c}], note: {}, role: 2,"
           " date: 2024-01-01, start: 2020, amount: {value: 1, unit: 2, x: 3}}\n"
           "  - {rel: invests_in, to: y, source: z, amount: 5}\n"
           "  - {rel: invests_in, to: y, source: [a], bogus: 1}\n  - 3\n")
    ent, problems = parse_entity(raw.encode(), "f.yaml", "x")
    assert ent is not None
    messages = [p.message for p in problems]
    assert "field 'en' must be text" in messages
    assert "items of 'aliases' must be text" in messages
    assert "field 'source' must be text or a list of text" in messages
    assert "field 'note' must be text" in messages
    assert "field 'to' is empty" in messages
    assert "'amount' must be a mapping with value and unit" in messages
    assert any(m.startswith("unknown field 'bogus' in a relation") for m in messages)
    assert any(m.startswith("unknown field 'fr' in 'description'") for m in messages)
    assert ent.name_zh == "1" and ent.aliases == ["a", "2"] and ent.wikidata == "5"
    assert [(r.rel, r.target, r.index) for r in ent.relations] == [("invests_in", "y", 1),
                                                                    ("invests_in", "y", 2)]
    assert ent.relations[0].sources == ["z"] and ent.facts[0].sources == ["s"]
    assert ent.facts[0].date == "2024" and ent.facts[0].note == "1"
    validate_alone(ent, ONTO, "companies/x.yaml")
