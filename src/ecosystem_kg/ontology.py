"""Read the ontology (OWL in Turtle) into plain data the other stages use.

Everything the validator knows about types, relations, attributes and units comes from here:
adding a class, a relation or a unit means editing ``ontology/*.ttl`` only.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import EkgError

EKG = "https://w3id.org/ecosystem-kg/ontology#"
BASE = "https://w3id.org/ecosystem-kg/id/"
THING = "Thing"
DATE = "date"
QUANTITY = "quantity"
URL = "url"
TEXT = "text"


@dataclass
class ClassInfo:
    name: str
    label_en: str
    label_zh: str
    comment: str
    parents: list[str]
    ancestors: list[str] = field(default_factory=list)  # itself first, then up to the root
    folder: str | None = None
    color: str | None = None
    shape: str | None = None


@dataclass
class RelationInfo:
    name: str
    label_en: str
    label_zh: str
    comment: str
    domain: list[str]  # class names; [THING] means anything
    range: list[str]
    symmetric: bool = False
    transitive: bool = False
    parent: str | None = None


@dataclass
class AttributeInfo:
    name: str
    label_en: str
    label_zh: str
    comment: str
    kind: str  # DATE, QUANTITY, URL or TEXT
    domain: list[str]
    units: list[str] = field(default_factory=list)


@dataclass
class UnitInfo:
    symbol: str
    label_en: str
    label_zh: str
    iri: str


@dataclass
class Ontology:
    classes: dict[str, ClassInfo]
    relations: dict[str, RelationInfo]
    attributes: dict[str, AttributeInfo]
    units: dict[str, UnitInfo]
    fingerprint: str
    files: list[str]
    qualifiers: dict[str, AttributeInfo] = field(default_factory=dict)  # domain ekg:Statement

    def is_a(self, cls: str, target: str) -> bool:
        if target == THING:
            return True
        info = self.classes.get(cls)
        return info is not None and target in info.ancestors

    def is_any(self, cls: str, targets: list[str]) -> bool:
        info = self.classes.get(cls)
        ancestors = info.ancestors if info is not None else ()
        for t in targets:  # (is_a of each, the class looked up once: a check per statement)
            if t == THING or t in ancestors:
                return True
        return False

    def folder_of(self, cls: str) -> str | None:
        info = self.classes.get(cls)
        if info is None:
            return None
        for anc in info.ancestors:
            folder = self.classes[anc].folder
            if folder:
                return folder
        return None

    def style_of(self, cls: str) -> tuple[str, str]:
        color, shape = "#9e9e9e", "dot"
        info = self.classes.get(cls)
        for anc in reversed(info.ancestors if info else []):
            a = self.classes[anc]
            color = a.color or color
            shape = a.shape or shape
        return color, shape

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Ontology:
        d = json.loads(text)
        return cls(
            classes={k: ClassInfo(**v) for k, v in d["classes"].items()},
            relations={k: RelationInfo(**v) for k, v in d["relations"].items()},
            attributes={k: AttributeInfo(**v) for k, v in d["attributes"].items()},
            units={k: UnitInfo(**v) for k, v in d["units"].items()},
            fingerprint=d["fingerprint"],
            files=d["files"],
            qualifiers={k: AttributeInfo(**v) for k, v in d["qualifiers"].items()},
        )


def bundled_ontology_dir() -> Path:
    """The ontology shipped with the package (or the checkout's ``ontology/`` folder)."""
    here = Path(__file__).resolve().parent
    for cand in (here / "ontology", here.parent.parent / "ontology"):
        if (cand / "ekg.ttl").is_file():
            return cand
    raise EkgError("the bundled ontology is missing; reinstall ecosystem-kg")


def resolve_ontology_dir(graph_dir: Path, ontology_dir: Path | None = None) -> Path:
    """Explicit folder first, then ``ontology/`` beside the graph folder, then the bundled one."""
    if ontology_dir is not None:
        if not ontology_dir.is_dir() or not any(ontology_dir.glob("*.ttl")):
            raise EkgError(f"{ontology_dir}: no ontology here (expected *.ttl files); "
                           "pass --ontology DIR pointing at a folder with ekg.ttl")
        return ontology_dir
    beside = graph_dir.resolve().parent / "ontology"
    if (beside / "ekg.ttl").is_file():
        return beside
    return bundled_ontology_dir()


def ontology_files(onto_dir: Path) -> list[Path]:
    return sorted(p for p in onto_dir.glob("*.ttl") if p.name != "shapes.ttl")


def fingerprint(onto_dir: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    for p in ontology_files(onto_dir):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def load_ontology(onto_dir: Path, cache_dir: Path | None = None, *,
                  save: bool = True) -> Ontology:
    """Read the ontology, from a JSON cache keyed by the files' hash when one is given (and
    write that cache when it was missing, unless ``save`` is false)."""
    fp = fingerprint(onto_dir)
    cache = cache_dir / _cache_name(fp) if cache_dir else None
    if cache is not None:
        try:
            onto = Ontology.from_json(cache.read_text(encoding="utf-8"))
            if onto.fingerprint == fp:
                return onto
        except (OSError, ValueError, KeyError, TypeError):
            pass
    onto = _parse(onto_dir, fp)
    if cache_dir is not None and save:
        save_ontology(onto, cache_dir)
    return onto


def _cache_name(fp: str) -> str:
    return f"ontology-{fp[:16]}.json"


def save_ontology(onto: Ontology, cache_dir: Path) -> None:
    """Keep the parsed ontology in ``cache_dir`` for :func:`load_ontology` (best effort)."""
    cache = cache_dir / _cache_name(onto.fingerprint)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        tmp.write_text(onto.to_json(), encoding="utf-8")
        tmp.replace(cache)
    except OSError:
        pass


_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_RDFS = "http://www.w3.org/2000/01/rdf-schema#"
_OWL = "http://www.w3.org/2002/07/owl#"
_XSD = "http://www.w3.org/2001/XMLSchema#"


@dataclass(frozen=True)
class _Literal:
    value: str
    language: str | None

    def __str__(self) -> str:
        return self.value


class _Triples:
    """The ontology's triples, looked up by subject and predicate or by predicate and object.
    Terms: an IRI is its text, a blank node ``_:`` and a label unique in the ontology, a
    literal a :class:`_Literal`. Objects keep the order the files give them."""

    def __init__(self) -> None:
        self.sp: dict[Any, dict[str, list[Any]]] = {}
        self.po: dict[str, dict[Any, list[Any]]] = {}

    def add(self, s: Any, p: str, o: Any) -> None:
        objs = self.sp.setdefault(s, {}).setdefault(p, [])
        if o not in objs:  # a set of triples, as RDF has it
            objs.append(o)
            self.po.setdefault(p, {}).setdefault(o, []).append(s)

    def objects(self, s: Any, p: str) -> list[Any]:
        return self.sp.get(s, {}).get(p, [])

    def value(self, s: Any, p: str) -> Any:
        objs = self.objects(s, p)
        return objs[0] if objs else None

    def subjects(self, p: str, o: Any = None) -> list[Any]:
        by_o = self.po.get(p, {})
        if o is not None:
            return by_o.get(o, [])
        return [s for subjects in by_o.values() for s in subjects]

    def has(self, s: Any, p: str, o: Any) -> bool:
        return o in self.objects(s, p)

    def items(self, head: Any) -> list[Any]:
        """The members of the RDF list starting at ``head``."""
        out, seen = [], set()
        while head is not None and head != _RDF + "nil" and head not in seen:
            seen.add(head)
            out.extend(self.objects(head, _RDF + "first")[:1])
            head = self.value(head, _RDF + "rest")
        return out


def _read_turtle(files: list[Path]) -> _Triples:
    """The triples of the ontology's Turtle files (read by pyoxigraph: milliseconds, where
    importing rdflib alone takes a tenth of a second)."""
    import pyoxigraph

    g = _Triples()
    for k, path in enumerate(files):
        def term(t: Any, k: int = k) -> Any:
            if isinstance(t, pyoxigraph.NamedNode):
                return t.value
            if isinstance(t, pyoxigraph.BlankNode):
                return f"_:{k}.{t.value}"
            if isinstance(t, pyoxigraph.Literal):
                return _Literal(t.value, t.language)
            return str(t)  # pragma: no cover - RDF-star terms are not in an ontology

        try:
            for q in pyoxigraph.parse(path=str(path), format=pyoxigraph.RdfFormat.TURTLE):
                g.add(term(q.subject), q.predicate.value, term(q.object))
        except SyntaxError as exc:
            where = f"{path}:{exc.lineno}:{exc.offset}" if exc.lineno else str(path)
            raise EkgError(f"{where}: the ontology could not be parsed: {exc.msg}; fix the "
                           "Turtle there") from None
        except OSError as exc:
            raise EkgError(f"{path}: the ontology could not be read: {exc.strerror}") from None
    return g


def _parse(onto_dir: Path, fp: str) -> Ontology:
    files = ontology_files(onto_dir)
    g = _read_turtle(files)

    def local(term: Any) -> str | None:
        s = str(term)
        return s[len(EKG):] if s.startswith(EKG) else None

    def labels(term: Any) -> tuple[str, str, str]:
        en = zh = ""
        for lab in g.objects(term, _RDFS + "label"):
            lang = getattr(lab, "language", None)
            if lang == "zh":
                zh = str(lab)
            elif lang == "en" or not en:
                en = str(lab)
        comment = next((str(c) for c in g.objects(term, _RDFS + "comment")), "")
        return en, zh, comment

    def class_list(term: Any) -> list[str]:
        if term is None or term == _OWL + "Thing":
            return [THING]
        union = g.value(term, _OWL + "unionOf")
        if union is not None:
            out: list[str] = []
            for member in g.items(union):
                out.extend(class_list(member))
            return sorted(set(out))
        name = local(term)
        return [name] if name else [THING]

    classes: dict[str, ClassInfo] = {}
    for c in sorted(set(g.subjects(_RDF + "type", _OWL + "Class"))):
        name = local(c)
        if not name or g.value(c, _OWL + "unionOf") is not None:
            continue
        en, zh, comment = labels(c)
        parents = sorted(n for p in g.objects(c, _RDFS + "subClassOf") if (n := local(p)))
        folder = g.value(c, EKG + "yamlFolder")
        color = g.value(c, EKG + "color")
        shape = g.value(c, EKG + "shape")
        classes[name] = ClassInfo(name, en, zh, comment, parents, folder=str(folder) if folder
                                  else None, color=str(color) if color else None,
                                  shape=str(shape) if shape else None)
    # named union classes such as ekg:Agent expand to their members
    unions = {local(c): class_list(c) for c in g.subjects(_OWL + "unionOf") if local(c)}

    def expand(names: list[str]) -> list[str]:
        out: set[str] = set()
        for n in names:
            out.update(unions.get(n, [n]))
        return sorted(out)

    for name, info in classes.items():
        seen: list[str] = []
        stack = [name]
        while stack:
            cur = stack.pop(0)
            if cur in seen or cur not in classes:
                continue
            seen.append(cur)
            stack.extend(classes[cur].parents)
        info.ancestors = seen

    relations: dict[str, RelationInfo] = {}
    qualifiers: dict[str, AttributeInfo] = {}
    for p in sorted(set(g.subjects(_RDF + "type", _OWL + "ObjectProperty"))):
        name = local(p)
        if not name:
            continue
        en, zh, comment = labels(p)
        if class_list(g.value(p, _RDFS + "domain")) == ["Statement"]:
            qualifiers[name] = AttributeInfo(name, en, zh, comment, kind="iri",
                                             domain=["Statement"])
            continue
        parent = next((n for q in g.objects(p, _RDFS + "subPropertyOf") if (n := local(q))),
                      None)
        relations[name] = RelationInfo(
            name, en, zh, comment,
            domain=expand(class_list(g.value(p, _RDFS + "domain"))),
            range=expand(class_list(g.value(p, _RDFS + "range"))),
            symmetric=g.has(p, _RDF + "type", _OWL + "SymmetricProperty"),
            transitive=g.has(p, _RDF + "type", _OWL + "TransitiveProperty"),
            parent=parent,
        )

    kinds = {_XSD + "decimal": QUANTITY, _XSD + "integer": QUANTITY, _XSD + "anyURI": URL,
             _XSD + "string": TEXT, EKG + "Date": DATE, _XSD + "date": DATE}
    attributes: dict[str, AttributeInfo] = {}
    for p in sorted(set(g.subjects(_RDF + "type", _OWL + "DatatypeProperty"))):
        name = local(p)
        if not name:
            continue
        en, zh, comment = labels(p)
        rng = g.value(p, _RDFS + "range")
        allowed = sorted(str(g.value(u, EKG + "symbol"))
                         for u in g.objects(p, EKG + "allowedUnit"))
        ainfo = AttributeInfo(name, en, zh, comment, kind=kinds.get(rng, TEXT),
                              domain=expand(class_list(g.value(p, _RDFS + "domain"))),
                              units=allowed)
        (qualifiers if ainfo.domain == ["Statement"] else attributes)[name] = ainfo

    units: dict[str, UnitInfo] = {}
    for u in sorted(set(g.subjects(_RDF + "type", EKG + "Unit"))):
        sym = g.value(u, EKG + "symbol")
        if sym is None:
            continue
        en, zh, _ = labels(u)
        units[str(sym)] = UnitInfo(str(sym), en, zh, str(u))
    return Ontology(classes, relations, attributes, units, fp, [f.name for f in files],
                    qualifiers)
