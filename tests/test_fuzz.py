"""Property-based fuzzing of loading and validation: whatever the bytes of an entity file, the
only outcome allowed is a list of located problems. Any exception fails.

Reproducible in CI (derandomize=True, no example database). Budget: see ``EXAMPLES`` below;
the whole file runs in well under a minute on two cores.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ecosystem_kg.compile import (
    Compiled,
    compile_entities,
    to_graphml,
    to_jsonld,
    to_ntriples,
    to_turtle,
)
from ecosystem_kg.errors import Problem, SourceLocation
from ecosystem_kg.load import ENTITY_FIELDS, FACT_FIELDS, RELATION_FIELDS, parse_entity
from ecosystem_kg.ontology import Ontology, bundled_ontology_dir, load_ontology
from ecosystem_kg.pipeline import load_graph
from ecosystem_kg.validate import ACYCLIC, validate

from .conftest import MINI

HERE = Path(__file__).resolve().parent
# Examples per test. EKG_FUZZ_EXAMPLES=20000 explores further, with fresh random examples
# each run; by default the same examples run every time (CI).
_DEEP = os.environ.get("EKG_FUZZ_EXAMPLES")
EXAMPLES = int(_DEEP) if _DEEP else 500
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=not _DEEP, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

ONTO: Ontology = load_ontology(bundled_ontology_dir())
REAL_FILES: list[Path] = sorted(
    [*MINI.rglob("*.yaml"), *(HERE / "bad_inputs").glob("*/companies/*.yaml")],
    key=lambda p: p.as_posix())
REAL_FILES = [p for p in REAL_FILES if p.is_file() and not p.is_symlink()]
REAL_BYTES: list[bytes] = [p.read_bytes() for p in REAL_FILES]


def assert_located(problems: Any, file: str | None = None) -> None:
    assert isinstance(problems, list)
    for p in problems:
        assert isinstance(p, Problem), p
        loc = p.location
        assert isinstance(loc, SourceLocation), p
        assert isinstance(loc.line, int) and loc.line >= 1, p
        assert isinstance(loc.col, int) and loc.col >= 1, p
        assert isinstance(p.message, str) and p.message.strip(), p
        if file is not None:
            assert loc.file == file, p
        str(p)  # printable


def check_bytes(raw: bytes) -> None:
    """parse_entity then validate: located problems only; a clean entity also compiles."""
    ent, problems = parse_entity(raw, "f.yaml", "f")
    assert_located(problems, "f.yaml")
    if ent is None:
        assert problems, "a file without an entity must say why"
        return
    found = validate([ent], ONTO)
    assert_located(found, "f.yaml")
    if not problems and not found:  # a valid lone entity must compile to well-formed files
        check_outputs(compile_entities([ent], ONTO))


# C0 controls other than tab, LF, CR: not representable in XML 1.0; the loader refuses them.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def check_outputs(compiled: Compiled) -> None:
    import rdflib

    nt = to_ntriples(compiled.triples)
    ttl = to_turtle(compiled.triples)
    for text in (nt, ttl, to_jsonld(compiled.triples)):
        text.encode("utf-8")
    assert len(rdflib.Graph().parse(data=nt, format="nt")) == len(compiled.triples)
    assert len(rdflib.Graph().parse(data=ttl, format="turtle")) == len(compiled.triples)
    json.loads(to_jsonld(compiled.triples))
    graphml = to_graphml(compiled)
    ET.fromstring(graphml.encode("utf-8"))


# ---------------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------------

# Text that YAML finds interesting: indicators, tags, anchors, numbers, dates, booleans.
_TRICKY = ["", " ", "~", "null", "yes", "no", "on", "true", "0x1F", "0o17", "1e400", "-.inf",
           ".nan", "2026-02-30", "2026-13", "2026-01-27T10:00:00Z", "12:30:00", "!!python/none",
           "&a", "*a", "<<", "- x", "? x", ": x", "{a: 1}", "[1, 2", "#", "%YAML 1.2", "---",
           "...", "|", ">", "'", '"', "\t", "\u3000", "\u200b", "\ufeff", "沐曦", "Q8686", "https://x",
           "ftp://x", "RMB_100M", "percent", "news-a", "metax", "shanghai", "GPUMaker", "Source"]
texts = st.one_of(st.text(max_size=40), st.sampled_from(_TRICKY))
scalars = st.one_of(
    st.none(), st.booleans(), texts,
    st.integers(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.dates(), st.datetimes(),
)
keys = st.one_of(texts, st.sampled_from([*ENTITY_FIELDS, *RELATION_FIELDS, *FACT_FIELDS,
                                         "zh", "en", "title"]),
                 st.integers(), st.booleans(), st.none(), st.dates())
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5),
                            st.dictionaries(keys, inner, max_size=6)),
    max_leaves=30,
)

# Documents shaped like entities, so that fuzzing reaches deep into load and validate.
_classes = sorted(ONTO.classes)
_relations = sorted(ONTO.relations) + ["listed_in", ""]
_attributes = sorted(ONTO.attributes) + ["colour"]
_units = sorted(ONTO.units) + ["yuan", ""]
_ids = ["f", "metax", "news-a", "Bad_ID", "", "f-"]
_dates = st.one_of(st.sampled_from(["2026", "2026-01", "2026-01-27", "2026-02-30", "2026-13",
                                    "26", "2026/01/02", ""]), st.dates(), scalars)
some = st.one_of(scalars, documents)


def _maybe(d: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """A dict strategy where each key may be absent."""
    return st.fixed_dictionaries({}, optional=d)


quantity = st.one_of(
    _maybe({"value": st.one_of(st.integers(), st.floats(), texts, st.none()),
            "unit": st.one_of(st.sampled_from(_units), some)}),
    some)
fact_value = st.one_of(
    scalars,
    _maybe({"value": some, "unit": st.sampled_from(_units), "date": _dates, "start": _dates,
            "end": _dates, "source": st.one_of(st.sampled_from(_ids), st.lists(texts)),
            "note": some, "oops": some}),
    st.lists(_maybe({"value": some, "unit": st.sampled_from(_units), "date": _dates}),
             max_size=3))
relation = st.one_of(
    _maybe({"rel": st.one_of(st.sampled_from(_relations), some),
            "to": st.one_of(st.sampled_from(_ids), some), "date": _dates, "start": _dates,
            "end": _dates, "source": st.one_of(st.sampled_from(_ids), some),
            "note": some, "role": some, "amount": quantity, "extra": some}),
    some)
entity_docs = _maybe({
    "id": st.one_of(st.sampled_from(_ids), some),
    "type": st.one_of(st.sampled_from(_classes), some),
    "name": st.one_of(_maybe({"zh": some, "en": some, "fr": some}), some),
    "aliases": some,
    "description": st.one_of(_maybe({"zh": some, "en": some}), some),
    "wikidata": st.one_of(st.sampled_from(["Q8686", "Q0", "q1", "P31"]), some),
    "source": st.one_of(st.sampled_from(_ids), st.lists(st.sampled_from(_ids)), some),
    "note": some,
    "attributes": st.one_of(st.dictionaries(st.sampled_from(_attributes), fact_value,
                                            max_size=4), some),
    "relations": st.one_of(st.lists(relation, max_size=4), some),
    "title": some, "url": some, "date": _dates, "authors": some, "unknown": some,
})


def dump(doc: Any, flow: bool | None, unicode: bool) -> bytes:
    return yaml.safe_dump(doc, default_flow_style=flow, allow_unicode=unicode,
                          sort_keys=False).encode("utf-8")


# Bytes and snippets that matter to YAML, UTF-8 and the loader.
_SIGNIFICANT = [b":", b": ", b"-", b"- ", b"[", b"]", b"{", b"}", b"&", b"&a ", b"*", b"*a",
                b"!", b"!!python/object ", b"!!binary ", b"<<: ", b"?", b"|", b">", b"#", b"%",
                b"@", b"`", b",", b"\t", b"\n", b"\r", b"\r\n", b" ", b"    ", b"'", b'"',
                b"\\", b"\x00", b"\xff", b"\xef\xbb\xbf", b"\xe6\xb2", b"\x85", b"\xc2\x85",
                b"\x1b", b"---\n", b"...\n", b"~", b"null", b"0x", b"1e999", b".nan",
                b"\xe2\x80\xa8"]
mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(1, 255)),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 8)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.sampled_from(_SIGNIFICANT)),
    st.tuples(st.just("byte"), st.integers(0, 10**6), st.integers(0, 255)),
    st.tuples(st.just("dup"), st.integers(0, 10**6), st.integers(1, 40)),
)


def mutate(raw: bytes, ops: list[tuple[str, int, Any]]) -> bytes:
    data = bytearray(raw)
    for op, where, arg in ops:
        pos = where % (len(data) + 1)
        if op == "flip" and data:
            pos %= len(data)
            data[pos] ^= arg
        elif op == "delete":
            del data[pos:pos + arg]
        elif op == "insert":
            data[pos:pos] = arg
        elif op == "byte":
            data[pos:pos] = bytes([arg])
        elif op == "dup":  # repeat a stretch (duplicated keys, lines, brackets)
            data[pos:pos] = data[pos:pos + arg]
    return bytes(data)


mutated = st.tuples(st.integers(0, len(REAL_BYTES) - 1), st.lists(mutation, min_size=1,
                                                                  max_size=8))


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------


@FUZZ
@given(doc=documents, flow=st.sampled_from([None, True, False]), unicode=st.booleans())
def test_random_yaml_documents(doc: Any, flow: bool | None, unicode: bool) -> None:
    check_bytes(dump(doc, flow, unicode))


@FUZZ
@given(doc=entity_docs, flow=st.sampled_from([None, True, False]), unicode=st.booleans())
def test_entity_shaped_documents(doc: dict[str, Any], flow: bool | None, unicode: bool) -> None:
    check_bytes(dump(doc, flow, unicode))


@FUZZ
@given(text=st.text(max_size=300))
def test_random_text(text: str) -> None:
    check_bytes(text.encode("utf-8", "surrogatepass"))


@FUZZ
@given(raw=st.binary(max_size=300))
def test_random_bytes(raw: bytes) -> None:
    check_bytes(raw)


@FUZZ
@given(case=mutated)
def test_mutated_real_files(case: tuple[int, list[tuple[str, int, Any]]]) -> None:
    i, ops = case
    check_bytes(mutate(REAL_BYTES[i], ops))


def test_real_files_are_what_the_fuzzer_starts_from() -> None:
    assert len(REAL_FILES) >= 40
    for raw in REAL_BYTES:
        check_bytes(raw)  # the unmutated seeds obey the same rules


@pytest.fixture(scope="module")
def graph_copy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    base = tmp_path_factory.mktemp("fuzz")
    graph = base / "graph"
    shutil.copytree(MINI, graph)
    yield graph, base / "cache"


MINI_FILES = sorted(p.relative_to(MINI) for p in MINI.rglob("*.yaml"))


@settings(FUZZ, max_examples=EXAMPLES)
@given(i=st.integers(0, len(MINI_FILES) - 1), ops=st.lists(mutation, min_size=1, max_size=6))
def test_mutated_file_in_the_mini_graph(graph_copy: tuple[Path, Path], i: int,
                                        ops: list[tuple[str, int, Any]]) -> None:
    graph, cache = graph_copy
    target = graph / MINI_FILES[i]
    original = (MINI / MINI_FILES[i]).read_bytes()
    target.write_bytes(mutate(original, ops))
    try:
        loaded = load_graph(graph, cache_dir=cache)
    finally:
        target.write_bytes(original)
    assert_located(loaded.problems)
    for p in loaded.problems:  # every problem points into the graph folder
        assert Path(p.location.file).resolve().is_relative_to(graph.resolve()), p
    if not loaded.problems:  # some mutations keep the graph valid: it must then compile
        check_outputs(compile_entities(loaded.entities, loaded.ontology))


def test_nan_and_infinity_are_problems_not_crashes() -> None:
    """Seeds the corner the float strategy is slowest to find."""
    for v in (".nan", ".inf", "-.inf", "1e400"):
        raw = (f"id: f\ntype: Company\nname: {{zh: 甲, en: A}}\nattributes:\n"
               f"  revenue: {{value: {v}, unit: RMB}}\n").encode()
        ent, problems = parse_entity(raw, "f.yaml", "f")
        assert ent is not None and problems == []
        found = validate([ent], ONTO)
        assert_located(found, "f.yaml")
        assert any("must be a number" in p.message for p in found), (v, found)
        value = ent.facts[0].value  # 1e400 is text to YAML 1.1 (no dot); the others floats
        assert isinstance(value, str) or not math.isfinite(value)


# ---------------------------------------------------------------------------------------------
# Small random graphs: cross-entity checks (duplicates, cycles, references), and a differential
# test: a graph the YAML validator accepts must satisfy the SHACL shapes too.
# ---------------------------------------------------------------------------------------------

_POOL = ["a", "b", "c", "d"]
_SOURCES = ["s1", "s2"]
_ENTITY_CLASSES = [c for c in _classes if c not in ("Source", "Statement", "Unit")]
_GRAPH_DATES = st.sampled_from(["2026", "2026-01", "2026-01-27", "0000", "0001", "0001-01",
                                "9999-12-31", "2024-02-29", "1999-12"])
_small_text = st.one_of(st.sampled_from(["甲", "A", "上海", "x y"]), st.text(min_size=1,
                                                                            max_size=8))


@st.composite
def attribute_item(draw: st.DrawFn) -> tuple[str, Any]:
    name = draw(st.sampled_from(sorted(ONTO.attributes)))
    info = ONTO.attributes[name]
    fact: dict[str, Any] = {}
    if info.kind == "quantity":
        fact["value"] = draw(st.one_of(st.integers(-5, 10**6), st.sampled_from([0, 100, 100.5]),
                                       st.floats(-1e3, 1e12, allow_nan=False)))
        fact["unit"] = draw(st.sampled_from([*info.units, "percent"]))
    elif info.kind == "date":
        fact["value"] = draw(_GRAPH_DATES)
    elif info.kind == "url":
        fact["value"] = draw(st.sampled_from(["https://x.org/a", "HTTP://x.org", "ftp://x.org"]))
    else:
        fact["value"] = draw(_small_text)
    fact.update(draw(_maybe({"date": _GRAPH_DATES, "source": st.sampled_from(_SOURCES),
                             "note": _small_text})))
    return name, fact


graph_relation = _maybe({"date": _GRAPH_DATES, "start": _GRAPH_DATES, "end": _GRAPH_DATES,
                         "role": _small_text, "note": _small_text,
                         "amount": st.fixed_dictionaries({
                             "value": st.one_of(st.integers(-3, 10**9), st.floats(-1, 1e9)),
                             "unit": st.sampled_from(sorted(ONTO.qualifiers["amount"].units))}),
                         }).flatmap(lambda extra: st.fixed_dictionaries({
                             "rel": st.sampled_from(sorted(ONTO.relations)),
                             "to": st.sampled_from(_POOL),
                             "source": st.sampled_from(_SOURCES)}).map(lambda d: {**d, **extra}))
graph_entity = st.fixed_dictionaries({
    "id": st.sampled_from(_POOL),
    "type": st.sampled_from(_ENTITY_CLASSES),
    "name": st.fixed_dictionaries({"zh": _small_text, "en": _small_text}),
    "source": st.sampled_from(_SOURCES),
}, optional={
    "description": _maybe({"zh": _small_text, "en": _small_text}),
    "aliases": st.lists(_small_text, max_size=2),
    "attributes": st.lists(attribute_item(), max_size=3).map(dict),
    "relations": st.lists(graph_relation, max_size=4),
})
graphs = st.lists(graph_entity, min_size=1, max_size=6)
SOURCE_DOCS = [{"id": s, "type": "Source", "title": f"Source {s}"} for s in _SOURCES]


def load_docs(docs: list[dict[str, Any]]) -> tuple[list[Any], list[Problem]]:
    entities, problems = [], []
    for n, doc in enumerate([*SOURCE_DOCS, *docs]):
        file = f"g{n}/{doc['id']}.yaml"
        ent, probs = parse_entity(dump(doc, None, True), file, doc["id"])
        assert_located(probs, file)
        problems += probs
        if ent is not None:
            entities.append(ent)
    found = validate(entities, ONTO)
    assert_located(found)
    return entities, problems + found


@FUZZ
@given(docs=graphs)
def test_random_small_graphs(docs: list[dict[str, Any]]) -> None:
    entities, problems = load_docs(docs)
    if not problems:
        check_outputs(compile_entities(entities, ONTO))


# SHACL shapes stricter than the YAML validator, on purpose: the validator does not require
# sources, nor bound shares to 100 (and lets a percent share fall below 0).
SHACL_STRICTER = {"Entity-source", "Statement-source", "share", "national_share"}


@st.composite
def consistent_graphs(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Graphs most of which pass the validator: relations and attributes fit the types."""
    types = {eid: draw(st.sampled_from(_ENTITY_CLASSES)) for eid in _POOL}
    docs = []
    for eid, etype in types.items():
        doc = draw(graph_entity)
        doc.update(id=eid, type=etype)
        attrs = {name: fact for name, fact in doc.get("attributes", {}).items()
                 if ONTO.is_any(etype, ONTO.attributes[name].domain)}
        doc["attributes"] = attrs
        fits = [(r, t) for r, info in sorted(ONTO.relations.items()) if r not in ACYCLIC
                for t in _POOL if t != eid and ONTO.is_any(etype, info.domain)
                and ONTO.is_any(types[t], info.range)]
        rels = []
        for extra in doc.get("relations", []):
            if fits:
                rel, to = draw(st.sampled_from(fits))
                rels.append({**extra, "rel": rel, "to": to})
        doc["relations"] = rels
        docs.append(doc)
    return docs


