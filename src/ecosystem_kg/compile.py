"""Compile validated entities into RDF triples and a networkx graph.

Triples are produced as plain tuples and written by small deterministic serializers (sorted
N-Triples, grouped Turtle, JSON-LD): the same input gives byte-identical files, and writing
does not pay for rdflib's serializers. :func:`to_rdflib` gives the same triples as an
``rdflib.Graph`` for library users and for tests that check the files parse back.

IRIs are stable: an entity is ``BASE + id``; a relation statement is
``BASE + "stmt/" + subject + "/" + rel + "/" + object`` (``/2``, ``/3`` for repeats); an attribute
fact is ``BASE + "stmt/" + subject + "/" + attribute + "/" + n``. There are no blank nodes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any

from .load import Dated, Entity
from .ontology import BASE, DATE, EKG, QUANTITY, URL, Ontology

if TYPE_CHECKING:
    import networkx as nx
    import rdflib

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
XSD = "http://www.w3.org/2001/XMLSchema#"
SKOS = "http://www.w3.org/2004/02/skos/core#"
PROV = "http://www.w3.org/ns/prov#"
DCT = "http://purl.org/dc/terms/"
SCHEMA = "https://schema.org/"
WD = "http://www.wikidata.org/entity/"
STMT = BASE + "stmt/"

PREFIXES = {
    "": BASE,
    "dct": DCT,
    "ekg": EKG,
    "prov": PROV,
    "rdf": RDF,
    "rdfs": RDFS,
    "schema": SCHEMA,
    "skos": SKOS,
    "stmt": STMT,
    "wd": WD,
    "xsd": XSD,
}

# A term is ("i", iri) or ("l", lexical, language, datatype-iri-or-empty).
Term = tuple[str, ...]
Triple = tuple[str, str, Term]

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def lit(text: str, lang: str = "", dtype: str = "") -> Term:
    return ("l", text, lang, dtype)


def lang_of(text: str) -> str:
    return "zh" if _CJK.search(text) else "en"


def date_literal(value: str) -> Term:
    n = value.count("-")
    dtype = XSD + ("gYear" if n == 0 else "gYearMonth" if n == 1 else "date")
    return lit(value, "", dtype)


def number_lexical(value: Any) -> str:
    if isinstance(value, int):
        return str(value)
    text = repr(float(value))
    if "e" in text or "E" in text:
        text = format(float(value), "f").rstrip("0")
    if text.endswith("."):
        text += "0"
    return text


def entity_iri(eid: str) -> str:
    return BASE + eid


def relation_stmt_iri(subject: str, rel: str, target: str, index: int) -> str:
    tail = f"/{index}" if index > 1 else ""
    return f"{STMT}{subject}/{rel}/{target}{tail}"


def fact_stmt_iri(subject: str, prop: str, index: int) -> str:
    return f"{STMT}{subject}/{prop}/{index}"


@dataclass
class Compiled:
    """The compiled graph: sorted triples plus the inputs they came from."""

    triples: list[Triple]
    entities: list[Entity]
    ontology: Ontology
    count: int | None = None  # the number of triples, when they were streamed, not kept

    @property
    def n_triples(self) -> int:
        return len(self.triples) if self.count is None else self.count

    @property
    def n_relations(self) -> int:
        return sum(len(e.relations) for e in self.entities)


def compile_entities(entities: list[Entity], onto: Ontology) -> Compiled:
    """Turn validated entities into triples: entities in id order, each one's triples sorted
    and free of duplicates (so every subject's triples are contiguous)."""
    out: list[Triple] = []
    ordered = sorted(entities, key=lambda e: e.id)
    for ent in ordered:
        out.extend(entity_chunk(ent, onto))
    return Compiled(out, ordered, onto)


def entity_chunk(ent: Entity, onto: Ontology) -> list[Triple]:
    """One entity's triples, sorted and without duplicates. Its subjects (the entity and its
    statements, whose IRIs carry the entity's id) belong to no other entity, so the serialized
    graph is the concatenation of the serialized chunks in id order."""
    return [(s, p, o) for s, preds in entity_groups(ent, onto).items()
            for p, objs in preds.items() for o in objs]


def entity_groups(ent: Entity, onto: Ontology) -> Groups:
    """``by_subject(entity_chunk(ent, onto))``, made without the triples: subjects sorted,
    each one's predicates sorted, each predicate's objects sorted and without duplicates."""
    s = entity_iri(ent.id)
    g: Groups = {}
    own: dict[str, list[Term]] = {_RDF_TYPE: [("i", EKG + ent.type)]}
    g[s] = own
    add = partial(_put, own)

    if ent.is_source:
        x = ent.extra
        title = x.get("title", ent.id)
        tlang = lang_of(x.get("title", ""))
        add(_RDFS_LABEL, lit(title, tlang))
        add(_DCT_TITLE, lit(title, tlang))
        if "title_en" in x:
            add(_DCT_TITLE, lit(x["title_en"], "en"))
            add(_RDFS_LABEL, lit(x["title_en"], "en"))
        if "publisher" in x:
            add(DCT + "publisher", lit(x["publisher"], lang_of(x["publisher"])))
        if "publisher_en" in x:
            add(DCT + "publisher", lit(x["publisher_en"], "en"))
        if "date" in x:
            add(DCT + "date", date_literal(x["date"]))
        for a in x.get("authors", []):
            add(DCT + "creator", lit(a, lang_of(a)))
        if "language" in x:
            add(DCT + "language", lit(x["language"]))
        if "url" in x:
            add(SCHEMA + "url", lit(x["url"], "", XSD + "anyURI"))
        if "file" in x:
            add(DCT + "identifier", lit(x["file"]))
        if ent.note:
            add(_SKOS_NOTE, lit(ent.note))
        return _sorted_groups(g)

    for lang, name in (("zh", ent.name_zh), ("en", ent.name_en)):
        if name:
            add(_RDFS_LABEL, lit(name, lang))
            add(SKOS + "prefLabel", lit(name, lang))
    for alias in ent.aliases:
        add(SKOS + "altLabel", lit(alias, lang_of(alias)))
    for lang, text in sorted(ent.description.items()):
        add(DCT + "description", lit(text, lang))
    if ent.wikidata:
        add(SKOS + "exactMatch", ("i", WD + ent.wikidata))
    for src in ent.sources:
        add(_PROV_FROM, ("i", BASE + src))
    if ent.note:
        add(_SKOS_NOTE, lit(ent.note))

    subject = ("i", s)
    units = onto.units
    for f in ent.facts:
        info = onto.attributes.get(f.prop)
        obj = value_term(f.value, info.kind if info else "")
        p = EKG + f.prop
        add(p, obj)
        st = _statement(g, fact_stmt_iri(ent.id, f.prop, f.index), subject, p, obj, f)
        if f.unit and f.unit in units:
            _put(st, _EKG_UNIT, ("i", units[f.unit].iri))

    for r in ent.relations:
        p = EKG + r.rel
        o = ("i", BASE + r.target)
        add(p, o)
        st = _statement(g, relation_stmt_iri(ent.id, r.rel, r.target, r.index), subject, p, o, r)
        if r.role:
            _put(st, EKG + "role", lit(r.role, lang_of(r.role)))
        if r.amount is not None and isinstance(r.amount.value, (int, float)):
            _put(st, EKG + "amount", lit(number_lexical(r.amount.value), "", XSD + "decimal"))
            if r.amount.unit and r.amount.unit in units:
                _put(st, _EKG_UNIT, ("i", units[r.amount.unit].iri))
    return _sorted_groups(g)


_RDF_TYPE = RDF + "type"
_RDF_SUBJECT = RDF + "subject"
_RDF_PREDICATE = RDF + "predicate"
_RDF_OBJECT = RDF + "object"
_RDFS_LABEL = RDFS + "label"
_DCT_TITLE = DCT + "title"
_SKOS_NOTE = SKOS + "note"
_PROV_FROM = PROV + "wasDerivedFrom"
_EKG_UNIT = EKG + "unit"
_EKG_DATE = EKG + "date"
_EKG_START = EKG + "startDate"
_EKG_END = EKG + "endDate"
_STATEMENT = ("i", EKG + "Statement")


def _put(preds: dict[str, list[Term]], p: str, o: Term) -> None:
    objs = preds.get(p)
    if objs is None:
        preds[p] = [o]
    else:
        objs.append(o)


def value_term(value: Any, kind: str) -> Term:
    if kind == QUANTITY and isinstance(value, (int, float)) and not isinstance(value, bool):
        return lit(number_lexical(value), "", XSD + "decimal")
    if kind == DATE:
        return date_literal(str(value))
    if kind == URL:
        return lit(str(value), "", XSD + "anyURI")
    text = str(value)
    return lit(text, lang_of(text)) if _CJK.search(text) else lit(text)


def _statement(g: Groups, st: str, s: Term, p: str, o: Term, d: Dated
               ) -> dict[str, list[Term]]:
    """Add the reified statement ``st`` of the triple (s, p, o) to ``g``; its predicates."""
    preds: dict[str, list[Term]] = {_RDF_TYPE: [_STATEMENT], _RDF_SUBJECT: [s],
                                    _RDF_PREDICATE: [("i", p)], _RDF_OBJECT: [o]}
    if d.sources:
        preds[_PROV_FROM] = [("i", BASE + src) for src in d.sources]
    if d.date:
        preds[_EKG_DATE] = [date_literal(d.date)]
    if d.start:
        preds[_EKG_START] = [date_literal(d.start)]
    if d.end:
        preds[_EKG_END] = [date_literal(d.end)]
    if d.note:
        preds[_SKOS_NOTE] = [lit(d.note)]
    had = g.get(st)
    if had is None:
        g[st] = preds
        return preds
    for key, objs in preds.items():  # (two statements cannot share an IRI; merged if they do)
        for obj in objs:
            _put(had, key, obj)
    return had



@lru_cache(maxsize=4096)  # the same few groups of predicates come back for every statement
def _sorted_keys(keys: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted(keys))


def _sorted_groups(g: Groups) -> Groups:
    """Subjects, predicates and objects sorted, duplicate objects dropped: the order of
    ``sorted(set(triples))``."""
    out: Groups = {}
    for s in sorted(g):
        preds = g[s]
        ordered: dict[str, list[Term]] = {}
        for p in _sorted_keys(tuple(preds)):
            objs = preds[p]
            ordered[p] = objs if len(objs) == 1 else sorted(set(objs))
        out[s] = ordered
    return out


# ---------------------------------------------------------------------------------------------
# Serializers
# ---------------------------------------------------------------------------------------------

_ESC = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ESC_RE = re.compile(r'[\\"\n\r\t\x00-\x08\x0b\x0c\x0e-\x1f\x7f]')


def _esc(text: str) -> str:
    if _ESC_RE.search(text) is None:  # most text needs no escape
        return text
    return _ESC_RE.sub(lambda m: _ESC.get(m.group(), f"\\u{ord(m.group()):04X}"), text)


def _iri_nt(x: str) -> str:
    return "<" + x + ">"


_XSD_STRING = XSD + "string"


def _term_nt(term: Term) -> str:
    if term[0] == "i":
        return "<" + term[1] + ">"
    _, text, lang, dtype = term
    q = '"' + _esc(text) + '"'
    if lang:
        return q + "@" + lang
    if dtype and dtype != _XSD_STRING:
        return q + "^^<" + dtype + ">"
    return q


def to_ntriples(triples: Iterable[Triple]) -> str:
    """N-Triples, one line per triple, in the order given (compile order is deterministic)."""
    return "".join(f"<{s}> <{p}> {_term_nt(o)} .\n" for s, p, o in triples)


def ntriples_body(groups: Groups) -> str:
    """:func:`to_ntriples` of grouped triples (subjects, predicates, objects in their order)."""
    out: list[str] = []
    add = out.append
    term = _term_nt
    for s, preds in groups.items():
        for p, objs in preds.items():
            head = f"<{s}> <{p}> "
            for o in objs:
                add(f"{head}<{o[1]}> .\n" if o[0] == "i" else f"{head}{term(o)} .\n")
    return "".join(out)


_LOCAL_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_BY_LEN = sorted(PREFIXES.items(), key=lambda kv: -len(kv[1]))


@lru_cache(maxsize=65536)
def _qname(x: str) -> str:
    for prefix, ns in _BY_LEN:
        if x.startswith(ns):
            rest = x[len(ns):]
            if _LOCAL_RE.match(rest):
                return f"{prefix}:{rest}"
    return _iri_nt(x)


def _term_ttl(term: Term) -> str:
    if term[0] == "i":
        return _qname(term[1])
    _, text, lang, dtype = term
    q = '"' + _esc(text) + '"'
    if lang:
        return q + "@" + lang
    if dtype and dtype != _XSD_STRING:
        return q + "^^" + _qname(dtype)
    return q


@lru_cache(maxsize=4096)
def _pred_key(p: str) -> tuple[bool, str]:
    """Turtle's predicate order: ``a`` first, then by prefixed name."""
    return p != _RDF_TYPE, _qname(p)


@lru_cache(maxsize=4096)
def _pred_ttl(p: str) -> str:
    return "    " + ("a" if p == _RDF_TYPE else _qname(p)) + " "


Groups = dict[str, dict[str, list[Term]]]


def by_subject(triples: Iterable[Triple]) -> Groups:
    """Triples grouped by subject then predicate, subjects in first-seen order (what
    :func:`turtle_body` and :func:`jsonld_nodes` take instead of triples, to group once)."""
    groups: dict[str, dict[str, list[Term]]] = {}
    for s, p, o in triples:
        preds = groups.get(s)
        if preds is None:
            preds = groups[s] = {}
        objs = preds.get(p)
        if objs is None:
            preds[p] = [o]
        else:
            objs.append(o)
    return groups


TURTLE_HEAD = "".join(f"@prefix {p}: <{ns}> .\n" for p, ns in sorted(PREFIXES.items())) + "\n"


def to_turtle(triples: Iterable[Triple]) -> str:
    """Turtle grouped by subject and predicate; subjects in the order given, the rest sorted."""
    return TURTLE_HEAD + turtle_body(triples)


@lru_cache(maxsize=4096)  # the same few groups of predicates come back for every statement
def _ttl_order(keys: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """A subject's predicates, as grouped -> their Turtle order, with the text starting each."""
    return tuple((p, _pred_ttl(p)) for p in sorted(keys, key=_pred_key))


def turtle_body(triples: Iterable[Triple] | Groups) -> str:
    """The subject blocks of :func:`to_turtle`, without the prefixes."""
    out: list[str] = []
    term = _term_ttl
    qname = _qname
    n_stmt = len(STMT)  # statement IRIs hold a '/' after the prefix: no prefixed name
    groups = triples if isinstance(triples, dict) else by_subject(triples)
    for s, preds in groups.items():
        parts = []
        for p, head in _ttl_order(tuple(preds)):
            objs = preds[p]
            if len(objs) == 1:
                o = objs[0]
                parts.append(head + (qname(o[1]) if o[0] == "i" else term(o)))
            else:
                parts.append(head + " ,\n        ".join(sorted({term(o) for o in objs})))
        out.append(("<" + s + ">" if s.startswith(STMT) and "/" in s[n_stmt:] else _qname(s))
                   + "\n" + " ;\n".join(parts) + " .\n\n")
    return "".join(out)


_dumps = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode


def to_jsonld(triples: Iterable[Triple]) -> str:
    """JSON-LD with a prefix context, one node object per line, subjects in the order given."""
    return jsonld_head() + JSONLD_SEP.join(jsonld_nodes(triples)) + JSONLD_TAIL


JSONLD_SEP = ",\n"
JSONLD_TAIL = "\n]}\n"


def jsonld_head() -> str:
    context: dict[str, str] = {p: ns for p, ns in sorted(PREFIXES.items()) if p}
    context["id"] = BASE
    return _dumps({"@context": context})[:-1] + ',\n"@graph":[\n'


def jsonld_nodes(triples: Iterable[Triple] | Groups) -> list[str]:
    """The node objects of :func:`to_jsonld`, one JSON text per subject.

    Written directly as text: the same bytes as ``json.dumps(node, ensure_ascii=False,
    sort_keys=True, separators=(",", ":"))`` of the node dict (keys sorted, values sorted by
    id, value, language and type), without building the dicts."""
    rdf_type = _RDF_TYPE
    enc = _enc_str
    text = _jsonld_text
    jid = _jsonld_id
    n_stmt = len(STMT)
    lines = []
    groups = triples if isinstance(triples, dict) else by_subject(triples)
    for s, preds in groups.items():
        order, ordered = _jsonld_order(tuple(preds))
        members = []
        for p, key in order:
            if not p:  # statement IRIs hold a '/' after the prefix: not compacted
                members.append('"@id":' + enc(s if s.startswith(STMT) and "/" in s[n_stmt:]
                                              else _compact(s)))
                continue
            objs = preds[p]
            if p == rdf_type:
                members.append(_jsonld_types(tuple(objs)))
            elif len(objs) == 1:
                o = objs[0]
                members.append(key + (jid(o[1]) if o[0] == "i" else text(o)) + "]")
            else:
                members.append(key + ",".join(v for _, v in sorted(_jsonld_keyed(o)
                                                                   for o in objs)) + "]")
        if not ordered:  # two predicates with one key: sorted by their values too (a key
            members.sort()  # ends with its quote, so the texts sort as (key, value) pairs)
        lines.append("{" + ",".join(members) + "}")
    return lines


@lru_cache(maxsize=256)
def _jsonld_types(objs: tuple[Term, ...]) -> str:
    """The ``"@type"`` member of a node of these types."""
    types = sorted(_compact(o[1]) for o in objs if o[0] == "i")
    return '"@type":[' + ",".join(map(_enc_str, types)) + "]"


@lru_cache(maxsize=4096)
def _jsonld_order(keys: tuple[str, ...]) -> tuple[tuple[tuple[str, str], ...], bool]:
    """A subject's predicates, as grouped -> (predicate, '"key":[') in the order of their keys,
    with ("", '"@id"') for the subject's own id; and whether that is the members' order."""
    rdf_type = _RDF_TYPE
    named = [('"@id"', "")] + [('"@type"' if p == rdf_type else _enc_str(_compact(p)), p)
                               for p in keys]
    return (tuple((p, k + ":[") for k, p in sorted(named)),
            len({k for k, _ in named}) == len(named))


_enc_str = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) uses for str


def _jsonld_keyed(o: Term) -> tuple[tuple[str, str, str, str], str]:
    if o[0] == "i":
        cid = _compact(o[1])
        return (cid, "", "", ""), '{"@id":' + _enc_str(cid) + "}"
    if o[2]:
        return ("", o[1], o[2], ""), _jsonld_text(o)
    dtype = _compact(o[3]) if o[3] and o[3] != _XSD_STRING else ""
    return ("", o[1], "", dtype), _jsonld_text(o)


@lru_cache(maxsize=65536)
def _jsonld_id(iri: str) -> str:
    return '{"@id":' + _enc_str(_compact(iri)) + "}"


def _jsonld_text(o: Term) -> str:
    enc = _enc_str
    if o[0] == "i":
        return _jsonld_id(o[1])
    if o[2]:
        return '{"@language":' + enc(o[2]) + ',"@value":' + enc(o[1]) + "}"
    if o[3] and o[3] != _XSD_STRING:
        return '{"@type":' + enc(_compact(o[3])) + ',"@value":' + enc(o[1]) + "}"
    return '{"@value":' + enc(o[1]) + "}"


@lru_cache(maxsize=65536)
def _compact(x: str) -> str:
    for prefix, ns in _BY_LEN:
        if prefix and x.startswith(ns) and _LOCAL_RE.match(x[len(ns):]):
            return f"{prefix}:{x[len(ns):]}"
    if x.startswith(BASE) and _LOCAL_RE.match(x[len(BASE):]):
        return "id:" + x[len(BASE):]
    return x


def to_rdflib(triples: Iterable[Triple]) -> rdflib.Graph:
    """The triples as an ``rdflib.Graph`` (namespaces bound)."""
    import rdflib

    g = rdflib.Graph()
    for prefix, ns in PREFIXES.items():
        g.bind(prefix or "id", ns)
    for s, p, o in triples:
        if o[0] == "i":
            obj: Any = rdflib.URIRef(o[1])
        elif o[2]:
            obj = rdflib.Literal(o[1], lang=o[2])
        elif o[3]:
            obj = rdflib.Literal(o[1], datatype=rdflib.URIRef(o[3]))
        else:
            obj = rdflib.Literal(o[1])
        g.add((rdflib.URIRef(s), rdflib.URIRef(p), obj))
    return g


# ---------------------------------------------------------------------------------------------
# networkx projection
# ---------------------------------------------------------------------------------------------


def to_networkx(compiled: Compiled) -> nx.MultiDiGraph:
    """Entities as nodes (type, names), relations as keyed edges (rel, dates, sources, note).

    Sources are provenance, not ecosystem members: they are not nodes.
    """
    import networkx as nx

    g = nx.MultiDiGraph()
    ents = [e for e in compiled.entities if not e.is_source]
    ids = {e.id for e in ents}
    for e in ents:
        g.add_node(e.id, type=e.type, name_zh=e.name_zh, name_en=e.name_en,
                   label=e.label, aliases=";".join(e.aliases))
    for e in ents:
        for r in e.relations:
            if r.target not in ids:
                continue
            key = relation_stmt_iri(e.id, r.rel, r.target, r.index)[len(STMT):]
            attrs: dict[str, Any] = {"rel": r.rel, "sources": ";".join(r.sources)}
            for k in ("date", "start", "end", "note", "role"):
                v = getattr(r, k)
                if v:
                    attrs[k] = v
            g.add_edge(e.id, r.target, key=key, **attrs)
    return g


_GRAPHML_NODE_KEYS = ("type", "name_zh", "name_en", "label", "aliases")
_GRAPHML_EDGE_KEYS = ("rel", "date", "start", "end", "role", "sources", "note")


def to_graphml(compiled: Compiled) -> str:
    """GraphML for Gephi, Cytoscape and yEd: entities as nodes, relations as keyed edges.

    Written directly (networkx's writer builds an element tree and is about ten times slower);
    the content is the :func:`to_networkx` projection.
    """
    ents = [e for e in compiled.entities if not e.is_source]
    ids = {e.id for e in ents}
    out = [GRAPHML_HEAD]
    out.extend(graphml_node(e) for e in ents)
    out.extend(graphml_edges(e, ids) for e in ents)
    out.append(GRAPHML_TAIL)
    return "".join(out)


GRAPHML_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<graphml xmlns="http://graphml.graphdrawing'
    '.org/xmlns" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation='
    '"http://graphml.graphdrawing.org/xmlns http://graphml.graphdrawing.org/xmlns/1.0/'
    'graphml.xsd">\n'
    + "".join(f'  <key id="n_{k}" for="node" attr.name="{k}" attr.type="string"/>\n'
              for k in _GRAPHML_NODE_KEYS)
    + "".join(f'  <key id="e_{k}" for="edge" attr.name="{k}" attr.type="string"/>\n'
              for k in _GRAPHML_EDGE_KEYS)
    + '  <graph edgedefault="directed">\n')
