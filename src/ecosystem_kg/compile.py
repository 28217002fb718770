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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from operator import itemgetter
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
    s, own, stmts = _entity_parts(ent, onto)
    g: Groups = {s: own}
    merged = False
    for st, about in stmts:
        preds = _statement(*about)
        had = g.get(st)
        if had is None:
            g[st] = preds
            continue
        merged = True  # two statements cannot share an IRI; merged if they do
        for key, objs in preds.items():
            for obj in objs:
                _put(had, key, obj)
    if merged:
        return _sorted_groups(g)
    g[s] = _sorted_preds(own)  # the statements' predicates are in order already
    return {k: g[k] for k in sorted(g)}


# A statement of an entity: its IRI, and what it is about: the triple (subject, predicate,
# object); the fact or relation, which dates and cites it; a relation's role, amount and unit
About = tuple[Term, str, Term, Dated, Term | None, Term | None, Term | None]
Statement = tuple[str, About]


def _entity_parts(ent: Entity, onto: Ontology
                  ) -> tuple[str, dict[str, list[Term]], list[Statement]]:
    """An entity's IRI, its own predicates and objects (neither sorted nor free of duplicates),
    and its statements."""
    s = entity_iri(ent.id)
    own: dict[str, list[Term]] = {_RDF_TYPE: [("i", EKG + ent.type)]}

    if ent.is_source:
        add = partial(_put, own)
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
        return s, own, []

    # each of these predicates is set once (the lists are sorted at the end)
    names = [lit(name, lang) for lang, name in (("zh", ent.name_zh), ("en", ent.name_en)) if name]
    if names:
        own[_RDFS_LABEL] = names
        own[_SKOS_PREF_LABEL] = names.copy()
    if ent.aliases:
        own[_SKOS_ALT_LABEL] = [lit(alias, lang_of(alias)) for alias in ent.aliases]
    if ent.description:
        own[_DCT_DESCRIPTION] = [lit(text, lang) for lang, text in ent.description.items()]
    if ent.wikidata:
        own[SKOS + "exactMatch"] = [("i", WD + ent.wikidata)]
    if ent.sources:
        own[_PROV_FROM] = [("i", BASE + src) for src in ent.sources]
    if ent.note:
        own[_SKOS_NOTE] = [lit(ent.note)]

    subject = ("i", s)
    units = onto.units
    stmts: list[Statement] = []
    for f in ent.facts:
        info = onto.attributes.get(f.prop)
        obj = value_term(f.value, info.kind if info else "")
        p = EKG + f.prop
        if (objs := own.get(p)) is None:
            own[p] = [obj]
        else:
            objs.append(obj)
        unit = ("i", units[f.unit].iri) if f.unit and f.unit in units else None
        stmts.append((fact_stmt_iri(ent.id, f.prop, f.index),
                      (subject, p, obj, f, None, None, unit)))

    for r in ent.relations:
        p = EKG + r.rel
        o = ("i", BASE + r.target)
        if (objs := own.get(p)) is None:
            own[p] = [o]
        else:
            objs.append(o)
        role = lit(r.role, lang_of(r.role)) if r.role else None
        amount = unit = None
        if r.amount is not None and isinstance(r.amount.value, (int, float)):
            amount = lit(number_lexical(r.amount.value), "", XSD + "decimal")
            if r.amount.unit and r.amount.unit in units:
                unit = ("i", units[r.amount.unit].iri)
        stmts.append((relation_stmt_iri(ent.id, r.rel, r.target, r.index),
                      (subject, p, o, r, role, amount, unit)))

    return s, own, stmts


_RDF_TYPE = RDF + "type"
_RDF_SUBJECT = RDF + "subject"
_RDF_PREDICATE = RDF + "predicate"
_RDF_OBJECT = RDF + "object"
_RDFS_LABEL = RDFS + "label"
_DCT_TITLE = DCT + "title"
_DCT_DESCRIPTION = DCT + "description"
_SKOS_NOTE = SKOS + "note"
_SKOS_PREF_LABEL = SKOS + "prefLabel"
_SKOS_ALT_LABEL = SKOS + "altLabel"
_PROV_FROM = PROV + "wasDerivedFrom"
_EKG_AMOUNT = EKG + "amount"
_EKG_DATE = EKG + "date"
_EKG_END = EKG + "endDate"
_EKG_ROLE = EKG + "role"
_EKG_START = EKG + "startDate"
_EKG_UNIT = EKG + "unit"
_STATEMENT = ("i", EKG + "Statement")
# the predicates a statement can have, in sorted order: the order :func:`_statement` sets them in
_STATEMENT_ORDER = (_RDF_OBJECT, _RDF_PREDICATE, _RDF_SUBJECT, _RDF_TYPE, _SKOS_NOTE, _PROV_FROM,
                    _EKG_AMOUNT, _EKG_DATE, _EKG_END, _EKG_ROLE, _EKG_START, _EKG_UNIT)


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


