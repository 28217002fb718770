"""SHACL checks of the compiled graph: a second line of validation after :mod:`validate`.

The entities are compiled to RDF, the ontology (``ontology/*.ttl``) is merged in so that
``rdfs:subClassOf`` chains are visible to ``sh:class`` and ``sh:targetClass``, and the result is
validated against ``ontology/shapes.ttl`` with pyshacl (SHACL Core, no inference). Every
violation becomes a :class:`Problem` located at the YAML file, line and column its focus node
came from: an entity at its ``id``, a relation or attribute statement at its list item or key.

pyshacl is an optional dependency (``pip install 'ecosystem-kg[shacl]'``); it is imported only
when a check runs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .compile import (
    RDF,
    STMT,
    XSD,
    compile_entities,
    entity_iri,
    fact_stmt_iri,
    relation_stmt_iri,
    to_rdflib,
)
from .errors import EkgError, Loc, Problem, SourceLocation, ValidationFailed
from .load import Entity
from .ontology import BASE, EKG, ontology_files

if TYPE_CHECKING:
    import rdflib

    from .pipeline import Loaded

SH = "http://www.w3.org/ns/shacl#"
SHAPES_NS = "https://w3id.org/ecosystem-kg/shapes#"
SHAPES_FILE = "shapes.ttl"
_INSTALL_HINT = "SHACL checks need pyshacl: pip install 'ecosystem-kg[shacl]'"

Locate = Callable[[str], Loc]


def _pyshacl() -> Any:
    try:
        import pyshacl
    except ImportError:
        raise EkgError(_INSTALL_HINT) from None
    return pyshacl


def run_shacl(loaded: Loaded, onto_dir: Path) -> None:
    """Validate the compiled graph against ``onto_dir / "shapes.ttl"``.

    Raises :class:`ValidationFailed` with one located problem per SHACL violation (and, first,
    with the loader's problems if ``loaded`` has any: SHACL runs on a valid graph only), or
    :class:`EkgError` when pyshacl is missing or the shapes or ontology cannot be read.
    """
    _pyshacl()  # fail early, before compiling, when pyshacl is missing
    if loaded.problems:
        raise ValidationFailed(loaded.problems)
    shapes = load_shapes(onto_dir)
    data = build_data_graph(loaded, onto_dir)
    files = ontology_files(onto_dir)
    fallback = SourceLocation(str(files[0]) if files else str(onto_dir / SHAPES_FILE))
    problems = shacl_problems(data, shapes, entity_locator(loaded.entities, fallback))
    if problems:
        raise ValidationFailed(problems)


def load_shapes(onto_dir: Path) -> rdflib.Graph:
    """The shapes graph, ``onto_dir / "shapes.ttl"``; EkgError if missing or unreadable."""
    import rdflib

    shapes_path = onto_dir / SHAPES_FILE
    if not shapes_path.is_file():
        raise EkgError(f"{shapes_path}: no SHACL shapes here; the ontology folder needs "
                       f"{SHAPES_FILE} for SHACL checks")
    shapes = rdflib.Graph()
    _parse_into(shapes, shapes_path, "the SHACL shapes")
    return shapes


def build_data_graph(loaded: Loaded, onto_dir: Path) -> rdflib.Graph:
    """The compiled entities as an rdflib graph with the ontology files merged in."""
    compiled = compile_entities(loaded.entities, loaded.ontology)
    data = to_rdflib(compiled.triples)
    for path in ontology_files(onto_dir):
        _parse_into(data, path, "the ontology")
    return data


def _parse_into(graph: rdflib.Graph, path: Path, what: str) -> None:
    try:
        graph.parse(path, format="turtle")
    except Exception as exc:  # rdflib raises many kinds of parser errors
        raise EkgError(f"{path}: {what} could not be parsed: {exc}") from None


def entity_locator(entities: list[Entity], fallback: Loc) -> Locate:
    """Map a compiled node's IRI back to where it was written.

    An entity maps to its ``id`` value, a relation statement to its list item, an attribute
    statement to its key (or list item); anything else (an ontology node) to ``fallback``.
    """
    table: dict[str, Loc] = {}
    for ent in entities:
        table[entity_iri(ent.id)] = ent.loc("id")
        for r in ent.relations:
            table[relation_stmt_iri(ent.id, r.rel, r.target, r.index)] = r.loc
        for f in ent.facts:
            table[fact_stmt_iri(ent.id, f.prop, f.index)] = f.loc

    def locate(node: str) -> Loc:
        loc = table.get(node)
        if loc is not None:
            return loc
        if node.startswith(STMT):  # a statement we do not know: its subject's file
            subject = table.get(entity_iri(node[len(STMT):].split("/", 1)[0]))
            if subject is not None:
                return subject
        return fallback

    return locate


def shacl_problems(data_graph: rdflib.Graph, shapes_graph: rdflib.Graph, locate: Locate
                   ) -> list[Problem]:
    """Validate ``data_graph`` and turn each sh:Violation into a located, sorted Problem.

    A result about an entity's attribute or relation value (focus an entity, a path and a
    value) is located at the statement that says it, when the graph has one; a result of a
    shape targeting the subjects of a relation, at the subject's first statement of it.
    """
    pyshacl = _pyshacl()
    from rdflib import URIRef

    _conforms, results, _text = pyshacl.validate(
        data_graph, shacl_graph=shapes_graph, inference="none", advanced=False,
        allow_warnings=True)
    sh_ = _NS(SH)
    problems: set[Problem] = set()
    for res in results.subjects(URIRef(RDF + "type"), sh_.ValidationResult):
        if results.value(res, sh_.resultSeverity) != sh_.Violation:
            continue
        focus = results.value(res, sh_.focusNode)
        path = results.value(res, sh_.resultPath)
        value = results.value(res, sh_.value)
        shape = results.value(res, sh_.sourceShape)
        node = _statement_for(data_graph, shapes_graph, focus, path, value, shape)
        loc = locate(str(node)) if node is not None else locate(str(focus))
        messages = sorted(str(m) for m in results.objects(res, sh_.resultMessage))
        msg = "; ".join(messages) or _short(results.value(res, sh_.sourceConstraintComponent))
        text = f"SHACL: {_shape_name(shapes_graph, shape)}: {msg}"
        if value is not None and value != focus:
            text += f" (value {_short(value)})"
        if not str(focus).startswith(STMT):
            text += f" [{_short(focus)}]"
        problems.add(Problem(loc, text, "shacl"))
    return sorted(problems)


class _NS:
    def __init__(self, base: str) -> None:
        self.base = base

    def __getattr__(self, name: str) -> Any:
        from rdflib import URIRef

        return URIRef(self.base + name)


def _statement_for(data: Any, shapes: Any, focus: Any, path: Any, value: Any, shape: Any
                   ) -> Any:
    """The statement behind a result on an entity, or None."""
    from rdflib import URIRef

    if focus is None or str(focus).startswith(STMT) or not str(focus).startswith(BASE):
        return None
    subj, pred, obj = URIRef(RDF + "subject"), URIRef(RDF + "predicate"), URIRef(RDF + "object")
    if isinstance(path, URIRef) and value is not None:
        found = sorted(str(st) for st in data.subjects(subj, focus)
                       if (st, pred, path) in data and (st, obj, value) in data)
        if found:
            return URIRef(found[0])
    if shape is not None:
        for prop in sorted(shapes.objects(shape, URIRef(SH + "targetSubjectsOf"))):
            found = sorted(str(st) for st in data.subjects(subj, focus)
                           if (st, pred, prop) in data)
            if found:
                return URIRef(found[0])
    return None


def _shape_name(shapes: Any, shape: Any) -> str:
    from rdflib import URIRef

    if shape is None:
        return "shape"
    name = shapes.value(shape, URIRef(SH + "name"))
    if name is not None:
        return str(name)
    s = str(shape)
    if s.startswith(SHAPES_NS):
        return s[len(SHAPES_NS):]
    from rdflib import BNode

    return "anonymous shape" if isinstance(shape, BNode) else _short(shape)


_SHORT = ((EKG, "ekg:"), (XSD, "xsd:"), (SH, "sh:"), (SHAPES_NS, "ekgsh:"))


def _short(term: Any) -> str:
    """A readable form of an RDF term: entity ids bare, known namespaces as prefixes."""
    from rdflib import Literal

    if term is None:
        return "?"
    if isinstance(term, Literal):
        text = repr(str(term))
        if term.language:
            return f"{text}@{term.language}"
        if term.datatype is not None:
            return f"{text}^^{_short(term.datatype)}"
        return text
    s = str(term)
    if s.startswith(STMT):
        return "stmt/" + s[len(STMT):]
    if s.startswith(BASE):
        return s[len(BASE):]
    for ns, prefix in _SHORT:
        if s.startswith(ns):
            return prefix + s[len(ns):]
    return f"<{s}>"