GRAPHML_TAIL = "  </graph>\n</graphml>\n"


_XML_PLAIN = re.compile(r'[^&<>"\n\r\t]*\Z')  # text that XML takes as it is, quoted or not


def _xml_text(v: str) -> str:
    """``xml.sax.saxutils.escape``, without a call into it for plain text (nearly all)."""
    if _XML_PLAIN.match(v):
        return v
    from xml.sax.saxutils import escape

    return escape(v)


def _xml_attr(v: str) -> str:
    """``xml.sax.saxutils.quoteattr``, without a call into it for plain text."""
    if _XML_PLAIN.match(v):
        return f'"{v}"'
    from xml.sax.saxutils import quoteattr

    return quoteattr(v)


def graphml_node(e: Entity) -> str:
    """The GraphML node of an entity ("" for a source)."""
    if e.is_source:
        return ""
    vals = (e.type, e.name_zh, e.name_en, e.label, ";".join(e.aliases))
    return (f"    <node id={_xml_attr(e.id)}>"
            + "".join(f'<data key="n_{k}">{_xml_text(v)}</data>'
                      for k, v in zip(_GRAPHML_NODE_KEYS, vals, strict=True) if v)
            + "</node>\n")


def graphml_edges(e: Entity, ids: set[str] | None = None) -> str:
    """The GraphML edges of an entity's relations (to entities in ``ids``, when given)."""
    if e.is_source:
        return ""
    out: list[str] = []
    add = out.append
    text = _xml_text
    source = _xml_attr(e.id)
    for r in e.relations:
        if ids is not None and r.target not in ids:
            continue
        key = relation_stmt_iri(e.id, r.rel, r.target, r.index)[len(STMT):]
        add(f"    <edge id={_xml_attr(key)} source={source} target={_xml_attr(r.target)}>")
        if r.rel:
            add(f'<data key="e_rel">{text(r.rel)}</data>')
        if r.date:
            add(f'<data key="e_date">{text(r.date)}</data>')
        if r.start:
            add(f'<data key="e_start">{text(r.start)}</data>')
        if r.end:
            add(f'<data key="e_end">{text(r.end)}</data>')
        if r.role:
            add(f'<data key="e_role">{text(r.role)}</data>')
        if r.sources and (cited := ";".join(r.sources)):
            add(f'<data key="e_sources">{text(cited)}</data>')
        if r.note:
            add(f'<data key="e_note">{text(r.note)}</data>')
        add("</edge>\n")
    return "".join(out)