def _statement(s: Term, p: str, o: Term, d: Dated, role: Term | None = None,
               amount: Term | None = None, unit: Term | None = None) -> dict[str, list[Term]]:
    """The predicates of the reified statement of the triple (s, p, o), in sorted order (that of
    :data:`_STATEMENT_ORDER`), each one's objects sorted and without duplicates."""
    preds: dict[str, list[Term]] = {_RDF_OBJECT: [o], _RDF_PREDICATE: [("i", p)],
                                    _RDF_SUBJECT: [s], _RDF_TYPE: [_STATEMENT]}
    if d.note:
        preds[_SKOS_NOTE] = [lit(d.note)]
    if d.sources:
        preds[_PROV_FROM] = _sources(d)
    if amount is not None:
        preds[_EKG_AMOUNT] = [amount]
    if d.date:
        preds[_EKG_DATE] = [date_literal(d.date)]
    if d.end:
        preds[_EKG_END] = [date_literal(d.end)]
    if role is not None:
        preds[_EKG_ROLE] = [role]
    if d.start:
        preds[_EKG_START] = [date_literal(d.start)]
    if unit is not None:
        preds[_EKG_UNIT] = [unit]
    return preds


def _sources(d: Dated) -> list[Term]:
    """What cites a fact or relation, sorted, without duplicates (sorted as the IRIs would be:
    they share their start)."""
    if len(d.sources) == 1:
        return [("i", BASE + d.sources[0])]
    return [("i", BASE + src) for src in sorted(set(d.sources))]


def _sorted_preds(preds: dict[str, list[Term]]) -> dict[str, list[Term]]:
    """Predicates sorted, each one's objects sorted and without duplicates."""
    return {p: objs if len(objs) == 1 else _sorted_unique(objs)
            for p, objs in sorted(preds.items())}


def _sorted_unique(objs: list[Term]) -> list[Term]:
    """``sorted(set(objs))``."""
    if len(objs) == 2:  # (names and descriptions in two languages, two sources, ...)
        a, b = objs
        return objs if a < b else [b, a] if b < a else [a]
    return sorted(set(objs))


def _sorted_groups(g: Groups) -> Groups:
    """Subjects, predicates and objects sorted, duplicate objects dropped: the order of
    ``sorted(set(triples))``."""
    return {s: _sorted_preds(g[s]) for s in sorted(g)}


# ---------------------------------------------------------------------------------------------
# Serializers
# ---------------------------------------------------------------------------------------------

_ESC = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ESC_RE = re.compile(r'[\\"\n\r\t\x00-\x08\x0b\x0c\x0e-\x1f\x7f]')


def _esc(text: str) -> str:
    # most text needs no escape (what is escaped: '"', '\\' and characters not printable)
    if '"' not in text and "\\" not in text and text.isprintable():
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
    term = _term_nt
    return "".join([f"<{s}> <{p}> <{o[1]}> .\n" if o[0] == "i" else f"<{s}> <{p}> {term(o)} .\n"
                    for s, preds in groups.items() for p, objs in preds.items() for o in objs])


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


@lru_cache(maxsize=4096)
def _jsonld_key(p: str) -> str:
    """The key of a predicate's members in JSON-LD nodes."""
    return '"@type"' if p == _RDF_TYPE else _enc_str(_compact(p))


_N_STMT = len(STMT)


def _subject_ttl(s: str) -> str:
    # statement IRIs hold a '/' after the prefix: no prefixed name
    return "<" + s + ">" if s.startswith(STMT) and s.find("/", _N_STMT) >= 0 else _qname(s)


