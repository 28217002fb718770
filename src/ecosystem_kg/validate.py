"""Check loaded entities against the ontology. Returns located problems; never prints."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Collection, Iterable
from difflib import get_close_matches
from pathlib import PurePath, PurePosixPath
from typing import Any, NamedTuple

from .dates import check_date, date_key
from .errors import Loc, Problem, at
from .load import ID_RE, SOURCE_TYPE, Dated, Entity
from .ontology import DATE, QUANTITY, THING, URL, Ontology

WIKIDATA_RE = re.compile(r"^Q[1-9]\d*$")
NOT_INSTANTIABLE = {"Statement", "Unit"}
ACYCLIC = ("part_of", "subsidiary_of")
# Quantities in these units may fall below zero (a rate or a price change can be negative).
SIGNED_UNITS = {"percent"}


def _suggest(word: str, choices: Iterable[str]) -> str:
    hint = get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {hint[0]!r}?" if hint else ""


_HTTP_URL_RE = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)


def is_http_url(value: str) -> bool:
    return bool(_HTTP_URL_RE.match(value))


def validate(entities: list[Entity], onto: Ontology, rel_paths: dict[str, str] | None = None
             ) -> list[Problem]:
    """All ontology-level problems of a set of loaded entities.

    ``rel_paths`` maps an entity's file (as shown) to its path relative to the graph folder,
    used to check that an entity sits in its type's folder.
    """
    problems: list[Problem] = []
    for ent in entities:
        _check_entity(ent, onto, rel_paths, problems.append)
    problems.extend(validate_links(entities, onto))
    return sorted(set(problems))


def validate_alone(ent: Entity, onto: Ontology, rel_path: str | None) -> list[Problem]:
    """The problems of one entity that do not depend on the other entities. With
    :func:`validate_links` over all entities, the same problems as :func:`validate`."""
    problems: list[Problem] = []
    _check_entity(ent, onto, {ent.path: rel_path} if rel_path is not None else None,
                  problems.append)
    return problems


def validate_links(entities: list[Entity], onto: Ontology, *,
                   checked: Collection[int] = ()) -> list[Problem]:
    """The problems that depend on other entities: duplicate ids, references, ranges, cycles
    (see :func:`validate_alone`).

    ``checked``: positions in ``entities`` of entities whose references and ranges are known
    to be right, because they passed these checks among entities with the same ids and types
    (see :func:`universe_of`); they are not checked again."""
    problems: list[Problem] = []
    add = problems.append
    by_id: dict[str, Entity] = {}
    for ent in entities:
        first = by_id.get(ent.id)
        if first is not None:
            add(Problem(ent.loc("id"), f"duplicate id {ent.id!r}; also defined at "
                        f"{at(first.loc('id'))} (ids must be unique)", "duplicate-id"))
            add(Problem(first.loc("id"), f"duplicate id {ent.id!r}; also defined at "
                        f"{at(ent.loc('id'))} (ids must be unique)", "duplicate-id"))
            continue
        by_id[ent.id] = ent
    sources = {e.id for e in entities if e.is_source}
    skip = set(checked)
    for i, ent in enumerate(entities):
        if i not in skip:
            _check_links(ent, onto, by_id, sources, add)
    _check_cycles(entities, by_id, add)
    return problems


def validate_changed(changed: list[Entity], onto: Ontology, kinds: dict[str, str]
                     ) -> list[Problem]:
    """:func:`validate_links` after an edit that kept every id and type (``kinds``: id ->
    type) and every link that could make a cycle as they were in a graph that passed: only
    the references and ranges of the ``changed`` entities can be wrong."""
    by_id = {k: _Kind(t) for k, t in kinds.items()}
    sources = {k for k, t in kinds.items() if t == SOURCE_TYPE}
    problems: list[Problem] = []
    for ent in changed:
        _check_links(ent, onto, by_id, sources, problems.append)  # type: ignore[arg-type]
    return problems


# What validate_links looks at in one entity besides its id and type: the (rel, target) of
# its relations and every source it cites
Links = tuple[tuple[tuple[str, str], ...], tuple[str, ...]]


def links_of(ent: Entity, onto: Ontology) -> Links:
    """The :data:`Links` of one entity (a source cites nothing that is checked)."""
    if ent.is_source:
        return (), ()
    refs = set(ent.sources)
    for f in ent.facts:
        if f.prop in onto.attributes:
            refs.update(f.sources)
    for r in ent.relations:
        refs.update(r.sources)
    return tuple([(r.rel, r.target) for r in ent.relations]), tuple(sorted(refs))


def links_pass(links: Iterable[tuple[str, Links]], kinds: dict[str, str], onto: Ontology
               ) -> bool:
    """Whether :func:`validate_links` finds nothing, decided from each entity's id and
    :func:`links_of` and every entity's type (``kinds``: id -> type, ids known to be unique),
    without the entities: a build that does not hold them checks them this way, and reads
    them only to say what is wrong."""
    sources = {k for k, t in kinds.items() if t == SOURCE_TYPE}
    in_range: dict[tuple[str, str], bool] = {}
    cited: set[str] = set()
    acyclic: dict[str, dict[str, list[tuple[str, Loc]]]] = {r: {} for r in ACYCLIC}
    nowhere: Loc = ("", 1, 1)
    for eid, (rels, refs) in links:
        cited.update(refs)
        for rel, target in rels:
            kind = kinds.get(target)
            if kind is None or kind == SOURCE_TYPE or target == eid:
                return False
            ok = in_range.get((rel, kind))
            if ok is None:
                info = onto.relations.get(rel)
                ok = in_range[(rel, kind)] = (info is None or kind not in onto.classes
                                              or onto.is_any(kind, info.range))
            if not ok:
                return False
            if rel in acyclic:
                acyclic[rel].setdefault(eid, []).append((target, nowhere))
    if not cited <= sources:
        return False
    found: list[Problem] = []
    for rel, edges in acyclic.items():
        _find_cycles(rel, edges, found.append)
    return not found


class _Kind(NamedTuple):
    """What the checks of a reference look at in the entity it names."""

    type: str

    @property
    def is_source(self) -> bool:
        return self.type == SOURCE_TYPE


def acyclic_links(ent: Entity) -> list[tuple[str, str]]:
    """The entity's links in the relations that must not form a cycle."""
    return sorted((r.rel, r.target) for r in ent.relations if r.rel in ACYCLIC)