@settings(FUZZ, max_examples=max(60, EXAMPLES // 5))
@given(docs=consistent_graphs())
def test_validator_and_shacl_agree(docs: list[dict[str, Any]]) -> None:
    pytest.importorskip("pyshacl")
    from ecosystem_kg import shacl
    from ecosystem_kg.pipeline import Loaded

    entities, problems = load_docs(docs)
    event("valid" if not problems else "invalid")
    if problems:
        return
    loaded = Loaded(entities, ONTO, len(entities))
    onto_dir = bundled_ontology_dir()
    data = shacl.build_data_graph(loaded, onto_dir)
    found = shacl.shacl_problems(data, _shapes(onto_dir),
                                 shacl.entity_locator(entities, SourceLocation("ekg.ttl")))
    assert_located(found)
    disagree = [p for p in found if p.message.split(": ")[1] not in SHACL_STRICTER]
    assert not disagree, "\n".join(str(p) for p in disagree)


_SHAPES: dict[Path, Any] = {}


def _shapes(onto_dir: Path) -> Any:
    from ecosystem_kg import shacl

    if onto_dir not in _SHAPES:
        _SHAPES[onto_dir] = shacl.load_shapes(onto_dir)
    return _SHAPES[onto_dir]


def test_control_characters_in_text_are_refused() -> None:
    raw = b'id: f\ntype: Company\nname: {zh: "\\x01", en: "A\\0"}\n'
    ent, problems = parse_entity(raw, "f.yaml", "f")
    assert [str(p.location) for p in problems] == ["f.yaml:3:12", "f.yaml:3:24"]
    assert all("control character" in p.message for p in problems)


_SCALARS = st.one_of(
    st.sampled_from(["yes", "No", "on", "OFF", "true", "False", "null", "~", "", "Null",
                     "2026-01-27", "2026-01", "2026-1-7", "2026-01-27T08:00:00Z", "12", "-3",
                     "+1.5", ".5", "1e3", ".inf", "-.INF", ".nan", "0x1F", "0o17", "1_000",
                     "190:20:30", "<<", "=", "'quoted'", '"2026-01-27"', "!!str 12",
                     "!!int 12", "中文", "a: b", "- x"]),
    st.text(alphabet="0123456789.-+:_eExyYnNtTfFoO~<=!&* 中\"'", max_size=12))


def _tags(node: Any) -> list[str]:
    out = [node.tag]
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            out += _tags(k) + _tags(v)
    elif isinstance(node, yaml.SequenceNode):
        for v in node.value:
            out += _tags(v)
    return out


@settings(FUZZ)
@given(st.lists(st.tuples(_SCALARS, _SCALARS), min_size=1, max_size=6))
def test_the_entity_loader_resolves_tags_as_pyyaml_does(pairs: list[tuple[str, str]]) -> None:
    from ecosystem_kg.yamlio import _COMPOSE_LOADER

    lines = []
    for i, (key, value) in enumerate(pairs):
        lines.append(f"k{i}: {value}")
        lines.append(f"l{i}: [{key}, {value}]")
        lines.append(f"m{i}:\n  - {key}\n  - {{x: {value}}}")
    text = "\n".join(lines) + "\n"
    try:
        expected = _tags(yaml.compose(text, Loader=yaml.CSafeLoader))
    except yaml.YAMLError:
        return  # not YAML: nothing to compare
    assert _tags(yaml.compose(text, Loader=_COMPOSE_LOADER)) == expected