def _subject_jsonld(s: str) -> str:
    # statement IRIs hold a '/' after the prefix: not compacted
    return '"@id":' + _enc_str(s if s.startswith(STMT) and s.find("/", _N_STMT) >= 0
                               else _compact(s))


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
        out.append(_subject_ttl(s) + "\n" + " ;\n".join(parts) + " .\n\n")
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
    text = _jsonld_text
    jid = _jsonld_id
    lines = []
    groups = triples if isinstance(triples, dict) else by_subject(triples)
    for s, preds in groups.items():
        order, ordered = _jsonld_order(tuple(preds))
        members = []
        for p, key in order:
            if not p:  # (the subject's own id)
                members.append(_subject_jsonld(s))
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
    named = [('"@id"', "")] + [(_jsonld_key(p), p) for p in keys]
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


# ---------------------------------------------------------------------------------------------
# The three RDF texts together (what a build writes for each file)
# ---------------------------------------------------------------------------------------------

# A term's texts: in N-Triples, Turtle and JSON-LD (a value object), and the JSON-LD one with
# its sort key (the values of a JSON-LD key are sorted by id, value, language and type)
TermTexts = tuple[str, str, str, tuple[tuple[str, str, str, str], str]]


class _TextCache(dict[Term, TermTexts]):
    """Terms -> their texts, made when first asked for (all dropped when there are too many:
    most terms of a file come back in other files, but not all)."""

    def __missing__(self, term: Term) -> TermTexts:
        if len(self) >= _TEXTS_MAX:
            self.clear()
        texts = self[term] = _term_texts(term)
        return texts


_TEXTS = _TextCache()
_TEXTS_MAX = 1 << 15


def _term_texts(term: Term) -> TermTexts:
    """``(_term_nt(term), _term_ttl(term), _jsonld_text(term), _jsonld_keyed(term))``, with a
    literal's text escaped once."""
    if term[0] == "i":
        iri = term[1]
        cid = _compact(iri)
        js = '{"@id":' + _enc_str(cid) + "}"
        return "<" + iri + ">", _qname(iri), js, ((cid, "", "", ""), js)
    _, text, lang, dtype = term
    q = '"' + _esc(text) + '"'
    value = _enc_str(text)
    if lang:
        js = '{"@language":' + _enc_str(lang) + ',"@value":' + value + "}"
        return q + "@" + lang, q + "@" + lang, js, (("", text, lang, ""), js)
    if dtype and dtype != _XSD_STRING:
        ctype = _compact(dtype)
        js = '{"@type":' + _enc_str(ctype) + ',"@value":' + value + "}"
        return q + "^^<" + dtype + ">", q + "^^" + _qname(dtype), js, (("", text, "", ctype), js)
    js = '{"@value":' + value + "}"
    return q, q, js, (("", text, "", ""), js)


_TTL_SEP = " ,\n        "  # between the objects of a predicate in Turtle


def _objects_texts(objs: list[Term]) -> tuple[list[str], str, str]:
    """The texts of a predicate's objects: in N-Triples (in their order), in Turtle (sorted,
    without duplicates) and in JSON-LD (sorted by key), as :func:`turtle_body` and
    :func:`jsonld_nodes` write them."""
    cache = _TEXTS
    if len(objs) == 1:
        texts = cache[objs[0]]
        return [texts[0]], texts[1], texts[2]
    if len(objs) == 2:  # (names and descriptions in two languages, two sources, ...)
        a, b = cache[objs[0]], cache[objs[1]]
        ta, tb = a[1], b[1]
        ka, kb = a[3], b[3]
        return ([a[0], b[0]],
                ta if ta == tb else ta + _TTL_SEP + tb if ta < tb else tb + _TTL_SEP + ta,
                ka[1] + "," + kb[1] if ka <= kb else kb[1] + "," + ka[1])
    many = [cache[o] for o in objs]
    return ([t[0] for t in many], _TTL_SEP.join(sorted({t[1] for t in many})),
            ",".join([js for _, js in sorted([t[3] for t in many])]))


# A predicate: itself, the start of its Turtle lines, the start of its JSON-LD members ("" for
# rdf:type, whose member is the node's "@type"), and its keys in Turtle's and JSON-LD's orders
PredTexts = tuple[str, str, str, tuple[bool, str], str]


@lru_cache(maxsize=4096)
def _pred_texts(p: str) -> PredTexts:
    key = _jsonld_key(p)
    return p, _pred_ttl(p), "" if p == _RDF_TYPE else key + ":[", _pred_key(p), key