def universe_of(pairs: list[str]) -> str:
    """A digest of every entity's id and type (``pairs``: each ``id + "\\t" + type``): what
    the reference and range checks of one entity depend on, besides the entity itself and the
    ontology."""
    digest = hashlib.sha1()
    for key in sorted(pairs):
        digest.update(key.encode())
        digest.update(b"\n")
    return digest.hexdigest()


# Paths split at "/" alone, as the checks below do in the usual case (PurePath otherwise)
_POSIX_PATHS = type(PurePath()) is PurePosixPath


def _stem(path: str) -> str:
    """``PurePath(path).stem``."""
    if _POSIX_PATHS:
        name = path.rpartition("/")[2]
        i = name.rfind(".")
        if 0 < i < len(name) - 1:  # a name with a suffix ("x.yaml"): the same on every Python
            return name[:i]
    return PurePath(path).stem


def _in_folder(rel: str, folder: str) -> bool:
    """Whether ``PurePath(rel).parts`` is ``(folder, name)``."""
    if (_POSIX_PATHS and rel.startswith(folder) and rel[len(folder):len(folder) + 1] == "/"
            and "/" not in folder and folder != "."):
        name = rel[len(folder) + 1:]
        if name and "/" not in name and name != ".":
            return True
    parts = PurePath(rel).parts
    return len(parts) == 2 and parts[0] == folder


