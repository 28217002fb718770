"""The hand-written serializers against plain reference implementations: the JSON-LD text is
exactly ``json.dumps`` of the node objects, and every format parses back to the same graph,
also for literals that need escaping."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import rdflib
from rdflib.compare import isomorphic

from ecosystem_kg import compile_graph
from ecosystem_kg.compile import (
    RDF,
    XSD,
    Triple,
    _compact,
    by_subject,
    jsonld_nodes,
    to_jsonld,
    to_ntriples,
    to_rdflib,
    to_turtle,
    turtle_body,
)

ROOT = Path(__file__).resolve().parent.parent
B = "https://w3id.org/ecosystem-kg/id/"


def reference_jsonld_nodes(triples: list[Triple]) -> list[str]:
    """JSON-LD node objects the obvious way: dicts, then json.dumps with sorted keys."""
    nodes = []
    for s, preds in by_subject(triples).items():
        node: dict[str, Any] = {"@id": _compact(s)}
        for p, objs in preds.items():
            if p == RDF + "type":
                node["@type"] = sorted(_compact(o[1]) for o in objs if o[0] == "i")
                continue
            vals = []
            for o in objs:
                if o[0] == "i":
                    vals.append({"@id": _compact(o[1])})
                    continue
                v = {"@value": o[1]}
                if o[2]:
                    v["@language"] = o[2]
                elif o[3] and o[3] != XSD + "string":
                    v["@type"] = _compact(o[3])
                vals.append(v)
            vals.sort(key=lambda v: (v.get("@id", ""), v.get("@value", ""),
                                     v.get("@language", ""), v.get("@type", "")))
            node[_compact(p)] = vals
        nodes.append(json.dumps(node, ensure_ascii=False, sort_keys=True,
                                separators=(",", ":")))
    return nodes


EKG = "https://w3id.org/ecosystem-kg/ontology#"

AWKWARD = [  # literals and IRIs that need escaping or sort unusually
    (B + "x", RDF + "type", ("i", "https://w3id.org/ecosystem-kg/ontology#Company")),
    (B + "x", RDF + "type", ("i", "https://w3id.org/ecosystem-kg/ontology#GPUMaker")),
    (B + "x", "http://www.w3.org/2000/01/rdf-schema#label", ("l", 'say "hi"\\ now', "en", "")),
    (B + "x", "http://www.w3.org/2000/01/rdf-schema#label", ("l", "两行\n文字\t和\r", "zh", "")),
    (B + "x", "http://www.w3.org/2000/01/rdf-schema#label", ("l", "\x7f\x1f bell\x08", "", "")),
    (B + "x", "http://www.w3.org/2004/02/skos/core#note", ("l", "</script><b>x</b>", "", "")),
    (B + "x", "http://www.w3.org/2004/02/skos/core#note", ("l", "plain", "", XSD + "string")),
    (B + "x", EKG + "date", ("l", "2026-01", "", XSD + "gYearMonth")),
    (B + "x", "https://w3id.org/ecosystem-kg/ontology#amount", ("l", "1.5", "", XSD + "decimal")),
    (B + "x", "https://example.org/not-a-prefix#p", ("i", "https://example.org/o/b")),
    (B + "x", "https://w3id.org/ecosystem-kg/ontology#located_in", ("i", B + "z")),
    (B + "x", "https://w3id.org/ecosystem-kg/ontology#located_in", ("i", B + "a")),
    (B + "stmt/x/located_in/a", RDF + "type",
     ("i", "https://w3id.org/ecosystem-kg/ontology#Statement")),
    (B + "stmt/x/located_in/a", RDF + "object", ("i", B + "a")),
]


@pytest.fixture(scope="module")
def shipped() -> list[Triple]:
    return compile_graph(ROOT / "graph").triples


def test_jsonld_nodes_equal_json_dumps_of_the_node_objects(shipped: list[Triple]) -> None:
    triples = sorted(set(shipped))
    assert jsonld_nodes(triples) == reference_jsonld_nodes(triples)
    assert jsonld_nodes(by_subject(triples)) == reference_jsonld_nodes(triples)
    awkward = sorted(AWKWARD)
    assert jsonld_nodes(awkward) == reference_jsonld_nodes(awkward)


def test_turtle_body_is_the_same_grouped_or_not(shipped: list[Triple]) -> None:
    triples = sorted(set(shipped))
    assert turtle_body(triples) == turtle_body(by_subject(triples))


@pytest.mark.parametrize("triples", ["shipped", "awkward"])
def test_every_format_parses_back_to_the_same_graph(shipped: list[Triple], triples: str) -> None:
    ts = sorted(set(shipped)) if triples == "shipped" else sorted(AWKWARD)
    # an explicit xsd:string is written as a plain literal (the same in RDF 1.1), which rdflib
    # compares as different: leave it to the JSON-LD equality test above
    ts = [t for t in ts if t[2][0] == "i" or t[2][3] != XSD + "string"]
    expected = to_rdflib(ts)
    for fmt, text in (("nt", to_ntriples(ts)), ("turtle", to_turtle(ts)),
                      ("json-ld", to_jsonld(ts))):
        g = rdflib.Graph().parse(data=text, format=fmt)
        assert len(g) == len(ts), fmt
        assert isomorphic(g, expected), fmt


def test_graphml_escaping_equals_the_standard_library() -> None:
    from itertools import product
    from xml.sax.saxutils import escape, quoteattr

    from ecosystem_kg.compile import _xml_attr, _xml_text

    for n in range(4):  # every string of up to three of these characters
        for chars in product("a&<>\"'\n\r\t 中", repeat=n):
            text = "".join(chars)
            assert _xml_text(text) == escape(text)
            assert _xml_attr(text) == quoteattr(text)


def test_edge_documents_equal_json_dumps() -> None:
    from ecosystem_kg.errors import SourceLocation
    from ecosystem_kg.index import edge_doc
    from ecosystem_kg.load import Quantity, Relation

    texts = ["", "plain", '引号"与\\反斜杠', "line\nbreak\ttab", "\u2028", "\x7f", "𝔘"]
    here = SourceLocation("f")
    amounts = [None, Quantity(12, "CNY-100M", here), Quantity(1.5, None, here),
               Quantity("约10", "亿元", here)]
    for note, role, amount in [(n, r, a) for n in texts for r in texts[:3] for a in amounts]:
        r = Relation(rel="fundedBy", target="x", note=note or None, role=role or None,
                     amount=amount, sources=[t for t in texts if t][:3])
        doc: dict[str, Any] = {"sources": list(r.sources)}
        if r.note:
            doc["note"] = r.note
        if r.role:
            doc["role"] = r.role
        if amount is not None:
            doc["amount"] = {"value": amount.value, "unit": amount.unit}
        assert edge_doc(r) == json.dumps(doc, ensure_ascii=False, sort_keys=True)
        assert json.loads(edge_doc(r)) == doc


def test_jsonld_members_with_one_key_are_ordered_by_value() -> None:
    # two predicates that compact to the same key ("id:p"): rare, but the text stays the same
    # whatever order the triples come in
    s = B + "y"
    triples = [(s, "id:p", ("l", "b", "", "")), (s, B + "p", ("l", "a", "", ""))]
    expected = ['{"@id":"id:y","id:p":[{"@value":"a"}],"id:p":[{"@value":"b"}]}']
    assert jsonld_nodes(triples) == expected
    assert jsonld_nodes(triples[::-1]) == expected


def test_entity_groups_are_the_sorted_unique_triples_grouped() -> None:
    # each entity's triples are made grouped; flattened, they are sorted and unique, and the
    # N-Triples written from the groups are those of the flat triples
    from ecosystem_kg.compile import entity_chunk, entity_groups, ntriples_body
    from ecosystem_kg.pipeline import check

    loaded = check(ROOT / "graph")
    for ent in loaded.entities:
        groups = entity_groups(ent, loaded.ontology)
        chunk = entity_chunk(ent, loaded.ontology)
        assert chunk == sorted(set(chunk)), ent.id
        assert by_subject(chunk) == groups, ent.id
        assert ntriples_body(groups) == to_ntriples(chunk), ent.id


def test_statements_with_one_iri_are_merged_not_lost() -> None:
    # a fact's statement IRI ends with its index and a relation's with its target; ids start
    # with a letter, so they cannot meet in a valid graph, but if they did, nothing is dropped
    from ecosystem_kg.compile import STMT, entity_groups
    from ecosystem_kg.load import Entity, Fact, Relation
    from ecosystem_kg.ontology import bundled_ontology_dir, load_ontology

    onto = load_ontology(bundled_ontology_dir())
    ent = Entity("x", "Company", "x.yaml", name_en="X",
                 facts=[Fact(prop="founded", value="2020", index=1, sources=["s1"])],
                 relations=[Relation(rel="founded", target="1", index=1, sources=["s2"])])
    stmt = entity_groups(ent, onto)[STMT + "x/founded/1"]
    assert sorted(stmt[RDF + "object"]) == [("i", B + "1"), ("l", "2020", "", XSD + "gYear")]
    assert stmt["http://www.w3.org/ns/prov#wasDerivedFrom"] == [("i", B + "s1"), ("i", B + "s2")]


def test_esc_equals_the_regular_expression_everywhere() -> None:
    # _esc looks for what it escapes without the regular expression when it can: the same text
    from itertools import product

    from ecosystem_kg.compile import _ESC, _ESC_RE, _esc

    def reference(text: str) -> str:
        return _ESC_RE.sub(lambda m: _ESC.get(m.group(), f"\\u{ord(m.group()):04X}"), text)

    chars = 'a"\\\n\r\t\x00\x08\x0b\x1f\x7f\x85\xa0\u2028\u3000中𝔘 '
    for n in range(3):
        for parts in product(chars, repeat=n):
            text = "".join(parts)
            assert _esc(text) == reference(text), repr(text)


def _written(groups: Any) -> tuple[str, str, str]:
    from ecosystem_kg.compile import JSONLD_SEP, ntriples_body

    return ntriples_body(groups), turtle_body(groups), JSONLD_SEP.join(jsonld_nodes(groups))


def test_group_texts_are_the_three_serializers_at_once(shipped: list[Triple]) -> None:
    from ecosystem_kg.compile import group_texts

    same_key = [(B + "y", "id:p", ("l", "b", "", "")), (B + "y", B + "p", ("l", "a", "", ""))]
    objects = [("i", B + "b"), ("i", B + "a"), ("i", B + "b"), ("l", "x", "", ""),
               ("l", "x", "", XSD + "string")]
    repeated = [(B + "x", EKG + "p", o) for o in objects]
    for triples in (sorted(set(shipped)), sorted(AWKWARD), AWKWARD[::-1], same_key, repeated, []):
        groups = by_subject(triples)
        assert group_texts(groups) == _written(groups)
    odd = {B + "x": {RDF + "type": [], EKG + "p": []}, B + "y": {}}  # (no grouping makes these)
    assert group_texts(odd) == _written(odd)


def test_entity_texts_are_the_entity_groups_written() -> None:
    # entity_texts writes an entity's statements directly: the same texts and number of triples
    # as the serializers of entity_groups, for every entity of the graph and for statements with
    # every optional part (which puts each part in its place in each format)
    from ecosystem_kg.compile import entity_chunk, entity_groups, entity_texts
    from ecosystem_kg.errors import SourceLocation
    from ecosystem_kg.load import Entity, Fact, Quantity, Relation
    from ecosystem_kg.pipeline import check

    loaded = check(ROOT / "graph")
    here = SourceLocation("f")
    made = [
        Entity("x", "Company", "x.yaml", name_zh="某公司", name_en='The "X"',
               aliases=["X 公司", "X"], description={"en": "line\nbreak", "zh": "描述"},
               wikidata="Q1", sources=["s2", "s1"], note="say \\ hi",
               facts=[Fact(prop="employees", value=1200, unit="RMB", index=1, sources=["s1"]),
                      Fact(prop="revenue", value=1.5e20, index=1, date="2020", note="n"),
                      Fact(prop="founded", value="2001-02", index=1, start="2001",
                           end="2002-03-04"),
                      Fact(prop="website", value="https://x.example/a?b", index=1),
                      Fact(prop="legal_name", value="某 公司", index=1, sources=["b", "a", "b"]),
                      Fact(prop="stock_code", value="X1", index=1),
                      Fact(prop="unknown", value=3, index=1)],
               relations=[Relation(rel="invested_in", target="y", index=1, role="领投",
                                   amount=Quantity(12.5, "RMB_100M", here), note='a "note"',
                                   date="2021-05", start="2020", end="2022-01-02",
                                   sources=["s3", "s1", "s2", "s1"]),
                          Relation(rel="invested_in", target="y", index=2, role="lead",
                                   amount=Quantity("约10", "RMB", here)),
                          Relation(rel="invested_in", target="a", index=1,
                                   amount=Quantity(7, "nope", here), sources=["s1"]),
                          Relation(rel="partner_of", target="y", index=1),
                          Relation(rel="partner_of", target="y", index=2)]),
        Entity("y", "Company", "y.yaml", name_en="Y",  # statements with one IRI: merged
               facts=[Fact(prop="founded", value="2020", index=1, sources=["s1"])],
               relations=[Relation(rel="founded", target="1", index=1, sources=["s2"])]),
        Entity("s", "Source", "s.yaml", extra={"title": "标题", "title_en": "Title",
                                               "authors": ["A", "乙"], "date": "2020-01",
                                               "url": "https://e.example", "file": "f.pdf",
                                               "publisher": "P", "language": "zh"}),
    ]
    for ent in [*loaded.entities, *made]:
        groups = entity_groups(ent, loaded.ontology)
        chunk = entity_chunk(ent, loaded.ontology)
        assert chunk == sorted(set(chunk)), ent.id
        assert entity_texts(ent, loaded.ontology) == (len(chunk), *_written(groups)), ent.id
