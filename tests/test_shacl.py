"""SHACL shapes (ontology/shapes.ttl) and their located problems (ecosystem_kg.shacl).

Each kind of shape is broken by tampering with the compiled mini graph, and the violation must
come back as a Problem at the YAML file:line:col the node was written at.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ecosystem_kg.errors import EkgError, Problem, SourceLocation, ValidationFailed
from ecosystem_kg.ontology import EKG, THING, load_ontology
from ecosystem_kg.pipeline import Loaded, check, load_graph

from .conftest import MINI, ROOT, SHIPPED

rdflib = pytest.importorskip("rdflib")
from rdflib import Literal, URIRef  # noqa: E402

# plain namespaces: pytest's collection probes module attributes, which rdflib's closed
# namespaces answer with warnings
RDF = rdflib.Namespace("http://www.w3.org/1999/02/22-rdf-syntax-ns#")
RDFS = rdflib.Namespace("http://www.w3.org/2000/01/rdf-schema#")
XSD = rdflib.Namespace("http://www.w3.org/2001/XMLSchema#")
SKOS = rdflib.Namespace("http://www.w3.org/2004/02/skos/core#")
PROV = rdflib.Namespace("http://www.w3.org/ns/prov#")
DCTERMS = rdflib.Namespace("http://purl.org/dc/terms/")

ONTO = ROOT / "ontology"
SHAPES_TTL = ONTO / "shapes.ttl"
ID = "https://w3id.org/ecosystem-kg/id/"
SHAPES_NS = "https://w3id.org/ecosystem-kg/shapes#"
SH = rdflib.Namespace("http://www.w3.org/ns/shacl#")
E = rdflib.Namespace(ID)
K = rdflib.Namespace(EKG)
SCHEMA = rdflib.Namespace("https://schema.org/")


def stmt(tail: str) -> URIRef:
    return URIRef(ID + "stmt/" + tail)


def where(p: Problem) -> str:
    """folder/file:line:col, independent of the current directory."""
    f = Path(p.location.file)
    return f"{f.parent.name}/{f.name}:{p.location.line}:{p.location.col}"


# ---------------------------------------------------------------------------------------------
# The shapes file itself (no pyshacl needed)
# ---------------------------------------------------------------------------------------------


def _shapes() -> Any:
    return rdflib.Graph().parse(SHAPES_TTL, format="turtle")


def _classes_of(g: Any, shape: Any) -> set[str]:
    """Class names a shape requires: its sh:class, or the sh:class of each sh:or member."""
    out = {str(c)[len(EKG):] for c in g.objects(shape, SH["class"])}
    for lst in g.objects(shape, SH["or"]):
        for member in rdflib.collection.Collection(g, lst):
            out |= {str(c)[len(EKG):] for c in g.objects(member, SH["class"])}
    return out


def test_shapes_parse_and_name_every_shape() -> None:
    g = _shapes()
    node = set(g.subjects(RDF.type, SH.NodeShape))
    prop = set(g.subjects(RDF.type, SH.PropertyShape))
    assert node and prop
    bare = {RDF.type, RDFS.comment, SH.targetSubjectsOf, SH.property}
    for s in node | prop:
        assert str(s).startswith(SHAPES_NS), s
        if set(g.predicates(s)) - bare:  # it states a constraint of its own
            assert g.value(s, SH.message) is not None, f"{s} has no sh:message"
        else:
            assert g.value(s, RDFS.comment) is not None, f"{s} says nothing"


def test_every_relation_of_the_ontology_has_its_domain_and_range_shapes() -> None:
    """Adding a relation to ekg.ttl without its shapes fails here."""
    onto = load_ontology(ONTO)
    g = _shapes()
    checked = 0
    for name, info in onto.relations.items():
        prop = K[name]
        targets = list(g.subjects(SH.targetSubjectsOf, prop))
        if info.domain == [THING] and info.range == [THING]:
            assert targets == [], name
            continue
        assert len(targets) == 1, f"no single shape targets the subjects of {name}"
        shape = targets[0]
        if info.domain != [THING]:
            assert _classes_of(g, shape) == set(info.domain), name
        if info.range != [THING]:
            ranges = [p for p in g.objects(shape, SH.property) if (p, SH.path, prop) in g]
            assert len(ranges) == 1, name
            assert _classes_of(g, ranges[0]) == set(info.range), name
        checked += 1
    assert checked >= 20


def test_every_attribute_shape_matches_the_ontology() -> None:
    onto = load_ontology(ONTO)
    g = _shapes()
    for name, info in onto.attributes.items():
        shapes = list(g.subjects(SH.targetSubjectsOf, K[name]))
        if info.kind == "text":
            assert shapes == [], name
            continue
        assert len(shapes) == 1, name
        s = shapes[0]
        assert (s, SH.path, K[name]) in g
        if info.kind == "quantity":
            assert (s, SH.datatype, XSD.decimal) in g, name
            lo = g.value(s, SH.minInclusive)
            hi = g.value(s, SH.maxInclusive)
            if name in ("share", "national_share"):
                assert (lo, hi) == (Literal(0), Literal(100)), name
            elif info.units == ["percent"]:
                assert lo is None and hi is None, name  # growth_rate, price_change
            else:
                assert lo == Literal(0) and hi is None, name
    assert {"growth_rate", "price_change"} <= set(onto.attributes)


# ---------------------------------------------------------------------------------------------
# Running the shapes (pyshacl)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shacl() -> Any:
    pytest.importorskip("pyshacl")
    from ecosystem_kg import shacl as mod

    return mod


@pytest.fixture(scope="module")
def mini_loaded() -> Loaded:
    loaded = load_graph(MINI)
    assert loaded.problems == []
    return loaded


@pytest.fixture(scope="module")
def base(shacl: Any, mini_loaded: Loaded) -> tuple[Any, Any]:
    return shacl.build_data_graph(mini_loaded, ONTO), shacl.load_shapes(ONTO)


Tamper = Callable[[Any], None]


@pytest.fixture()
def problems_after(shacl: Any, mini_loaded: Loaded, base: tuple[Any, Any]
                   ) -> Callable[[Tamper], list[Problem]]:
    def run(tamper: Tamper) -> list[Problem]:
        data = rdflib.Graph()
        data += base[0]
        tamper(data)
        locate = shacl.entity_locator(mini_loaded.entities, SourceLocation("ekg.ttl"))
        problems: list[Problem] = shacl.shacl_problems(data, base[1], locate)
        for p in problems:
            assert p.location.line >= 1 and p.location.col >= 1
            assert p.message.startswith("SHACL: ") and p.code == "shacl"
        return problems

    return run


def found(problems: list[Problem]) -> list[tuple[str, str]]:
    """(file:line:col, shape name) of each problem, sorted."""
    return sorted((where(p), p.message.split(": ")[1]) for p in problems)


def test_mini_graph_passes(shacl: Any, mini_loaded: Loaded,
                           problems_after: Callable[[Tamper], list[Problem]]) -> None:
    assert problems_after(lambda g: None) == []
    shacl.run_shacl(mini_loaded, ONTO)


def test_shipped_graph_passes(shacl: Any) -> None:
    loaded = load_graph(SHIPPED)
    if loaded.problems:
        pytest.skip(f"the shipped graph has {len(loaded.problems)} validation problem(s) right "
                    f"now (first: {loaded.problems[0]})")
    shacl.run_shacl(loaded, ONTO)


# --- 1. entities ----------------------------------------------------------------------------


def test_missing_english_label(problems_after: Callable[[Tamper], list[Problem]]) -> None:
    probs = problems_after(lambda g: g.remove((E.metax, RDFS.label, Literal("MetaX", lang="en"))))
    assert found(probs) == [("companies/metax.yaml:1:5", "Entity-label-en")]
    assert str(probs[0]).endswith("metax.yaml:1:5: SHACL: Entity-label-en: an entity needs "
                                  "exactly one rdfs:label in English (@en; name.en) [metax]")


def test_second_chinese_label(problems_after: Callable[[Tamper], list[Problem]]) -> None:
    probs = problems_after(lambda g: g.add((E.biren, RDFS.label, Literal("另一个", lang="zh"))))
    assert found(probs) == [("companies/biren.yaml:1:5", "Entity-label-zh")]


def test_pref_labels(problems_after: Callable[[Tamper], list[Problem]]) -> None:
    def tamper(g: Any) -> None:
        g.remove((E.shanghai, SKOS.prefLabel, Literal("上海", lang="zh")))
        g.add((E.hkex, SKOS.prefLabel, Literal("HKEX", lang="en")))

    assert found(problems_after(tamper)) == [
        ("organizations/hkex.yaml:1:5", "Entity-prefLabel-en"),
        ("places/shanghai.yaml:1:5", "Entity-prefLabel-zh")]


def test_two_descriptions_in_one_language(problems_after: Callable[[Tamper], list[Problem]]
                                          ) -> None:
    probs = problems_after(lambda g: g.add((E.metax, DCTERMS.description,
                                            Literal("Another one.", lang="en"))))
    assert found(probs) == [("companies/metax.yaml:1:5", "Entity-description")]


def test_entity_without_source(problems_after: Callable[[Tamper], list[Problem]]) -> None:
    probs = problems_after(lambda g: g.remove((E.shanghai, PROV.wasDerivedFrom, None)))
    assert found(probs) == [("places/shanghai.yaml:1:5", "Entity-source")]


def test_entity_derived_from_a_non_source(problems_after: Callable[[Tamper], list[Problem]]
                                          ) -> None:
    probs = problems_after(lambda g: g.add((E.shanghai, PROV.wasDerivedFrom, E.metax)))
    assert found(probs) == [("places/shanghai.yaml:1:5", "Entity-source")]
    assert "(value metax) [shanghai]" in probs[0].message


# --- 2. statements --------------------------------------------------------------------------


def test_statement_subject_predicate_object_cardinality(
        problems_after: Callable[[Tamper], list[Problem]]) -> None:
    def tamper(g: Any) -> None:
        g.remove((stmt("metax/listed_on/star-market"), RDF.subject, None))
        g.add((stmt("biren/listed_on/hkex"), RDF.predicate, K.located_in))
        g.add((stmt("compute-vouchers/budget/1"), RDF.object, Literal("7", datatype=XSD.decimal)))

    assert found(problems_after(tamper)) == [
        ("companies/biren.yaml:7:5", "Statement-predicate"),
        ("companies/metax.yaml:15:5", "Statement-subject"),
        ("policies/compute-vouchers.yaml:6:3", "Statement-object")]


def test_statement_without_source(problems_after: Callable[[Tamper], list[Problem]]) -> None:
    def tamper(g: Any) -> None:
        g.remove((stmt("biren/located_in/shanghai"), PROV.wasDerivedFrom, None))
        g.remove((stmt("metax/chips_delivered/1"), PROV.wasDerivedFrom, None))
        g.add((stmt("lingang/located_in/shanghai"), PROV.wasDerivedFrom, E.metax))

    assert found(problems_after(tamper)) == [
        ("companies/biren.yaml:8:5", "Statement-source"),
        ("companies/metax.yaml:13:7", "Statement-source"),
        ("parks/lingang.yaml:7:5", "Statement-source")]


def test_statement_dates(problems_after: Callable[[Tamper], list[Problem]]) -> None:
    def tamper(g: Any) -> None:
        g.add((stmt("biren/listed_on/hkex"), K.date, Literal("2026", datatype=XSD.gYear)))
        sup = stmt("compute-vouchers/supports/metax")
        g.remove((sup, K.startDate, None))
        g.add((sup, K.startDate, Literal("2025-08", datatype=XSD.string)))
        g.add((stmt("compute-vouchers/issued_by/shanghai"), K.endDate,
               Literal("2025-07-28T00:00:00", datatype=XSD.dateTime)))

    assert found(problems_after(tamper)) == [
        ("companies/biren.yaml:7:5", "Statement-date"),
        ("policies/compute-vouchers.yaml:8:5", "Statement-endDate"),
        ("policies/compute-vouchers.yaml:9:5", "Statement-startDate")]


def test_negative_amount(problems_after: Callable[[Tamper], list[Problem]]) -> None:
    st = stmt("pudong-vc/invested_in/metax")

    def negative(g: Any) -> None:
        g.set((st, K.amount, Literal("-5", datatype=XSD.decimal)))

    probs = problems_after(negative)
    assert found(probs) == [("investors/pudong-vc.yaml:6:5", "Statement-amount-sign")]
    assert "cannot be negative" in probs[0].message

    def negative_percent(g: Any) -> None:
        negative(g)
        g.set((st, K.unit, K.unit_percent))

    assert problems_after(negative_percent) == []  # a stake may shrink


def test_amount_and_unit_types(problems_after: Callable[[Tamper], list[Problem]]) -> None:
    def tamper(g: Any) -> None:
        g.set((stmt("pudong-vc/invested_in/metax"), K.amount, Literal("five")))
        g.set((stmt("metax/chips_delivered/1"), K.unit, K.Company))

    assert found(problems_after(tamper)) == [
        ("companies/metax.yaml:13:7", "Statement-unit"),
        ("investors/pudong-vc.yaml:6:5", "Statement-amount"),
        ("investors/pudong-vc.yaml:6:5", "Statement-amount-sign")]


# --- 3. sources -----------------------------------------------------------------------------


def test_source_title_and_url(problems_after: Callable[[Tamper], list[Problem]]) -> None:
    def tamper(g: Any) -> None:
        g.remove((E["news-b"], DCTERMS.title, None))
        g.add((E["news-a"], SCHEMA.url, Literal("ftp://example.com/a", datatype=XSD.anyURI)))

    assert found(problems_after(tamper)) == [("sources/news-a.yaml:1:5", "Source-url"),
                                             ("sources/news-b.yaml:1:5", "Source-title")]


# --- 4. attributes --------------------------------------------------------------------------


def _set_fact(g: Any, subject: str, prop: str, value: Any, n: int = 1) -> None:
    """Change an attribute value on the entity and on its statement alike."""
    g.remove((E[subject], K[prop], None))
    g.add((E[subject], K[prop], value))
    g.set((stmt(f"{subject}/{prop}/{n}"), RDF.object, value))


def test_negative_or_non_numeric_quantity(problems_after: Callable[[Tamper], list[Problem]]
                                          ) -> None:
    def tamper(g: Any) -> None:
        _set_fact(g, "compute-vouchers", "budget", Literal("-6", datatype=XSD.decimal))
        _set_fact(g, "telecom-lingang", "compute_capacity", Literal("lots"))

    probs = problems_after(tamper)
    assert found(probs) == [("compute_centres/telecom-lingang.yaml:6:3", "compute_capacity"),
                            ("policies/compute-vouchers.yaml:6:3", "budget")]
    assert "(value '-6'^^xsd:decimal) [compute-vouchers]" in probs[1].message


def test_percent_quantities(problems_after: Callable[[Tamper], list[Problem]]) -> None:
    def tamper(g: Any) -> None:
        g.add((E.metax, K.price_change, Literal("-12.5", datatype=XSD.decimal)))  # may fall
        g.add((E.shanghai, K.growth_rate, Literal("-3", datatype=XSD.decimal)))  # may fall
        g.add((E.shanghai, K.national_share, Literal("150", datatype=XSD.decimal)))
        g.add((E.lingang, K.share, Literal("-1", datatype=XSD.decimal)))

    assert found(problems_after(tamper)) == [("parks/lingang.yaml:1:5", "share"),
                                             ("places/shanghai.yaml:1:5", "national_share")]


def test_website_and_founded(problems_after: Callable[[Tamper], list[Problem]]) -> None:
    def tamper(g: Any) -> None:
        g.add((E.biren, K.website, Literal("ftp://birentech.com", datatype=XSD.anyURI)))
        g.add((E.hkex, K.website, Literal("https://www.hkex.com.hk")))  # not an xsd:anyURI
        g.add((E.shanghai, K.website, Literal("HTTPS://www.shanghai.gov.cn",
                                              datatype=XSD.anyURI)))  # fine
        _set_fact(g, "metax", "founded", Literal("2020"))

    assert found(problems_after(tamper)) == [("companies/biren.yaml:1:5", "website"),
                                             ("companies/metax.yaml:11:3", "founded"),
                                             ("organizations/hkex.yaml:1:5", "website")]


# --- 5. relations ---------------------------------------------------------------------------


def test_listed_on_to_a_place(problems_after: Callable[[Tamper], list[Problem]]) -> None:
    def tamper(g: Any) -> None:
        g.remove((E.biren, K.listed_on, E.hkex))
        g.add((E.biren, K.listed_on, E.shanghai))
        g.set((stmt("biren/listed_on/hkex"), RDF.object, E.shanghai))
        g.add((E.metax, K.listed_on, E.lingang))  # no statement: the entity is blamed

    probs = problems_after(tamper)
    assert found(probs) == [("companies/biren.yaml:7:5", "listed_on-range"),
                            ("companies/metax.yaml:1:5", "listed_on-range")]
    assert probs[0].message == ("SHACL: listed_on-range: relation listed_on must point to a "
                                "StockExchange (value shanghai) [biren]")


def test_range_class_changed(problems_after: Callable[[Tamper], list[Problem]]) -> None:
    def tamper(g: Any) -> None:  # shanghai is now a product: every relation to it breaks
        g.remove((E.shanghai, RDF.type, None))
        g.add((E.shanghai, RDF.type, K.Product))

    assert found(problems_after(tamper)) == [
        ("companies/biren.yaml:8:5", "located_in-range"),
        ("companies/metax.yaml:20:5", "located_in-range"),
        ("parks/lingang.yaml:7:5", "located_in-range"),
        ("policies/compute-vouchers.yaml:8:5", "issued_by-range")]  # Agent or Place: sh:or


def test_domain_class_changed(problems_after: Callable[[Tamper], list[Problem]]) -> None:
    def tamper(g: Any) -> None:
        g.remove((E.metax, RDF.type, None))
        g.add((E.metax, RDF.type, K.Park))  # a subclass of Place
        g.remove((E["pudong-vc"], RDF.type, None))
        g.add((E["pudong-vc"], RDF.type, K.Policy))

    assert found(problems_after(tamper)) == [
        ("companies/metax.yaml:15:5", "listed_on"),
        ("compute_centres/telecom-lingang.yaml:9:5", "hosts_chips_of-range"),
        ("investors/pudong-vc.yaml:6:5", "invested_in"),  # Agent: sh:or
        ("investors/pudong-vc.yaml:6:5", "invested_in-range"),
        ("people/chen-weiliang.yaml:6:5", "executive_of-range")]


def test_problems_are_sorted_and_deterministic(
        mini_loaded: Loaded, problems_after: Callable[[Tamper], list[Problem]]) -> None:
    def tamper(g: Any) -> None:
        g.remove((None, PROV.wasDerivedFrom, None))

    first = problems_after(tamper)
    assert first == sorted(first) and len(first) == len(set(first))
    assert problems_after(tamper) == first
    ents = [e for e in mini_loaded.entities if not e.is_source]
    n_statements = sum(len(e.relations) + len(e.facts) for e in ents)
    assert len(first) == len(ents) + n_statements == 10 + 16  # every entity and statement


# --- run_shacl end to end -------------------------------------------------------------------


def test_run_shacl_reports_what_the_validator_lets_through(shacl: Any, mini: Path) -> None:
    """The YAML validator does not require sources; the shapes do."""
    place = mini / "places" / "shanghai.yaml"
    place.write_text(place.read_text(encoding="utf-8").replace("source: news-a\n", ""),
                     encoding="utf-8")
    biren = mini / "companies" / "biren.yaml"
    biren.write_text(biren.read_text(encoding="utf-8").replace(
        "to: shanghai, source: news-a}", "to: shanghai}"), encoding="utf-8")
    loaded = check(mini)  # passes the first line of validation
    with pytest.raises(ValidationFailed) as info:
        shacl.run_shacl(loaded, ONTO)
    assert [(where(p), p.message) for p in info.value.problems] == [
        ("companies/biren.yaml:8:5", "SHACL: Statement-source: a relation or attribute value "
         "must cite at least one source (prov:wasDerivedFrom an ekg:Source; YAML 'source')"),
        ("places/shanghai.yaml:1:5", "SHACL: Entity-source: an entity must cite at least one "
         "source (prov:wasDerivedFrom an ekg:Source; YAML 'source') [shanghai]")]


def test_run_shacl_refuses_a_graph_with_problems(shacl: Any, mini: Path) -> None:
    (mini / "places" / "shanghai.yaml").write_text("id: shanghai\n", encoding="utf-8")
    loaded = load_graph(mini)
    assert loaded.problems
    with pytest.raises(ValidationFailed) as info:
        shacl.run_shacl(loaded, ONTO)
    assert info.value.problems == loaded.problems


def test_run_shacl_needs_the_shapes_file(shacl: Any, mini_loaded: Loaded, tmp_path: Path
                                         ) -> None:
    onto = tmp_path / "ontology"
    onto.mkdir()
    shutil.copy(ONTO / "ekg.ttl", onto / "ekg.ttl")
    with pytest.raises(EkgError, match="shapes.ttl"):
        shacl.run_shacl(mini_loaded, onto)
    (onto / "shapes.ttl").write_text("this is not turtle", encoding="utf-8")
    with pytest.raises(EkgError, match="could not be parsed"):
        shacl.run_shacl(mini_loaded, onto)


def test_run_shacl_without_pyshacl(mini_loaded: Loaded, monkeypatch: pytest.MonkeyPatch) -> None:
    from ecosystem_kg.shacl import run_shacl

    monkeypatch.setitem(sys.modules, "pyshacl", None)  # import pyshacl -> ImportError
    with pytest.raises(EkgError) as info:
        run_shacl(mini_loaded, ONTO)
    assert str(info.value) == ("SHACL checks need pyshacl: pip install "
                               "'ecosystem-kg[shacl]'")
    assert not isinstance(info.value, ValidationFailed)