def _check_entity(ent: Entity, onto: Ontology, rel_paths: dict[str, str] | None, add: Any
                  ) -> None:
    """The checks that need nothing but the entity (and the ontology)."""
    stem = _stem(ent.path)
    if not ID_RE.match(ent.id):
        add(Problem(ent.loc("id"), f"invalid id {ent.id!r}; use lowercase letters, digits and "
                    "hyphens, starting with a letter (e.g. 'biren-technology')", "bad-id"))
    if ent.id != stem:
        add(Problem(ent.loc("id"), f"id {ent.id!r} does not match the file name {stem!r}; "
                    f"rename the file to {ent.id}.yaml or change the id", "id-file"))
    etype = ent.type
    if etype not in onto.classes or etype in NOT_INSTANTIABLE:
        add(Problem(ent.loc("type"), f"unknown type {ent.type!r}"
                    + _suggest(ent.type, [c for c in onto.classes if c not in NOT_INSTANTIABLE]),
                    "unknown-type"))
        known_type = False
    else:
        known_type = True
        folder = onto.folder_of(etype)
        rel = rel_paths.get(ent.path) if rel_paths else None
        if folder and rel is not None and not _in_folder(rel, folder):
            add(Problem(ent.loc("type"), f"an entity of type {ent.type!r} belongs in "
                        f"{folder}/ (found in {PurePath(rel).parent.as_posix() or '.'}/); "
                        "move the file", "folder"))

    if etype == SOURCE_TYPE:
        d = ent.extra.get("date")
        if d is not None and (msg := check_date(d)):
            add(Problem(ent.loc("date"), msg, "bad-date"))
        url = ent.extra.get("url")
        if url is not None and not is_http_url(url):
            add(Problem(ent.loc("url"), f"URL {url!r} is not an http(s) address", "bad-url"))
        return

    if ent.wikidata is not None and not WIKIDATA_RE.match(ent.wikidata):
        add(Problem(ent.loc("wikidata"), f"invalid Wikidata id {ent.wikidata!r}; write it as "
                    "Q followed by digits (Q8686)", "bad-wikidata"))

    attributes = onto.attributes
    for f in ent.facts:
        info = attributes.get(f.prop)
        if info is None:
            add(Problem(f.loc, f"unknown attribute {f.prop!r}" + _suggest(f.prop, onto.attributes),
                        "unknown-attribute"))
            continue
        if known_type and not onto.is_any(etype, info.domain):
            add(Problem(f.loc, f"attribute {f.prop!r} does not apply to a {ent.type}; it is "
                        f"for {_or(info.domain)}", "domain"))
        if f.date is not None or f.start is not None or f.end is not None:
            _check_dated(f, add)
        kind = info.kind
        if kind == QUANTITY:
            _check_quantity(f.value, f.unit, f.value_loc, f.unit_loc or f.loc, f.prop,
                            info.units, add)
        elif f.unit is not None:
            add(Problem(f.unit_loc or f.loc, f"attribute {f.prop!r} takes no unit", "unit"))
        if kind == DATE:
            if (msg := check_date(str(f.value))):
                add(Problem(f.value_loc, msg, "bad-date"))
        elif kind == URL:
            if not isinstance(f.value, str) or not is_http_url(f.value):
                add(Problem(f.value_loc, f"attribute {f.prop!r} must be an http(s) URL; got "
                            f"{f.value!r}", "bad-url"))
        elif kind != QUANTITY and isinstance(f.value, bool):
            add(Problem(f.value_loc, f"attribute {f.prop!r} must be text", "shape"))

    relations = onto.relations
    for r in ent.relations:
        info_r = relations.get(r.rel)
        if info_r is None:
            add(Problem(r.rel_loc, f"unknown relation {r.rel!r}" + _suggest(r.rel, onto.relations),
                        "unknown-relation"))
        elif known_type and not onto.is_any(etype, info_r.domain):
            add(Problem(r.rel_loc, f"relation {r.rel!r} cannot start from a {ent.type}; "
                        f"its subject must be {_or(info_r.domain)}", "domain"))
        if r.date is not None or r.start is not None or r.end is not None:
            _check_dated(r, add)
        if r.amount is not None:
            units = onto.qualifiers["amount"].units if "amount" in onto.qualifiers else []
            _check_quantity(r.amount.value, r.amount.unit, r.amount.loc,
                            r.amount.unit_loc or r.amount.loc, "amount", units, add)


def _check_links(ent: Entity, onto: Ontology, by_id: dict[str, Entity], sources: set[str],
                 add: Any) -> None:
    """The checks of one entity that need the other entities: references and ranges."""
    if ent.is_source:
        return
    _check_sources(ent.sources, ent.source_locs, sources, add)
    for f in ent.facts:
        if f.prop in onto.attributes:
            _check_sources(f.sources, f.source_locs, sources, add)
    for r in ent.relations:
        target = by_id.get(r.target)
        if target is None:
            add(Problem(r.target_loc, f"unknown entity {r.target!r}"
                        + _suggest(r.target, [k for k, v in by_id.items() if not v.is_source]),
                        "dangling"))
        elif target.is_source:
            add(Problem(r.target_loc, f"{r.target!r} is a source; cite it with 'source', not "
                        "as a relation target", "range"))
        elif r.target == ent.id:
            add(Problem(r.target_loc, f"{ent.id!r} relates to itself with {r.rel!r}; a "
                        "relation needs two different entities", "self-relation"))
        info_r = onto.relations.get(r.rel)
        if (info_r is not None and target is not None and not target.is_source
                and target.type in onto.classes and not onto.is_any(target.type, info_r.range)):
            add(Problem(r.target_loc, f"relation {r.rel!r} cannot point to {r.target!r} "
                        f"(a {target.type}); its object must be {_or(info_r.range)}", "range"))
        _check_sources(r.sources, r.source_locs, sources, add)