# A subject's predicates, as grouped -> their PredTexts; what puts their Turtle lines in order,
# and their JSON-LD members (the subject's "@id" first, then one per predicate) in the order of
# their keys; and whether those keys are unique (when two predicates have one key, the members
# are sorted as texts, as :func:`jsonld_nodes` does)
Pick = Callable[[list[str]], Sequence[str]]
Plan = tuple[tuple[PredTexts, ...], Pick, Pick, bool]
_TTL_KEY, _JSONLD_KEY = itemgetter(3), itemgetter(4)


@lru_cache(maxsize=1024)  # the same few groups of predicates come back for every statement
def _plan(keys: tuple[str, ...]) -> Plan:
    preds = tuple(map(_pred_texts, keys))
    ttl_keys = list(map(_TTL_KEY, preds))
    jsonld_keys = ['"@id"', *map(_JSONLD_KEY, preds)]
    return (preds, _picker(sorted(range(len(ttl_keys)), key=ttl_keys.__getitem__)),
            _picker(sorted(range(len(jsonld_keys)), key=jsonld_keys.__getitem__)),
            len(set(jsonld_keys)) == len(jsonld_keys))


def _same(texts: list[str]) -> list[str]:
    return texts


def _picker(order: list[int]) -> Pick:
    """What takes a list's items in this order."""
    return itemgetter(*order) if len(order) > 1 else _same


def group_texts(groups: Groups) -> tuple[str, str, str]:
    """``(ntriples_body(groups), turtle_body(groups), JSONLD_SEP.join(jsonld_nodes(groups)))``,
    made together: the groups are gone through once, and each term's texts (cached) found once
    for the three."""
    cache = _TEXTS
    nt: list[str] = []
    ttl: list[str] = []
    nodes: list[str] = []
    for s, preds in groups.items():
        heads, ttl_pick, jsonld_pick, unique = _plan(tuple(preds))
        lines: list[str] = []
        members = [_subject_jsonld(s)]
        for (p, head, key, _, _), objs in zip(heads, preds.values(), strict=True):
            if len(objs) == 1:
                texts = cache[objs[0]]
                nt.append(f"<{s}> <{p}> {texts[0]} .\n")
                lines.append(head + texts[1])
                members.append(key + texts[2] + "]" if key else _jsonld_types(tuple(objs)))
            else:
                nts, objects, values = _objects_texts(objs)
                nt.extend([f"<{s}> <{p}> {text} .\n" for text in nts])
                lines.append(head + objects)
                members.append(key + values + "]" if key else _jsonld_types(tuple(objs)))
        ttl.append(_subject_ttl(s) + "\n" + " ;\n".join(ttl_pick(lines)) + " .\n\n")
        ordered = jsonld_pick(members)
        nodes.append("{" + ",".join(ordered if unique else sorted(ordered)) + "}")
    return "".join(nt), "".join(ttl), JSONLD_SEP.join(nodes)


def entity_texts(ent: Entity, onto: Ontology) -> tuple[int, str, str, str]:
    """An entity's number of triples, and what it adds to the N-Triples, Turtle and JSON-LD
    files: ``group_texts(entity_groups(ent, onto))``, made without the groups (its statements,
    all alike, are written by :func:`_statement_texts`)."""
    s, own, stmts = _entity_parts(ent, onto)
    if len({s, *[st for st, _ in stmts]}) <= len(stmts):  # two subjects with one IRI (never
        groups = entity_groups(ent, onto)  # in a valid graph): merged by entity_groups
        return (sum([len(objs) for preds in groups.values() for objs in preds.values()]),
                *group_texts(groups))
    own = _sorted_preds(own)
    blocks = [(s, sum(map(len, own.values())), *group_texts({s: own}))]
    for st, about in stmts:
        blocks.append((st, *_statement_texts(st, *about)))
    blocks.sort()  # (by subject: they differ)
    _, counts, nt, ttl, nodes = zip(*blocks, strict=True)
    return sum(counts), "".join(nt), "".join(ttl), JSONLD_SEP.join(nodes)


def _statement_part(p: str) -> tuple[str, str, str]:
    """A predicate of statements: itself, the start of its Turtle lines, of its JSON-LD members."""
    return p, _pred_ttl(p), _jsonld_key(p) + ":["


# What _statement_texts writes statements with. Their predicates come in Turtle's order, which is
# also JSON-LD's (the tests check it): rdf:type; ekg:amount, ekg:date, ekg:endDate, ekg:role,
# ekg:startDate, ekg:unit (last in _STATEMENT_ORDER, in the same order); prov:wasDerivedFrom;
# rdf:object, rdf:predicate, rdf:subject; skos:note
_OBJECT, _PREDICATE, _SUBJECT, _TYPE, _NOTE, _FROM, _AMOUNT, _DATE, _END, _ROLE, _START, _UNIT = \
    map(_statement_part, _STATEMENT_ORDER)
_STATEMENT_NT, _STATEMENT_TTL = _term_texts(_STATEMENT)[:2]
_STATEMENT_TYPE = _jsonld_types((_STATEMENT,))


def _statement_texts(st: str, s: Term, p: str, o: Term, d: Dated, role: Term | None,
                     amount: Term | None, unit: Term | None) -> tuple[int, str, str, str]:
    """``group_texts({st: _statement(s, p, o, d, role, amount, unit)})``, after its number of
    triples, written directly."""
    cache = _TEXTS
    o_texts, p_texts, s_texts = cache[o], cache[("i", p)], cache[s]
    start = f"<{st}> <"
    nt = [f"{start}{_RDF_OBJECT}> {o_texts[0]} .\n{start}{_RDF_PREDICATE}> {p_texts[0]} .\n"
          f"{start}{_RDF_SUBJECT}> {s_texts[0]} .\n{start}{_RDF_TYPE}> {_STATEMENT_NT} .\n"]
    ttl = [_subject_ttl(st) + "\n" + _TYPE[1] + _STATEMENT_TTL]
    nodes = [_subject_jsonld(st), _STATEMENT_TYPE]
    note = cache[lit(d.note)] if d.note else None
    if note is not None:
        nt.append(f"{start}{_SKOS_NOTE}> {note[0]} .\n")
    sources = _sources(d)
    if sources:
        nts, sources_ttl, sources_jsonld = _objects_texts(sources)
        for text in nts:
            nt.append(f"{start}{_PROV_FROM}> {text} .\n")
    dated: list[tuple[tuple[str, str, str], TermTexts]] = []  # (predicate, object's texts)
    if amount is not None:
        dated.append((_AMOUNT, cache[amount]))
    if d.date:
        dated.append((_DATE, cache[date_literal(d.date)]))
    if d.end:
        dated.append((_END, cache[date_literal(d.end)]))
    if role is not None:
        dated.append((_ROLE, cache[role]))
    if d.start:
        dated.append((_START, cache[date_literal(d.start)]))
    if unit is not None:
        dated.append((_UNIT, cache[unit]))
    for (q, head, key), texts in dated:
        nt.append(f"{start}{q}> {texts[0]} .\n")
        ttl.append(head + texts[1])
        nodes.append(key + texts[2] + "]")
    if sources:
        ttl.append(_FROM[1] + sources_ttl)
        nodes.append(_FROM[2] + sources_jsonld + "]")
    ttl.append(f"{_OBJECT[1]}{o_texts[1]} ;\n{_PREDICATE[1]}{p_texts[1]} ;\n"
               f"{_SUBJECT[1]}{s_texts[1]}")
    nodes.append(f"{_OBJECT[2]}{o_texts[2]}],{_PREDICATE[2]}{p_texts[2]}],"
                 f"{_SUBJECT[2]}{s_texts[2]}]")
    if note is not None:
        ttl.append(_NOTE[1] + note[1])
        nodes.append(_NOTE[2] + note[2] + "]")
    return (4 + (note is not None) + len(sources) + len(dated), "".join(nt),
            " ;\n".join(ttl) + " .\n\n", "{" + ",".join(nodes) + "}")


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


# (the characters XML does not take as they are, quoted or not, are &<>" and \n\r\t: most text has
# none, and writes as it is, without a call to xml.sax.saxutils)


def _xml_text(v: str) -> str:
    """``xml.sax.saxutils.escape``, without a call into it for plain text (nearly all)."""
    if "&" in v or "<" in v or ">" in v or '"' in v or "\n" in v or "\r" in v or "\t" in v:
        from xml.sax.saxutils import escape

        return escape(v)
    return v


def _xml_attr(v: str) -> str:
    """``xml.sax.saxutils.quoteattr``, without a call into it for plain text."""
    if "&" in v or "<" in v or ">" in v or '"' in v or "\n" in v or "\r" in v or "\t" in v:
        from xml.sax.saxutils import quoteattr

        return quoteattr(v)
    return f'"{v}"'


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