def _or(classes: list[str]) -> str:
    if classes == [THING]:
        return "anything"
    if len(classes) == 1:
        return f"a {classes[0]}"
    return "a " + ", a ".join(classes[:-1]) + f" or a {classes[-1]}"


def _check_sources(ids: list[str], locs: list[Loc], sources: set[str], add: Any
                   ) -> None:
    for sid, loc in zip(ids, locs, strict=False):
        if sid not in sources:
            add(Problem(loc, f"unknown source {sid!r}" + _suggest(sid, sources)
                        + (" (add it to graph/sources/)" if not sources else ""),
                        "unknown-source"))


def _check_dated(d: Dated, add: Any) -> None:
    date, start, end = d.date, d.start, d.end
    if date is not None and (msg := check_date(date)):
        add(Problem(d.date_locs["date"], msg, "bad-date"))
        d.date = date = None
    if start is not None and (msg := check_date(start)):
        add(Problem(d.date_locs["start"], msg, "bad-date"))
        d.start = start = None
    if end is not None and (msg := check_date(end)):
        add(Problem(d.date_locs["end"], msg, "bad-date"))
        d.end = end = None
    if date is not None and (start is not None or end is not None):
        add(Problem(d.date_locs["date"], "give either 'date' or 'start'/'end', not both",
                    "bad-date"))
    if start is not None and end is not None:
        if date_key(end, end=True) < date_key(start):
            add(Problem(d.date_locs["end"], f"end {end} is before start {start}",
                        "bad-date"))


def _check_quantity(value: Any, unit: str | None, vloc: Loc, uloc: Loc,
                    prop: str, units: list[str], add: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            isinstance(value, float) and not math.isfinite(value)):
        add(Problem(vloc, f"{prop!r} must be a number (write 6 and unit RMB_100M for 6亿元); "
                    f"got {value!r}", "not-a-number"))
    elif value < 0 and unit not in SIGNED_UNITS:
        add(Problem(vloc, f"{prop!r} cannot be negative ({value})", "negative"))
    if unit is None:
        add(Problem(uloc, f"{prop!r} needs a unit: one of {', '.join(units)}", "unit"))
    elif unit not in units:
        add(Problem(uloc, f"unknown unit {unit!r} for {prop!r}" + _suggest(unit, units)
                    + f" (allowed: {', '.join(units)})", "unit"))


def _check_cycles(entities: list[Entity], by_id: dict[str, Entity], add: Any) -> None:
    for rel in ACYCLIC:
        edges: dict[str, list[tuple[str, Loc]]] = {}
        for e in entities:
            for r in e.relations:
                if r.rel == rel and r.target in by_id and r.target != e.id:
                    edges.setdefault(e.id, []).append((r.target, r.rel_loc))
        _find_cycles(rel, edges, add)


def _find_cycles(rel: str, edges: dict[str, list[tuple[str, Loc]]], add: Any
                 ) -> None:
    """A problem for each cycle met walking ``edges`` (id -> links in ``rel``) depth first."""
    state: dict[str, int] = {}
    for start in sorted(edges):
        if state.get(start):
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = []
        while stack:
            node, i = stack.pop()
            if i == 0:
                state[node] = 1
                path.append(node)
            succ = edges.get(node, [])
            if i < len(succ):
                stack.append((node, i + 1))
                nxt, loc = succ[i]
                if state.get(nxt) == 1:
                    cycle = path[path.index(nxt):] + [nxt]
                    add(Problem(loc, f"cycle in {rel!r}: {' -> '.join(cycle)}; an entity "
                                f"cannot be {rel.replace('_', ' ')} itself", "cycle"))
                elif not state.get(nxt):
                    stack.append((nxt, 0))
            else:
                state[node] = 2
                path.pop()
