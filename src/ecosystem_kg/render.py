"""The interactive HTML map: one self-contained, offline file.

:func:`render_html` turns a compiled graph into the complete text of an HTML page:
vis-network's JavaScript and CSS (read from the copy shipped inside the pyvis package) and the
page's own script and style are inlined; the graph is embedded as JSON in a
``<script type="application/json">`` block; nothing is fetched from any host, and a
Content-Security-Policy (``default-src 'none'``, scripts allowed by hash only) makes sure of it.

Safety: all text from the YAML files is data. The JSON block escapes ``<``, ``>``, ``&`` and
U+2028/2029; the page builds its panels with ``createElement``/``textContent`` only, gives
vis-network DOM elements (never HTML strings) as tooltips, and links a URL only when it is
http(s).

Speed: positions are computed here (a seeded cluster layout in plain Python, linear time).
Up to :data:`PHYSICS_LIMIT` nodes the browser runs a short, bounded forceAtlas2 stabilisation
from those positions; above it physics is off and the page draws the computed layout at once.

Determinism: the same input gives byte-identical HTML (sorted data, seeded layout, no
timestamps), whatever ``PYTHONHASHSEED``.

pyvis is imported lazily, here only: ``pyvis.network.Network`` holds the vis options and the
node and edge lists, which are filled directly (``add_edge`` is quadratic).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import random
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import replace
from difflib import get_close_matches
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any

from .compile import Compiled, number_lexical
from .dates import check_date, date_key, in_force, latest
from .errors import EkgError
from .load import Entity, entity_dates, source_date

FONT_STACK = ('"PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", "WenQuanYi Micro Hei", '
              'sans-serif')
PHYSICS_LIMIT = 1500  # above this many nodes the layout is computed here and physics is off
LOD_EDGES = 8000  # above this many edges, edges are drawn only near the view or the selection
SPRING = 110.0  # ideal edge length, in vis canvas units
LABEL_INSIDE = {"box", "ellipse", "circle", "database", "text"}
DEFAULT_TITLE = "生态知识图谱 · Ecosystem map"
_HTTP = re.compile(r"^https?://", re.IGNORECASE)


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def render_html(compiled: Compiled, *, keep: set[str] | None = None, as_of: str | None = None,
                title: str | None = None, layout_cache: LayoutCache | None = None) -> str:
    """The complete HTML text of the interactive map.

    ``keep`` restricts the map to those entity ids (edges only between kept nodes); ``as_of``
    (YYYY[-MM[-DD]]) drops relations and attribute values not in force on that date;
    ``layout_cache`` reuses the positions of a previous map of the same nodes and links.
    """
    return _render(compiled, keep, as_of, title, layout_cache)[0]


def render_map(compiled: Compiled, layout_cache: LayoutCache | None = None
               ) -> tuple[str, MapRecords]:
    """The whole-graph map a build writes, and where each entity's records lie in it (so
    that the next build can replace just the records of the entities that changed: see
    :func:`splice_map`)."""
    return _render(compiled, None, None, None, layout_cache)


def _render(compiled: Compiled, keep: set[str] | None, as_of: str | None, title: str | None,
            layout_cache: LayoutCache | None) -> tuple[str, MapRecords]:
    if as_of is not None and (msg := check_date(as_of)):
        raise EkgError(f"as_of: {msg}")
    return _finish(_payload(compiled, keep, as_of, title or DEFAULT_TITLE, layout_cache))


def render_data(data: MapData, layout_cache: LayoutCache | None = None
                ) -> tuple[str, MapRecords]:
    """:func:`render_map` of the entities handed to ``data`` (every one of the graph's)."""
    return _finish(data.payload(DEFAULT_TITLE, layout_cache))


def _finish(data: dict[str, Any]) -> tuple[str, MapRecords]:
    from pyvis.network import Network

    edge_src, ids = data.pop("_edgeSrc"), data.pop("_ids")
    counts, source_max = data.pop("_counts"), data.pop("_sourceMax")
    n = len(data["nodes"])
    net = Network(directed=True, cdn_resources="in_line")
    physics = 0 < n <= PHYSICS_LIMIT and bool(data["edges"])
    if physics:
        net.force_atlas_2based(gravity=-70, central_gravity=0.012, spring_length=int(SPRING),
                               spring_strength=0.06, damping=0.7, overlap=0.3)
    else:
        net.toggle_physics(False)
    net.nodes = data.pop("visNodes")
    net.edges = data.pop("visEdges")
    vis_nodes, vis_edges, _, _, _, options_json = net.get_network_data()
    options = json.loads(options_json)
    _tune_options(options, data, physics=physics, n_edges=len(vis_edges))
    data["vis"] = {"nodes": vis_nodes, "edges": vis_edges, "options": options}
    data["physics"] = physics
    data["lod"] = len(vis_edges) > LOD_EDGES
    page, records = _page(data, edge_src, ids)
    records.extra.update(counts=counts, sourceMax=source_max)
    return page, records


def render_file(*, graph: Path, out: Path, ontology: Path | None, entity: str | None, hops: int,
                types: list[str] | None, rels: list[str] | None, as_of: str | None,
                output: Path | None, notify: Callable[[str], None]) -> Path:
    """Write the map of the graph (or of one entity's neighbourhood) and return its path.

    ``entity`` (id, zh/en name, alias or pinyin) centres the map on that entity's ego network
    within ``hops`` (links followed in both directions, only along ``rels`` when given);
    ``types`` keeps only entities of those types or their subtypes (the centre always stays).
    The file is written atomically to ``output`` or ``out/render-<id or 'subset'>.html``.
    """
    from .pipeline import check

    if hops < 1:
        raise EkgError(f"--hops must be at least 1 (got {hops})")
    if as_of is not None and (msg := check_date(as_of)):
        raise EkgError(f"--as-of: {msg}")
    eid: str | None = None
    if entity is not None:
        from .query import open_index

        eid = open_index(graph, out, ontology, notify=notify).resolve(entity)
    loaded = check(graph, ontology)  # the map needs the entities, not the triples
    onto = loaded.ontology
    compiled = Compiled([], sorted(loaded.entities, key=lambda e: e.id), onto)
    _check_names("type", types, [c for c in onto.classes
                                 if c not in ("Statement", "Unit", "Source")])
    _check_names("relation", rels, list(onto.relations))
    if rels:
        allowed = set(rels)
        compiled = Compiled(compiled.triples, [
            e if e.is_source else replace(e, relations=[r for r in e.relations
                                                        if r.rel in allowed])
            for e in compiled.entities], onto)
    members = [e for e in compiled.entities if not e.is_source]
    if eid is not None and eid not in {e.id for e in members}:
        raise EkgError(f"{entity!r} names a source ({eid}), not an entity of the map")
    keep = {e.id for e in members}
    if eid is not None:
        keep = _ego(members, eid, hops, as_of)
    if types:
        keep = {e.id for e in members if e.id in keep and onto.is_any(e.type, types)}
        if eid is not None:
            keep.add(eid)
    if not keep:
        what = f"of type {', '.join(types)}" if types else "in the graph"
        raise EkgError(f"nothing to draw: no entities {what}")
    if eid is not None and len(keep) == 1 and (types or rels):
        notify(f"note: only {eid} itself matches; its neighbours are filtered out")
    if eid is not None:
        label = next(e.label for e in members if e.id == eid)
        title = f"{label} · {hops} 跳 / {hops} hop{'s' if hops > 1 else ''}"
    else:
        title = DEFAULT_TITLE
    html = render_html(compiled, keep=keep, as_of=as_of, title=title)
    if output is None:
        output = out / f"render-{eid or 'subset'}.html"
        _ensure_out_dir(out)
    _atomic_write(output, html)
    return output


# ---------------------------------------------------------------------------------------------
# Selection helpers for render_file
# ---------------------------------------------------------------------------------------------


def _check_names(kind: str, given: list[str] | None, known: list[str]) -> None:
    for name in given or []:
        if name not in known:
            hint = get_close_matches(name, known, n=1, cutoff=0.6)
            msg = f"unknown {kind} {name!r}"
            msg += f"; did you mean {hint[0]!r}?" if hint else (
                f"; known {kind}s: {', '.join(sorted(known))}")
            raise EkgError(msg)


def _ego(members: list[Entity], centre: str, hops: int, as_of: str | None) -> set[str]:
    """Entities within ``hops`` links of ``centre``, links followed in both directions."""
    ids = {e.id for e in members}
    adj: dict[str, set[str]] = {}
    for e in members:
        for r in e.relations:
            if r.target in ids and in_force(as_of, r.date, r.start, r.end):
                adj.setdefault(e.id, set()).add(r.target)
                adj.setdefault(r.target, set()).add(e.id)
    seen = {centre}
    frontier = [centre]
    for _ in range(hops):
        nxt: list[str] = []
        for node in frontier:
            for other in sorted(adj.get(node, ())):
                if other not in seen:
                    seen.add(other)
                    nxt.append(other)
        frontier = nxt
    return seen


def _ensure_out_dir(out: Path) -> None:
    """Create the build folder if needed, marked as ekg's own so `ekg build` may replace it."""
    if out.is_dir():
        return
    from .pipeline import MARKER

    try:
        out.mkdir(parents=True)
        (out / MARKER).write_text("ecosystem-kg build output; replaced whole by `ekg build`\n",
                                  encoding="utf-8")
    except OSError as exc:
        raise EkgError(f"{out}: cannot create the output folder: {exc.strerror}") from None


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise EkgError(f"{path}: cannot write the map: {exc.strerror}") from None


# ---------------------------------------------------------------------------------------------
# Data for the page
# ---------------------------------------------------------------------------------------------


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return number_lexical(value)
    return str(value)


def _dated(d: Any) -> dict[str, Any]:
    """date/start/end, sources and note of a relation or fact, empty fields left out."""
    out: dict[str, Any] = {}
    for key, short in (("date", "d"), ("start", "st"), ("end", "e"), ("note", "n")):
        v = getattr(d, key)
        if v:
            out[short] = v
    if d.sources:
        out["s"] = list(d.sources)
    return out


def _search_keys(ent: Entity) -> list[str]:
    from .names import normalize, pinyin_key

    keys: set[str] = set()
    for text in (ent.id, ent.name_zh, ent.name_en, *ent.aliases):
        if not text:
            continue
        if k := normalize(text):
            keys.add(k)
        if py := pinyin_key(text):
            keys.add(py)
    return sorted(keys)


def _edge_record(r: Any) -> dict[str, Any]:
    item = _dated(r)
    if r.role:
        item["ro"] = r.role
    if r.amount is not None:
        item["am"] = _value_text(r.amount.value)
        if r.amount.unit:
            item["au"] = r.amount.unit
    return item


def _edge_text(r: Any) -> str:
    """``script_json(_edge_record(r))``, written directly (a map has a record per relation):
    its keys in their sorted order, am, au, d, e, n, ro, s, st."""
    parts = []
    amount, role, note, end, date, start = r.amount, r.role, r.note, r.end, r.date, r.start
    try:
        if amount is not None:
            parts.append('"am":' + _enc(_value_text(amount.value)))
            if amount.unit:
                parts.append('"au":' + _enc(amount.unit))
        if date:
            parts.append('"d":' + _enc(date))
        if end:
            parts.append('"e":' + _enc(end))
        if note:
            parts.append('"n":' + _enc(note))
        if role:
            parts.append('"ro":' + _enc(role))
        if r.sources:
            parts.append('"s":[' + ",".join(map(_enc, r.sources)) + "]")
        if start:
            parts.append('"st":' + _enc(start))
    except TypeError:  # a field that is not text: the encoder says what it makes of it
        return script_json(_edge_record(r))
    text = "{" + ",".join(parts) + "}"
    return text if _UNSAFE.search(text) is None else _safe(text)


# what a relation's record uses: its sources, its amount's unit (or ""), its dates
RelUses = tuple[tuple[str, ...], str, tuple[str, ...]]


def _rel_uses(r: Any) -> RelUses:
    unit = r.amount.unit if r.amount is not None and r.amount.unit else ""
    return tuple(r.sources), unit, tuple(x for x in (r.date, r.start, r.end) if x)


def _add_uses(uses: RelUses, used_sources: set[str], used_units: set[str], dates: set[str]
              ) -> None:
    used_sources.update(uses[0])
    if uses[1]:
        used_units.add(uses[1])
    dates.update(uses[2])


def _vis_node(e: Entity, x: float, y: float, degree: int) -> dict[str, Any]:
    return {"id": e.id, "label": e.name_zh or e.name_en or e.id, "group": e.type,
            "x": x, "y": y, "size": _node_size(degree)}


def _node_size(degree: int) -> float:
    return round(min(42.0, 9.0 + 3.2 * math.sqrt(degree)), 1)


def _node_item(e: Entity, degree: int, as_of: str | None, used_sources: set[str],
               used_units: set[str], used_attrs: set[str], dates: set[str],
               keys: list[str] | None = None) -> dict[str, Any]:
    """An entity's record in the page: names, search keys (``keys``, if known: the
    :func:`_search_keys`), description, facts in force."""
    node: dict[str, Any] = {"id": e.id, "k": _search_keys(e) if keys is None else keys,
                            "deg": degree}
    if e.name_zh:
        node["zh"] = e.name_zh
    if e.name_en:
        node["en"] = e.name_en
    if e.aliases:
        node["al"] = list(e.aliases)
    if e.description:
        node["desc"] = dict(sorted(e.description.items()))
    if e.sources:
        node["s"] = list(e.sources)
        used_sources.update(e.sources)
    if e.note:
        node["n"] = e.note
    if e.wikidata:
        node["wd"] = e.wikidata
    facts = []
    for f in e.facts:
        if not in_force(as_of, f.date, f.start, f.end):
            continue
        fact = {"p": f.prop, "v": _value_text(f.value), **_dated(f)}
        if f.unit:
            fact["u"] = f.unit
            used_units.add(f.unit)
        facts.append(fact)
        used_attrs.add(f.prop)
        used_sources.update(f.sources)
        dates.update(x for x in (f.date, f.start, f.end) if x)
    if facts:
        node["a"] = facts
    return node


def _node_texts(e: Entity, as_of: str | None, used_sources: set[str], used_units: set[str],
                used_attrs: set[str], dates: set[str], keys: list[str]) -> tuple[str, str]:
    """The text of :func:`_node_item`'s record (its :func:`script_json`) up to "deg" and from
    the key after it, written directly (a map has a record per entity): the keys in their
    sorted order, a, al | desc, en, id, k, n, s, wd, zh; a fact's d, e, n, p, s, st, u, v."""
    enc = _enc
    used_sources.update(e.sources)
    try:
        facts = []
        for f in e.facts:
            if not in_force(as_of, f.date, f.start, f.end):
                continue
            date, start, end, note, unit = f.date, f.start, f.end, f.note, f.unit
            used_attrs.add(f.prop)
            used_sources.update(f.sources)
            dates.update(x for x in (date, start, end) if x)
            fact = ['"d":' + enc(date)] if date else []
            if end:
                fact.append('"e":' + enc(end))
            if note:
                fact.append('"n":' + enc(note))
            fact.append('"p":' + enc(f.prop))
            if f.sources:
                fact.append('"s":[' + ",".join(map(enc, f.sources)) + "]")
            if start:
                fact.append('"st":' + enc(start))
            if unit:
                fact.append('"u":' + enc(unit))
                used_units.add(unit)
            fact.append('"v":' + enc(_value_text(f.value)))
            facts.append("{" + ",".join(fact) + "}")
        head = "{"
        if facts:
            head += '"a":[' + ",".join(facts) + "],"
        if e.aliases:
            head += '"al":[' + ",".join(map(enc, e.aliases)) + "],"
        tail = []
        if e.description:
            tail.append('"desc":{' + ",".join([enc(k) + ":" + enc(v) for k, v
                                               in sorted(e.description.items())]) + "}")
        if e.name_en:
            tail.append('"en":' + enc(e.name_en))
        tail.append('"id":' + enc(e.id))
        tail.append('"k":[' + ",".join(map(enc, keys)) + "]")
        if e.note:
            tail.append('"n":' + enc(e.note))
        if e.sources:
            tail.append('"s":[' + ",".join(map(enc, e.sources)) + "]")
        if e.wikidata:
            tail.append('"wd":' + enc(e.wikidata))
        if e.name_zh:
            tail.append('"zh":' + enc(e.name_zh))
    except TypeError:  # a field that is not text: the encoder says what it makes of it (the
        # sets take again what they have already)
        return _node_json(_node_item(e, 0, as_of, used_sources, used_units, used_attrs, dates,
                                     keys))
    text = "," + ",".join(tail) + "}"
    return (head if _UNSAFE.search(head) is None else _safe(head),
            text if _UNSAFE.search(text) is None else _safe(text))


def _node_json(node: dict[str, Any]) -> tuple[str, str]:
    """The :func:`script_json` text of a node record, up to "deg" and from the key after it."""
    head = script_json({k: v for k, v in node.items() if k < "deg"})
    tail = script_json({k: v for k, v in node.items() if k > "deg"})
    return head[:-1] + "," if len(head) > 2 else "{", "," + tail[1:]


def _payload(compiled: Compiled, keep: set[str] | None, as_of: str | None, title: str,
             layout_cache: LayoutCache | None = None) -> dict[str, Any]:
    data = MapData(compiled.ontology, keep, as_of)
    for e in compiled.entities:
        data.add(e)

    def whole_date() -> str | None:
        from .pipeline import data_date

        return data_date(compiled)

    return data.payload(title, layout_cache, whole_date)


class Encoded(str):
    """A record already written as :func:`script_json` text."""


# An entity's part of the map, made from the entity alone (a build makes it where the file is
# read). A source: its id, None, what the page shows of it and its date. Another entity: its
# id, type, record's text before and after "deg", vis-network record's text up to "size", what
# the record uses (sources, units, attributes, dates), its relations known and in force (by
# relation, target and index: their record's text and what it uses) and what they all use, and
# every date the entity carries.
MapPart = tuple[Any, ...]
_ID = itemgetter(0)
_REL_KEY = itemgetter(0, 1, 2)  # relation, target, index


def map_part(e: Entity, relations: Any, as_of: str | None = None,
             names: list[tuple[str, str, str, str]] | None = None) -> MapPart:
    """``e``'s :data:`MapPart` (``relations``: the ontology's; ``as_of``: see :class:`MapData`;
    ``names``: the entity's name rows in the index, if made already: the search keys are
    theirs)."""
    if e.is_source:
        return e.id, None, _source_item(e), source_date(e)
    u: tuple[set[str], set[str], set[str], set[str]] = (set(), set(), set(), set())
    keys = sorted({row[0] for row in names}) if names is not None else _search_keys(e)
    # the keys sort around "deg": the text is cut there and the degree put in later
    head, tail = _node_texts(e, as_of, u[0], u[1], u[2], u[3], keys)
    vis = (f'{{"group":{_json_str(e.type)},"id":{_json_str(e.id)},'
           f'"label":{_json_str(e.name_zh or e.name_en or e.id)},"size":')
    rels = [(r.rel, r.target, r.index, _edge_text(r), _rel_uses(r))
            for r in e.relations
            if r.rel in relations and (as_of is None or in_force(as_of, r.date, r.start, r.end))]
    rels.sort(key=_REL_KEY)
    ru: tuple[set[str], set[str], set[str]] = (set(), set(), set())
    for item in rels:
        _add_uses(item[4], ru[0], ru[1], ru[2])
    return e.id, e.type, head, tail, vis, u, rels, ru, entity_dates(e)


def _source_item(src: Entity) -> dict[str, str]:
    """What the page shows of a source it cites."""
    extra = src.extra
    item = {"t": str(extra.get("title", src.id))}
    for key, short in (("title_en", "te"), ("publisher", "p"), ("publisher_en", "pe"),
                       ("date", "d")):
        if extra.get(key):
            item[short] = str(extra[key])
    url = str(extra.get("url", ""))
    if _HTTP.match(url):
        item["u"] = url
    return item


class MapData:
    """What the map shows, gathered entity by entity (a build makes each entity's
    :data:`MapPart` where its file is read, and the map is finished once they are all in):
    each entity's record and its relations' records, written as JSON text already, and what
    they use (sources, units, attributes, dates). The records that depend on the whole graph
    (degrees, positions, which relations are drawn) are made by :meth:`payload`.

    ``keep`` restricts the map to those entity ids (edges only between kept nodes); ``as_of``
    drops relations and attribute values not in force on that date."""

    def __init__(self, onto: Any, keep: set[str] | None = None, as_of: str | None = None
                 ) -> None:
        self.onto = onto
        self.keep = keep
        self.as_of = as_of
        self.parts: list[MapPart] = []
        self.sources: dict[str, tuple[dict[str, str], str | None]] = {}

    def add(self, e: Entity) -> None:
        if e.is_source or self.keep is None or e.id in self.keep:
            self.add_part(map_part(e, self.onto.relations, self.as_of))

    def add_part(self, part: MapPart) -> None:
        """An entity's :func:`map_part` (made with this map's ``as_of``)."""
        if part[1] is None:
            self.sources[part[0]] = part[2], part[3]
        elif self.keep is None or part[0] in self.keep:
            self.parts.append(part)

    def payload(self, title: str, layout_cache: LayoutCache | None = None,
                whole_date: Callable[[], str | None] | None = None) -> dict[str, Any]:
        """The page's data. ``whole_date``: the data date of the whole graph, for a map that
        does not show every entity."""
        onto = self.onto
        parts = sorted(self.parts, key=_ID)
        index = {p[0]: i for i, p in enumerate(parts)}
        uses = [p[5] for p in parts]
        sources = self.sources

        # relations drawn: both ends kept, in id, relation, target order
        edge_src: list[int] = []
        links: list[tuple[int, int]] = []
        edges: list[Encoded] = []
        drawn: list[str] = []
        degree = [0] * len(parts)
        for s, part in enumerate(parts):
            u = uses[s]
            cands = part[6]
            for rel, target, _, text, _r in cands:
                t = index.get(target)
                if t is None:
                    continue
                edge_src.append(s)
                links.append((s, t))
                edges.append(Encoded(text))
                drawn.append(rel)
                degree[s] += 1
                degree[t] += 1
            if not cands:
                continue
            if all(item[1] in index for item in cands):  # each drawn: what they all use
                ru = part[7]
                u[0].update(ru[0])
                u[1].update(ru[1])
                u[3].update(ru[2])
            else:
                for item in cands:
                    if item[1] in index:
                        _add_uses(item[4], u[0], u[1], u[3])
        rel_count = Counter(drawn)

        type_count = Counter(p[1] for p in parts)
        nodes: list[Encoded] = []
        vis_nodes: list[Encoded] = []
        positions = (layout_cache.layout(len(parts), links) if layout_cache is not None
                     else _layout(len(parts), links))
        for s, part in enumerate(parts):
            head, tail, vis = part[2:5]
            deg = degree[s]
            x, y = positions[s]
            vis_nodes.append(Encoded(f'{vis}{_node_size(deg)!r},"x":{x!r},"y":{y!r}}}'))
            nodes.append(Encoded(f'{head}"deg":{deg}{tail}'))
        counts: dict[str, Counter[str]] = {
            key: Counter(chain.from_iterable(u[k] for u in uses))
            for k, key in enumerate("suad")}
        counts["all"] = Counter(chain.from_iterable(p[8] for p in parts))
        used_sources, used_units, used_attrs = set(counts["s"]), set(counts["u"]), set(counts["a"])
        source_max = max((d for _, d in sources.values() if d is not None), default=None)

        types = []
        for name in sorted(type_count, key=lambda t: (-type_count[t], t)):
            cls = onto.classes.get(name)
            color, shape = onto.style_of(name)
            types.append({"n": name, "zh": cls.label_zh if cls else name,
                          "en": cls.label_en if cls else name, "c": color, "sh": shape,
                          "cnt": type_count[name]})
        rels = []
        for name in sorted(rel_count, key=lambda r: (-rel_count[r], r)):
            info = onto.relations[name]
            rels.append({"n": name, "zh": info.label_zh or name, "en": info.label_en or name,
                         "sym": info.symmetric, "cnt": rel_count[name]})
        # the drawn edges as [from, to, relation]: positions in nodes and rels (the page makes
        # vis-network's edge objects from them; written out, they were half the page)
        rel_pos = {r["n"]: i for i, r in enumerate(rels)}
        vis_edges = [[s, t, rel_pos[rel]] for (s, t), rel in zip(links, drawn, strict=True)]
        attrs = _labels(used_attrs, onto.attributes)
        units = _labels(used_units, onto.units)
        src_out: dict[str, dict[str, str]] = {}
        for sid in sorted(used_sources):
            src = sources.get(sid)
            if src is not None:
                src_out[sid] = src[0]

        # every entity's dates are counted above when the map shows them all
        date = (latest(counts["all"], source_max) if self.keep is None or whole_date is None
                else whole_date())
        return {
            "title": title,
            "dataDate": date,
            "asOf": self.as_of,
            "font": FONT_STACK,
            "nodes": nodes,
            "edges": edges,
            "visNodes": vis_nodes,
            "visEdges": vis_edges,
            "types": types,
            "rels": rels,
            "attrs": attrs,
            "units": units,
            "sources": src_out,
            "dates": _date_list(counts["d"]),
            "_ids": [p[0] for p in parts],  # not in the page
            "_edgeSrc": edge_src,  # nor these
            "_counts": {k: dict(sorted(c.items())) for k, c in counts.items()},
            "_sourceMax": source_max,
        }


def _labels(used: Iterable[str], terms: dict[str, Any]) -> dict[str, list[str]]:
    """[zh, en] labels of the attributes or units used (``terms``: the ontology's)."""
    out = {}
    for name in sorted(used):
        t = terms.get(name)
        out[name] = [t.label_zh or name, t.label_en or name] if t else [name, name]
    return out


def _date_list(dates: Iterable[str]) -> list[str]:
    return sorted(dates, key=lambda d: (date_key(d), d))


def _tune_options(options: dict[str, Any], data: dict[str, Any], *, physics: bool,
                  n_edges: int) -> None:
    """vis-network options beyond what pyvis sets: groups (type styles), fonts, interaction."""
    big = not physics
    groups = {}
    for t in data["types"]:
        g: dict[str, Any] = {"color": {"background": t["c"], "border": t["c"],
                                       "highlight": {"background": t["c"], "border": "#111"},
                                       "hover": {"background": t["c"], "border": "#111"}},
                             "shape": t["sh"]}
        if t["sh"] in LABEL_INSIDE:
            g["font"] = {"color": "#ffffff", "strokeWidth": 0}
        groups[t["n"]] = g
    options["groups"] = groups
    options["nodes"] = {"font": {"face": FONT_STACK, "size": 14, "color": "#1f2933",
                                 "strokeWidth": 3, "strokeColor": "#ffffff"},
                        "borderWidth": 1, "borderWidthSelected": 3,
                        "scaling": {"label": {"drawThreshold": 9 if big else 5}}}
    options["edges"] = {
        "arrows": {"to": {"enabled": True, "scaleFactor": 0.5}},
        "color": {"color": "#9aa5b1", "highlight": "#243b53", "hover": "#243b53",
                  "inherit": False, "opacity": 1.0},
        "font": {"face": FONT_STACK, "size": 10, "color": "#52606d", "strokeWidth": 3,
                 "strokeColor": "#ffffff", "align": "middle"},
        "smooth": {"enabled": True, "type": "continuous", "roundness": 0.2} if not big
        else {"enabled": False},
        "width": 1, "selectionWidth": 2, "hoverWidth": 1,
    }
    options["interaction"] = {"hover": True, "tooltipDelay": 120, "navigationButtons": False,
                              "keyboard": {"enabled": False}, "multiselect": False,
                              "hideEdgesOnDrag": big or n_edges > 4000,
                              "hideEdgesOnZoom": big or n_edges > 4000,
                              "dragNodes": True}
    options["layout"] = {"improvedLayout": False, "randomSeed": 7}
    if physics:
        ph = options["physics"]
        ph["stabilization"] = {"enabled": True, "iterations": 120, "updateInterval": 40,
                               "fit": True, "onlyDynamicEdges": False}
        ph["minVelocity"] = 2.0
        ph["maxVelocity"] = 40
        ph["timestep"] = 0.5
        ph["adaptiveTimestep"] = True
    else:
        options["physics"] = {"enabled": False}
    options.pop("configure", None)


# ---------------------------------------------------------------------------------------------
# Layout: seeded force-directed placement in plain Python
# ---------------------------------------------------------------------------------------------


class LayoutCache:
    """The last whole-graph map's positions, kept beside the build (``.cache/layout.bin``): an
    edit that leaves the nodes and links as they were (a description, a date, a source) does
    not lay the graph out again. The file holds a SHA-1 of the layout's input and the
    positions as doubles; anything else found there is ignored."""

    VERSION = b"ekg-layout-1"

    def __init__(self, read: Path | None, write: Path | None) -> None:
        self.read, self.write = read, write

    def layout(self, n: int, links: list[tuple[int, int]]) -> list[tuple[float, float]]:
        from array import array

        flat = array("q", [n])
        for a, b in links:
            flat.append(a)
            flat.append(b)
        from . import __version__

        key = hashlib.sha1(self.VERSION + __version__.encode() + flat.tobytes()).digest()
        if self.read is not None:
            try:
                data = self.read.read_bytes()
            except OSError:
                data = b""
            if len(data) == len(key) + 16 * n and data[:len(key)] == key:
                xy = array("d")
                xy.frombytes(data[len(key):])
                if all(math.isfinite(v) for v in xy):
                    if self.write is not None and self.write != self.read:
                        self.write.write_bytes(data)  # kept for the build after this one
                    return list(zip(xy[0::2], xy[1::2], strict=True))
        positions = _layout(n, links)
        if self.write is not None:
            xy = array("d", [v for pos in positions for v in pos])
            self.write.write_bytes(key + xy.tobytes())
        return positions


class MapRecords:
    """Where each entity's records lie in a map page: for node ``i`` (in id order), six
    offsets (characters) into the page: its entry in ``nodes``, in ``vis.nodes`` and its run
    of entries in ``edges``, each as start and end. ``extra``: where the lists of attributes,
    units and dates and the data date lie (``top``), and how many entities use each source,
    unit, attribute and date (``counts``; ``all``: the dates of every relation and fact, for
    the data date, with ``sourceMax``, the latest source date)."""

    MAGIC = b"ekg-map-2\n"

    def __init__(self, ids: list[str], spans: Any, extra: dict[str, Any] | None = None
                 ) -> None:
        self.ids = ids
        self.spans = spans  # array("q"), 6 per node
        self.extra: dict[str, Any] = extra if extra is not None else {}

    def save(self, path: Path, key: str, page: Path) -> None:
        """Kept beside the build with ``key`` (what the page was made from) and the page
        file's size and time: any other page, or any other input, and it is not used."""
        st = page.stat()
        head = json.dumps({"key": key, "page": [st.st_size, st.st_mtime_ns],
                           "n": len(self.ids), "extra": self.extra},
                          ensure_ascii=False, sort_keys=True).encode("utf-8")
        ids = "\n".join(self.ids).encode("utf-8")
        path.write_bytes(b"".join([self.MAGIC, head, b"\n", self.spans.tobytes(), ids]))

    @classmethod
    def load(cls, path: Path, key: str, page: Path) -> MapRecords | None:
        from array import array

        try:
            data = path.read_bytes()
            st = page.stat()
            if not data.startswith(cls.MAGIC):
                return None
            end = data.index(b"\n", len(cls.MAGIC))
            head = json.loads(data[len(cls.MAGIC):end])
            if (head.get("key") != key or head.get("page") != [st.st_size, st.st_mtime_ns]
                    or not isinstance(head.get("n"), int)
                    or not isinstance(head.get("extra"), dict)):
                return None
            n = head["n"]
            spans = array("q")
            spans.frombytes(data[end + 1:end + 1 + 48 * n])
            ids = data[end + 1 + 48 * n:].decode("utf-8").split("\n") if n else []
        except (OSError, ValueError):  # unreadable or damaged: the map is drawn again
            return None
        if len(spans) != 6 * n or len(ids) != n:
            return None
        return cls(ids, spans, head["extra"])


def map_key(inputs: str) -> str:
    """What a build's map page depends on besides the entities: ``inputs`` (the graph folder
    and ontology, from the caller), this module and the vis-network shipped with pyvis."""
    import importlib.util

    h = hashlib.sha1(inputs.encode())
    try:
        h.update(Path(__file__).read_bytes())
        spec = importlib.util.find_spec("pyvis")
        if spec is None or spec.origin is None:
            return ""
        root = Path(spec.origin).parent
        for f in [root / "network.py", *sorted(root.glob("lib/vis-*/vis-network.*"))]:
            st = f.stat()
            h.update(f"{f}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    except OSError:
        return ""
    return h.hexdigest()


def splice_map(page: str, records: MapRecords, changes: list[tuple[Entity, Entity]],
               ontology: Any) -> tuple[str, MapRecords] | None:
    """The whole-graph map after the entities in ``changes`` (before, after) were edited,
    made from the previous map ``page`` by replacing their records (and the lists of dates,
    attributes and units and the data date, when the edit changes them); or None when the
    edit reaches beyond them (a relation drawn or not drawn, a type, the set of sources
    cited), and the map must be drawn again.

    Every replaced record or list is first made again as it was before the edit and compared
    with the page's text: a page that does not match its records is never spliced."""
    from bisect import bisect_right

    spans = records.spans
    try:
        counts = {k: Counter(v) for k, v in records.extra["counts"].items()}
        top = {k: (int(v[0]), int(v[1])) for k, v in records.extra["top"].items()}
        source_max = records.extra["sourceMax"]
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        return None
    if set(counts) != {"s", "u", "a", "d", "all"} or set(top) != set(TOP_SPANS):
        return None
    was_keys = {k: set(c) for k, c in counts.items()}
    where = {id_: i for i, id_ in enumerate(records.ids)}
    relations = ontology.relations

    def drawn(e: Entity) -> list[Any]:
        out = [r for r in e.relations if r.target in where and r.rel in relations]
        out.sort(key=lambda r: (r.rel, r.target, r.index))
        return out

    edits: list[tuple[int, int, str]] = []
    for before, after in changes:
        i = where.get(after.id)
        if (i is None or before.id != after.id or before.type != after.type
                or before.is_source or after.is_source):
            return None
        was, now = drawn(before), drawn(after)
        if ([(r.rel, r.target, r.index) for r in was]
                != [(r.rel, r.target, r.index) for r in now]):
            return None
        (ns, ne, vs, ve, es, ee) = spans[6 * i:6 * i + 6]
        try:
            deg = json.loads(page[ns:ne])["deg"]
            vis = json.loads(page[vs:ve])
            x, y = vis["x"], vis["y"]
        except (ValueError, KeyError, TypeError):
            return None
        texts = []
        for e, rels, sign in ((before, was, -1), (after, now, 1)):
            used: tuple[set[str], set[str], set[str], set[str]] = (set(), set(), set(), set())
            node = script_json(_node_item(e, deg, None, used[0], used[1], used[2], used[3]))
            for r in rels:
                _add_uses(_rel_uses(r), used[0], used[1], used[3])
            texts.append((node, script_json(_vis_node(e, x, y, deg)),
                          ",".join([_edge_text(r) for r in rels])))
            for key, ks in (*zip("suad", used, strict=True), ("all", entity_dates(e))):
                counts[key].update(dict.fromkeys(ks, sign))
        if texts[0] != (page[ns:ne], page[vs:ve], page[es:ee]):
            return None
        for (start, end), old, new in zip(((ns, ne), (vs, ve), (es, ee)), texts[0], texts[1],
                                          strict=True):
            if old != new:
                edits.append((start, end, new))
    if any(v < 0 for c in counts.values() for v in c.values()):
        return None  # the counts were not those of the page
    counts = {k: +c for k, c in counts.items()}  # without the keys no entity uses now
    keys = {k: set(c) for k, c in counts.items()}
    if keys["s"] != was_keys["s"]:  # the page lists the sources cited, with their details
        return None

    def rewrite(name: str, old: Any, new: Any) -> bool:
        start, end = top[name]
        if page[start:end] != script_json(old):
            return False
        edits.append((start, end, script_json(new)))
        return True

    for name, key, make in (("attrs", "a", lambda k: _labels(k, ontology.attributes)),
                            ("units", "u", lambda k: _labels(k, ontology.units)),
                            ("dates", "d", _date_list)):
        if keys[key] != was_keys[key] and not rewrite(name, make(was_keys[key]),
                                                      make(keys[key])):
            return None
    was_date, date = latest(was_keys["all"], source_max), latest(keys["all"], source_max)
    if date != was_date and not rewrite("dataDate", was_date, date):
        return None
    edits.sort()
    parts: list[str] = []
    at = 0
    ends: list[int] = []
    shift: list[int] = [0]
    for start, end, new in edits:
        if start < at:  # pragma: no cover - records never overlap
            return None
        parts += [page[at:start], new]
        at = end
        ends.append(end)
        shift.append(shift[-1] + len(new) - (end - start))
    parts.append(page[at:])

    def moved(v: int) -> int:
        return v + shift[bisect_right(ends, v)]  # edits that end at or before v move it

    new_spans = spans[:]
    if edits:
        for k, v in enumerate(spans):
            if v >= ends[0]:
                new_spans[k] = moved(v)
    extra = {"top": {k: [moved(a), moved(b)] for k, (a, b) in top.items()},
             "counts": {k: dict(sorted(c.items())) for k, c in counts.items()},
             "sourceMax": source_max}
    return "".join(parts), MapRecords(records.ids, new_spans, extra)


def _layout(n: int, edges: Iterable[tuple[int, int]], *, seed: int = 1
            ) -> list[tuple[float, float]]:
    """Positions for ``n`` nodes, in time linear in nodes and links (plus hubs squared).

    The best-connected nodes (about sqrt(n) of them) are anchors; every other node joins the
    anchor it reaches first breadth-first (ties go to the smaller hub, which keeps clusters
    balanced). Anchors are laid out with a small force simulation whose springs are the links
    between clusters and whose repulsion grows with cluster size; then each cluster's members
    sit on a sunflower spiral around their anchor, best-connected first. Unlinked nodes form
    one more cluster. Seeded: same input, same output.
    """
    if n == 0:
        return []
    rng = random.Random(seed)
    k = SPRING
    adj: list[list[int]] = [[] for _ in range(n)]
    seen_pairs: set[tuple[int, int]] = set()
    for a, b in edges:
        if a == b:
            continue
        key = (a, b) if a < b else (b, a)
        if key not in seen_pairs:
            seen_pairs.add(key)
            adj[a].append(b)
            adj[b].append(a)
    for lst in adj:
        lst.sort()
    deg = [len(x) for x in adj]

    # -- clusters: anchors claim nodes breadth-first ---------------------------------------
    n_anchor = max(1, round(math.sqrt(n) * 1.2))
    by_deg = sorted((i for i in range(n) if deg[i] > 0), key=lambda i: (-deg[i], i))
    anchors = by_deg[:n_anchor]
    owner = [-1] * n
    clusters: list[list[int]] = []

    def claim(seeds: list[int]) -> None:
        queue: list[int] = []
        for s_ in seeds:
            owner[s_] = len(clusters)
            clusters.append([s_])
            queue.append(s_)
        qi = 0
        while qi < len(queue):
            p_ = queue[qi]
            qi += 1
            for c in adj[p_]:
                if owner[c] < 0:
                    owner[c] = owner[p_]
                    clusters[owner[c]].append(c)
                    queue.append(c)

    claim(sorted(anchors, key=lambda i: (deg[i], i)))  # smaller hubs first win ties
    for i in by_deg:  # components no anchor reaches
        if owner[i] < 0:
            claim([i])
    lonely = [i for i in range(n) if owner[i] < 0]
    if lonely:
        for i in lonely:
            owner[i] = len(clusters)
        clusters.append(lonely)
    nc = len(clusters)

    # -- anchor layout: springs between linked clusters, size-aware repulsion ---------------
    radius = [k * 0.6 * math.sqrt(len(c) + 1) for c in clusters]
    weight: dict[tuple[int, int], int] = {}
    for (a, b) in seen_pairs:
        ca, cb = owner[a], owner[b]
        if ca != cb:
            key2 = (ca, cb) if ca < cb else (cb, ca)
            weight[key2] = weight.get(key2, 0) + 1
    golden = math.pi * (3.0 - math.sqrt(5.0))
    order = sorted(range(nc), key=lambda c: (-len(clusters[c]), c))
    total_r = math.sqrt(sum(r * r for r in radius))
    cx = [0.0] * nc
    cy = [0.0] * nc
    for j, c in enumerate(order):  # start on a sunflower, biggest in the middle
        r = total_r * 1.2 * math.sqrt((j + 0.5) / nc)
        cx[c] = r * math.cos(j * golden)
        cy[c] = r * math.sin(j * golden)
    if 1 < nc <= 600:
        # (the loops below keep their sums in locals: the same additions in the same order
        # as indexing the lists each time, in half the time)
        springs = [(a, b, math.log1p(w), radius[a] + radius[b])
                   for (a, b), w in sorted(weight.items())]
        iters = 60 if nc <= 150 else 25
        sqrt = math.sqrt
        for it in range(iters):
            temp = total_r * 0.1 * (1.0 - it / iters) + k * 0.2
            fx = [0.0] * nc
            fy = [0.0] * nc
            for a in range(nc):
                xa, ya, ra = cx[a], cy[a], radius[a]
                sx, sy = fx[a], fy[a]
                for b, xb, yb, rb in zip(range(a + 1, nc), cx[a + 1:], cy[a + 1:],
                                         radius[a + 1:], strict=True):
                    dx = xa - xb
                    dy = ya - yb
                    rr = ra + rb
                    f = rr * rr / (dx * dx + dy * dy + 1.0)
                    dx *= f
                    dy *= f
                    sx += dx
                    sy += dy
                    fx[b] -= dx
                    fy[b] -= dy
                fx[a], fy[a] = sx, sy
            for a, b, lw, rs in springs:
                dx = cx[a] - cx[b]
                dy = cy[a] - cy[b]
                f = lw * (sqrt(dx * dx + dy * dy) + 0.01) / rs * 0.5
                dx *= f
                dy *= f
                fx[a] -= dx
                fy[a] -= dy
                fx[b] += dx
                fy[b] += dy
            for c in range(nc):
                dx = fx[c] - cx[c] * 0.05
                dy = fy[c] - cy[c] * 0.05
                d = math.sqrt(dx * dx + dy * dy)
                if d > temp:
                    dx *= temp / d
                    dy *= temp / d
                cx[c] += dx
                cy[c] += dy
        gap0 = k * 0.3
        for _ in range(20):  # push overlapping clusters apart
            moved = False
            for a in range(nc):
                ra = radius[a]
                for b in range(a + 1, nc):
                    dx = cx[a] - cx[b]
                    dy = cy[a] - cy[b]
                    d = math.sqrt(dx * dx + dy * dy) + 1e-6
                    gap = ra + radius[b] + gap0 - d
                    if gap > 0:
                        moved = True
                        ux, uy = dx / d, dy / d
                        cx[a] += ux * gap / 2
                        cy[a] += uy * gap / 2
                        cx[b] -= ux * gap / 2
                        cy[b] -= uy * gap / 2
            if not moved:
                break

    # -- members on a sunflower around their anchor ---------------------------------------
    xs = [0.0] * n
    ys = [0.0] * n
    for c, members in enumerate(clusters):
        head = members[0] if c < nc - (1 if lonely else 0) else None
        rest = sorted(members[1:] if head is not None else members, key=lambda i: (-deg[i], i))
        if head is not None:
            xs[head], ys[head] = cx[c], cy[c]
        phase = rng.random() * 2 * math.pi
        offset = 1 if head is not None else 0
        for j, i in enumerate(rest, offset):
            r = k * 0.6 * math.sqrt(j + 0.5) if j else 0.0
            xs[i] = cx[c] + r * math.cos(phase + j * golden)
            ys[i] = cy[c] + r * math.sin(phase + j * golden)
    return [(round(xs[i], 1), round(ys[i], 1)) for i in range(n)]


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------


def _vis_assets() -> tuple[str, str]:
    """vis-network's JS and CSS from the copy shipped in the pyvis package (newest version)."""
    import pyvis

    lib = Path(pyvis.__file__).resolve().parent / "lib"

    def version(p: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", p.name))

    dirs = sorted((p for p in lib.glob("vis-*") if (p / "vis-network.min.js").is_file()),
                  key=version)
    if not dirs:
        raise EkgError(f"{lib}: vis-network is missing from the pyvis package; reinstall pyvis")
    js = (dirs[-1] / "vis-network.min.js").read_text(encoding="utf-8")
    css = (dirs[-1] / "vis-network.css").read_text(encoding="utf-8")
    return js, css


_ENCODE = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                           allow_nan=False).encode
_UNSAFE = re.compile("[&<>\u2028\u2029]")


def script_json(obj: Any) -> str:
    """JSON safe inside an HTML ``<script>`` element: no ``<``, ``>``, ``&``, U+2028/2029."""
    text: str = _ENCODE(obj)
    return text if _UNSAFE.search(text) is None else _safe(text)


def _safe(text: str) -> str:
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


_enc = json.encoder.encode_basestring  # what the encoder makes of a str (ensure_ascii=False)


def _json_str(text: Any) -> str:
    """``script_json(text)`` of a str, quicker."""
    if type(text) is not str:
        return script_json(text)
    out: str = _enc(text)
    return out if _UNSAFE.search(out) is None else _safe(out)


def _inline(code: str, tag: str) -> str:
    """Code safe between <tag> and </tag>: no closing tag or comment opener inside."""
    return re.sub(rf"</(?={tag})", r"<\\/", code, flags=re.IGNORECASE).replace("<!--", "<\\!--")


def _sha256(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode() + "'"


def _escape_text(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def _page(data: dict[str, Any], edge_src: list[int], ids: list[str]) -> tuple[str, MapRecords]:
    vis_js, vis_css = _vis_assets()
    vis_js = _inline(re.sub(r"\n//# sourceMappingURL=\S*\s*$", "\n", vis_js), "script")
    app_js = _inline(APP_JS, "script")
    css = _inline(vis_css, "style") + "\n" + APP_CSS.replace("__FONT__", FONT_STACK)
    csp = ("default-src 'none'; "
           f"script-src {_sha256(vis_js)} {_sha256(app_js)}; "
           "style-src 'unsafe-inline'; img-src data:; font-src data:; "
           "base-uri 'none'; form-action 'none'")
    title = _escape_text(str(data["title"]))
    out = _Text()
    out.add("".join([
        "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n",
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\n",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
        "<meta name=\"referrer\" content=\"no-referrer\">\n",
        f"<title>{title}</title>\n<style>\n", css, "\n</style>\n</head>\n<body>\n",
        BODY_HTML.replace("__TITLE__", title),
        "<script type=\"application/json\" id=\"ekg-data\">"]))
    records = _data_json(data, edge_src, out, ids)
    out.add("".join(["</script>\n",
                     "<script>", vis_js, "</script>\n",
                     "<script>", app_js, "</script>\n",
                     "</body>\n</html>\n"]))
    return "".join(out.parts), records


class _Text:
    """Text made piece by piece, knowing its length so far."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pos = 0

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.pos += len(text)


def _data_json(data: dict[str, Any], edge_src: list[int], out: _Text,
               ids: list[str] | None = None) -> MapRecords:
    """``script_json(data)``, written to ``out`` record by record: the same text (tested),
    with the place of each node's three records (its entry in ``nodes``, its entry in
    ``vis.nodes``, its run of outgoing entries in ``edges``). ``edge_src``: the node each
    edge goes from (ascending). Records in ``nodes`` and ``edges`` may be :class:`Encoded`
    already; ``ids``: the nodes' ids (else read from the records)."""
    from array import array

    nodes, edges, vis = data["nodes"], data["edges"], data["vis"]
    n = len(nodes)
    spans = array("q", bytes(8 * 6 * n))
    top: dict[str, list[int]] = {}
    for j, key in enumerate(sorted(data)):
        out.add(("{" if j == 0 else ",") + script_json(key) + ":")
        if key in TOP_SPANS:
            start = out.pos
            out.add(script_json(data[key]))
            top[key] = [start, out.pos]
        elif key == "nodes":
            out.add("[")
            for i, node in enumerate(nodes):
                if i:
                    out.add(",")
                spans[6 * i] = out.pos
                out.add(node if isinstance(node, Encoded) else script_json(node))
                spans[6 * i + 1] = out.pos
            out.add("]")
        elif key == "edges":
            out.add("[")
            k, m = 0, len(edges)
            for i in range(n):
                start = k
                while k < m and edge_src[k] == i:
                    k += 1
                if k > start:
                    if start:
                        out.add(",")
                    spans[6 * i + 4] = out.pos
                    out.add(",".join([x if isinstance(x, Encoded) else script_json(x)
                                      for x in edges[start:k]]))
                else:
                    spans[6 * i + 4] = out.pos
                spans[6 * i + 5] = out.pos
            if k != m:
                raise AssertionError("edges out of order")  # pragma: no cover
            out.add("]")
        elif key == "vis":
            if sorted(vis) != ["edges", "nodes", "options"]:
                raise AssertionError("unexpected vis keys")  # pragma: no cover
            out.add('{"edges":' + script_json(vis["edges"]) + ',"nodes":[')
            for i, node in enumerate(vis["nodes"]):
                if i:
                    out.add(",")
                spans[6 * i + 2] = out.pos
                out.add(node if isinstance(node, Encoded) else script_json(node))
                spans[6 * i + 3] = out.pos
            out.add('],"options":' + script_json(vis["options"]) + "}")
        else:
            out.add(script_json(data[key]))
    out.add("}")
    return MapRecords([node["id"] for node in nodes] if ids is None else ids, spans,
                      {"top": top})


TOP_SPANS = ("attrs", "units", "dates", "dataDate")  # lists a rebuild may write again


BODY_HTML = """<div id="app">
<header id="bar">
  <h1 id="title">__TITLE__</h1>
  <div id="searchbox">
    <input id="search" type="search" autocomplete="off" spellcheck="false">
    <ul id="results" hidden></ul>
  </div>
  <button id="lang" type="button"></button>
  <span id="stats"></span>
</header>
<nav id="filters">
  <section><h2 id="h-types"></h2><div class="bulk" id="bulk-types"></div><ul id="types"></ul>
  </section>
  <section><h2 id="h-rels"></h2><div class="bulk" id="bulk-rels"></div><ul id="rels"></ul>
  </section>
  <section id="time" hidden><h2 id="h-time"></h2>
    <input id="asof" type="range" min="0" max="0" step="1" value="0">
    <div id="asof-label"></div></section>
</nav>
<main id="map"></main>
<aside id="panel" hidden><button id="close" type="button">×</button><div id="panel-body">
</div></aside>
</div>
<noscript>This map needs JavaScript.</noscript>
"""

APP_CSS = r"""
html, body { margin: 0; height: 100%; font-family: __FONT__; color: #1f2933;
  background: #f5f7fa; }
#app { display: grid; grid-template-columns: 230px 1fr; grid-template-rows: auto 1fr;
  height: 100vh; }
#bar { grid-column: 1 / 3; display: flex; align-items: center; gap: 12px; padding: 6px 12px;
  background: #fff; border-bottom: 1px solid #d9e2ec; flex-wrap: wrap; }
#title { font-size: 17px; margin: 0; font-weight: 600; white-space: nowrap; }
#searchbox { position: relative; flex: 0 1 320px; }
#search { width: 100%; box-sizing: border-box; padding: 5px 8px; font: inherit;
  border: 1px solid #bcccdc; border-radius: 4px; }
#results { position: absolute; z-index: 20; left: 0; right: 0; top: 100%; margin: 2px 0 0;
  padding: 0; list-style: none; background: #fff; border: 1px solid #bcccdc;
  border-radius: 4px; box-shadow: 0 4px 12px rgba(0,0,0,.12); max-height: 60vh;
  overflow: auto; }
#results li button { display: block; width: 100%; text-align: left; border: 0;
  background: none; padding: 5px 8px; font: inherit; cursor: pointer; }
#results li button:hover, #results li button:focus { background: #e6f0ff; }
#results .sub { color: #7b8794; font-size: 12px; margin-left: 6px; }
#lang { font: inherit; padding: 4px 10px; border: 1px solid #bcccdc; border-radius: 4px;
  background: #fff; cursor: pointer; }
#stats { color: #52606d; font-size: 13px; margin-left: auto; }
#filters { overflow: auto; background: #fff; border-right: 1px solid #d9e2ec; padding: 6px 10px;
  font-size: 13px; }
#filters h2 { font-size: 13px; margin: 10px 0 4px; color: #334e68; }
#filters ul { list-style: none; margin: 0; padding: 0; }
#filters li label { display: flex; align-items: center; gap: 6px; padding: 2px 0;
  cursor: pointer; }
#filters .count { color: #9aa5b1; margin-left: auto; }
.bulk button { font-size: 11px; border: 0; background: none; color: #2f6fdf; cursor: pointer;
  padding: 0 6px 0 0; }
.swatch { display: inline-block; width: 12px; height: 12px; flex: none; }
.swatch.dot, .swatch.ellipse, .swatch.circle { border-radius: 50%; }
.swatch.diamond { transform: rotate(45deg) scale(.8); }
.swatch.triangle, .swatch.triangleDown { width: 0; height: 0; background: none !important;
  border-left: 6px solid transparent !important; border-right: 6px solid transparent !important; }
.swatch.triangle { border-bottom: 12px solid; }
.swatch.triangleDown { border-top: 12px solid; }
.swatch.star { clip-path: polygon(50% 0, 61% 35%, 98% 35%, 68% 57%, 79% 91%, 50% 70%, 21% 91%,
  32% 57%, 2% 35%, 39% 35%); }
.swatch.hexagon { clip-path: polygon(25% 5%, 75% 5%, 100% 50%, 75% 95%, 25% 95%, 0 50%); }
.swatch.box, .swatch.square { border-radius: 2px; }
#asof { width: 100%; }
#asof-label { font-size: 12px; color: #52606d; }
#map { position: relative; min-width: 0; min-height: 0; background: #fbfcfd; }
#panel { position: absolute; right: 0; top: 48px; bottom: 0; width: 380px; max-width: 90vw;
  overflow: auto; background: #fff; border-left: 1px solid #d9e2ec; padding: 10px 14px;
  box-sizing: border-box; box-shadow: -4px 0 12px rgba(0,0,0,.06); font-size: 13px; z-index: 10; }
#panel[hidden], #results[hidden], #time[hidden] { display: none; }
#close { position: absolute; right: 8px; top: 6px; border: 0; background: none;
  font-size: 20px; cursor: pointer; color: #52606d; }
#panel h2 { font-size: 18px; margin: 4px 24px 2px 0; }
#panel h3 { font-size: 13px; margin: 14px 0 4px; color: #334e68; border-bottom: 1px solid #e4e7eb;
  padding-bottom: 2px; }
#panel .sub { color: #52606d; margin: 0 0 6px; }
#panel .badge { display: inline-flex; align-items: center; gap: 5px; font-size: 12px;
  color: #334e68; background: #f0f4f8; border-radius: 10px; padding: 1px 8px; }
#panel .id { font-family: ui-monospace, monospace; color: #9aa5b1; font-size: 11px; }
#panel ul { margin: 0; padding-left: 16px; }
#panel li { margin: 3px 0; }
#panel .meta { color: #7b8794; font-size: 12px; }
#panel .src { color: #52606d; font-size: 12px; }
#panel button.ref { border: 0; background: none; padding: 0; color: #2f6fdf; cursor: pointer;
  font: inherit; text-decoration: underline; }
.tip { font-family: __FONT__; font-size: 13px; max-width: 320px; white-space: normal; }
.tip .en { color: #52606d; }
.tip .meta { color: #7b8794; font-size: 12px; }
div.vis-tooltip { font-family: __FONT__; }
"""

APP_JS = r"""
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("ekg-data").textContent);
  var UI = {
    zh: {search: "搜索：中文名、英文名、别名或拼音", nodes: "个节点", edges: "条关系",
      dataDate: "数据截至", asOf: "时间点", all: "全部时间", lang: "English",
      types: "类型（图例）", rels: "关系", time: "时间", aliases: "别名", desc: "简介",
      attrs: "属性", out: "对外关系", inc: "被指向的关系", sources: "来源", none: "无",
      allOn: "全选", allOff: "全不选", statement: "关系陈述", date: "日期", from: "自",
      to: "至", role: "职务", amount: "金额", note: "备注", link: "链接", noMatch: "无匹配结果",
      wikidata: "维基数据", degree: "关联数", lod: "大图：放大或点击节点以显示关系"},
    en: {search: "Search: Chinese or English name, alias, pinyin", nodes: "nodes",
      edges: "relations", dataDate: "data as of", asOf: "as of", all: "all dates", lang: "中文",
      types: "Types (legend)", rels: "Relations", time: "Time", aliases: "Aliases",
      desc: "Description", attrs: "Attributes", out: "Relations from here",
      inc: "Relations to here", sources: "Sources", none: "none", allOn: "all",
      allOff: "none", statement: "Statement", date: "date", from: "from", to: "until",
      role: "role", amount: "amount", note: "note", link: "link", noMatch: "no match",
      wikidata: "Wikidata", degree: "links",
      lod: "large map: zoom in or click a node to see its relations"}
  };
  var lang = "zh";
  var T = UI.zh;
  var $ = function (id) { return document.getElementById(id); };

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  function add(parent, child) { parent.appendChild(child); return child; }

  // ---- data ----------------------------------------------------------------------------
  var N = D.nodes, E = D.edges, VN = D.vis.nodes;
  var idx = Object.create(null);
  var typeInfo = Object.create(null), relInfo = Object.create(null);
  D.types.forEach(function (t) { typeInfo[t.n] = t; });
  D.rels.forEach(function (r) { relInfo[r.n] = r; });
  // edges come as [from, to, relation] (positions in N and D.rels)
  var VE = D.vis.edges.map(function (t, i) {
    var r = D.rels[t[2]];
    return {id: i, from: N[t[0]].id, to: N[t[1]].id, rel: r.n, label: relLabel(r.n),
      arrows: r.sym ? "" : "to"};
  });
  var outE = [], inE = [];
  N.forEach(function (n, i) { idx[n.id] = i; outE.push([]); inE.push([]); });
  VE.forEach(function (e, i) { outE[idx[e.from]].push(i); inE[idx[e.to]].push(i); });

  function nameOf(i) {
    var n = N[i];
    return (lang === "zh" ? (n.zh || n.en) : (n.en || n.zh)) || n.id;
  }
  function otherName(i) {
    var n = N[i];
    var a = lang === "zh" ? n.en : n.zh;
    return a && a !== nameOf(i) ? a : "";
  }
  function typeLabel(t) { var x = typeInfo[t]; return x ? (lang === "zh" ? x.zh : x.en) : t; }
  function relLabel(r) { var x = relInfo[r]; return x ? (lang === "zh" ? x.zh : x.en) : r; }
  function pair(v) { return v ? (lang === "zh" ? v[0] : v[1]) : ""; }

  // ---- dates ---------------------------------------------------------------------------
  function dateKey(v, end) {
    var p = String(v).split("-");
    if (p.length === 1) { return v + (end ? "-12-31" : "-01-01"); }
    if (p.length === 2) { return v + (end ? "-31" : "-01"); }
    return v;
  }
  function inForce(asOf, d, st, en) {
    if (!asOf) { return true; }
    var b = st || d;
    if (b && dateKey(b) > dateKey(asOf, true)) { return false; }
    if (en && dateKey(en, true) < dateKey(asOf)) { return false; }
    return true;
  }
  function when(x) {
    if (x.d) { return x.d; }
    if (x.st || x.e) { return (x.st || "…") + " – " + (x.e || "…"); }
    return "";
  }

  // ---- filters -------------------------------------------------------------------------
  var typeOn = Object.create(null), relOn = Object.create(null), asOf = null;
  D.types.forEach(function (t) { typeOn[t.n] = true; });
  D.rels.forEach(function (r) { relOn[r.n] = true; });
  function edgeShown(i) {
    var e = VE[i], x = E[i];
    return relOn[e.rel] && typeOn[VN[idx[e.from]].group] && typeOn[VN[idx[e.to]].group] &&
      inForce(asOf, x.d, x.st, x.e);
  }
  // Large maps (D.lod): drawing every edge costs a frame per ~10k edges, so edges are drawn
  // for the selected node, and for the nodes in view once zoomed in past LOD_SCALE.
  var LOD_SCALE = 0.3, lodNear = false, focusEdges = Object.create(null);
  var view = {left: 0, right: 0, top: 0, bottom: 0};
  function inView(j) {
    var n = VN[j];
    return n.x >= view.left && n.x <= view.right && n.y >= view.top && n.y <= view.bottom;
  }
  function edgeDrawn(i) {
    if (!edgeShown(i)) { return false; }
    if (!D.lod || focusEdges[i]) { return true; }
    return lodNear && (inView(idx[VE[i].from]) || inView(idx[VE[i].to]));
  }

  var nodes = new vis.DataSet(VN);
  var edges = new vis.DataSet(VE);
  var nodesView = new vis.DataView(nodes, {filter: function (n) { return typeOn[n.group]; }});
  var edgesView = new vis.DataView(edges, {filter: function (e) { return edgeDrawn(e.id); }});
  var container = $("map");
  var network = new vis.Network(container, {nodes: nodesView, edges: edgesView}, D.vis.options);
  var api = {network: network, nodes: nodes, edges: edges, nodesView: nodesView,
    edgesView: edgesView, ready: false, readyAt: null, stable: false, physics: D.physics,
    clicks: 0};
  window.ekgMap = api;

  function markReady() {
    network.once("afterDrawing", function () {
      api.ready = true;
      api.readyAt = performance.now();
    });
    network.redraw();
  }
  if (D.physics) {
    // a bounded stabilisation from the precomputed layout, then physics off: later updates
    // (highlight, filters) redraw once instead of restarting the simulation
    network.once("stabilizationIterationsDone", function () {
      network.setOptions({physics: {enabled: false}});
      api.stable = true;
      markReady();
    });
  } else {
    api.stable = true;
    markReady();
  }

  var lodTimer = null;
  function updateLod() {
    lodTimer = null;
    var was = lodNear;
    lodNear = network.getScale() >= LOD_SCALE;
    if (!lodNear && !was) { return; }
    var r = container.getBoundingClientRect(), m = 60;
    var a = network.DOMtoCanvas({x: -m, y: -m});
    var b = network.DOMtoCanvas({x: r.width + m, y: r.height + m});
    view = {left: a.x, top: a.y, right: b.x, bottom: b.y};
    edgesView.refresh();
  }
  function scheduleLod() {
    if (!D.lod) { return; }
    if (lodTimer) { clearTimeout(lodTimer); }
    lodTimer = setTimeout(updateLod, 120);
  }
  network.on("zoom", scheduleLod);
  network.on("animationFinished", scheduleLod);
  network.on("dragEnd", function (p) {
    var pos = network.getPositions(p.nodes);
    p.nodes.forEach(function (id) { VN[idx[id]].x = pos[id].x; VN[idx[id]].y = pos[id].y; });
    scheduleLod();
  });
  api.lod = D.lod;

  // ---- tooltips: DOM elements, made when first hovered -----------------------------------
  var titled = Object.create(null), titledE = Object.create(null);
  function nodeTip(i) {
    var n = N[i], d = el("div", "tip");
    add(d, el("strong", null, n.zh || n.en || n.id));
    if (n.en && n.zh) { add(d, el("div", "en", n.en)); }
    add(d, el("div", "meta", typeLabel(VN[i].group) + " · " + T.degree + " " + n.deg));
    return d;
  }
  function edgeTip(i) {
    var e = VE[i], d = el("div", "tip");
    var f = idx[e.from], t = idx[e.to];
    add(d, el("div", null, nameOf(f) + " → " + relLabel(e.rel) + " → " + nameOf(t)));
    var w = when(E[i]);
    if (w) { add(d, el("div", "meta", w)); }
    return d;
  }
  network.on("hoverNode", function (p) {
    if (!titled[p.node]) {
      titled[p.node] = true;
      nodes.update({id: p.node, title: nodeTip(idx[p.node])});
    }
  });
  network.on("hoverEdge", function (p) {
    if (!titledE[p.edge]) {
      titledE[p.edge] = true;
      edges.update({id: p.edge, title: edgeTip(p.edge)});
    }
  });

  // ---- neighbourhood highlight ---------------------------------------------------------
  var dimN = Object.create(null), dimE = Object.create(null), dimmed = false;
  var DIM_EDGES = VE.length <= 6000, DIM_NODES = VN.length <= 4000;
  function fontColor(i) {
    var g = D.vis.options.groups[VN[i].group];
    return g && g.font && g.font.color ? g.font.color : D.vis.options.nodes.font.color;
  }
  function highlight(i) {
    var keepN = Object.create(null), keepE = Object.create(null);
    keepN[i] = true;
    outE[i].concat(inE[i]).forEach(function (ei) {
      keepE[ei] = true; keepN[idx[VE[ei].from]] = true; keepN[idx[VE[ei].to]] = true;
    });
    var nu = [], eu = [];
    if (D.lod) { focusEdges = keepE; edgesView.refresh(); }
    for (var j = 0; j < VN.length && DIM_NODES; j++) {
      var want = !keepN[j];
      if (!!dimN[j] !== want) {
        dimN[j] = want;
        nu.push({id: VN[j].id, opacity: want ? 0.18 : 1,
          font: {color: want ? "rgba(80,90,100,0.25)" : fontColor(j)}});
      }
    }
    if (DIM_EDGES) {
      for (var k = 0; k < VE.length; k++) {
        var w = !keepE[k];
        if (!!dimE[k] !== w) {
          dimE[k] = w;
          eu.push({id: k, color: {opacity: w ? 0.12 : 1},
            font: {color: w ? "rgba(82,96,109,0.2)" : "#52606d"}});
        }
      }
    }
    if (nu.length) { nodes.update(nu); }
    if (eu.length) { edges.update(eu); }
    dimmed = true;
  }
  function clearHighlight() {
    if (!dimmed) { return; }
    if (D.lod) { focusEdges = Object.create(null); edgesView.refresh(); }
    var nu = [], eu = [];
    for (var j in dimN) {
      if (dimN[j]) { nu.push({id: VN[j].id, opacity: 1, font: {color: fontColor(+j)}}); }
    }
    for (var k in dimE) {
      if (dimE[k]) { eu.push({id: +k, color: {opacity: 1}, font: {color: "#52606d"}}); }
    }
    dimN = Object.create(null); dimE = Object.create(null); dimmed = false;
    if (nu.length) { nodes.update(nu); }
    if (eu.length) { edges.update(eu); }
  }

  // ---- side panel ----------------------------------------------------------------------
  var panel = $("panel"), body = $("panel-body"), current = null;
  function sourceList(ids) {
    var ul = el("ul", "src");
    (ids || []).forEach(function (sid) {
      var s = D.sources[sid], li = add(ul, el("li"));
      if (!s) { li.textContent = sid; return; }
      var main = lang === "en" && s.te ? s.te : s.t;
      add(li, el("span", "stitle", main));
      var bits = [];
      var pub = lang === "en" && s.pe ? s.pe : (s.p || s.pe);
      if (pub) { bits.push(pub); }
      if (s.d) { bits.push(s.d); }
      if (bits.length) { add(li, el("span", "meta", " — " + bits.join(", "))); }
      if (s.u && /^https?:\/\//i.test(s.u)) {
        li.appendChild(document.createTextNode(" "));
        var a = add(li, el("a", null, T.link));
        a.href = s.u; a.target = "_blank"; a.rel = "noopener noreferrer";
      }
    });
    return ul;
  }
  function ref(i) {
    var b = el("button", "ref", nameOf(i));
    b.type = "button";
    b.addEventListener("click", function () { focusNode(i); });
    return b;
  }
  function statementMeta(x, li) {
    var bits = [];
    var w = when(x);
    if (w) { bits.push(T.date + " " + w); }
    if (x.ro) { bits.push(T.role + " " + x.ro); }
    if (x.am) { bits.push(T.amount + " " + x.am + (x.au ? " " + pair(D.units[x.au]) : "")); }
    if (bits.length) { add(li, el("div", "meta", bits.join(" · "))); }
    if (x.n) { add(li, el("div", "meta", T.note + ": " + x.n)); }
    if (x.s && x.s.length) { add(li, sourceList(x.s)); }
  }
  function relItems(list, outgoing) {
    var ul = el("ul");
    list.forEach(function (ei) {
      if (!edgeShown(ei)) { return; }
      var e = VE[ei], li = add(ul, el("li"));
      var other = idx[outgoing ? e.to : e.from];
      add(li, el("span", null, (outgoing ? "→ " : "← ") + relLabel(e.rel) + " "));
      add(li, ref(other));
      statementMeta(E[ei], li);
    });
    if (!ul.firstChild) { add(ul, el("li", "meta", T.none)); }
    return ul;
  }
  function showNode(i) {
    current = {node: i};
    var n = N[i], t = VN[i].group;
    body.textContent = "";
    add(body, el("h2", null, nameOf(i)));
    var o = otherName(i);
    if (o) { add(body, el("p", "sub", o)); }
    var badge = add(body, el("span", "badge"));
    var sw = add(badge, el("span", "swatch " + (typeInfo[t] ? typeInfo[t].sh : "")));
    sw.style.background = typeInfo[t] ? typeInfo[t].c : "#999";
    sw.style.borderColor = typeInfo[t] ? typeInfo[t].c : "#999";
    add(badge, el("span", null, typeLabel(t)));
    add(body, document.createTextNode(" "));
    add(body, el("span", "id", n.id));
    if (n.al && n.al.length) {
      add(body, el("h3", null, T.aliases));
      add(body, el("p", null, n.al.join("、")));
    }
    if (n.desc) {
      add(body, el("h3", null, T.desc));
      var order = lang === "zh" ? ["zh", "en"] : ["en", "zh"];
      order.forEach(function (l) { if (n.desc[l]) { add(body, el("p", null, n.desc[l])); } });
    }
    if (n.wd) { add(body, el("p", "meta", T.wikidata + " " + n.wd)); }
    if (n.n) { add(body, el("p", "meta", T.note + ": " + n.n)); }
    var facts = (n.a || []).filter(function (f) { return inForce(asOf, f.d, f.st, f.e); });
    if (facts.length) {
      add(body, el("h3", null, T.attrs));
      var ul = add(body, el("ul"));
      facts.forEach(function (f) {
        var li = add(ul, el("li"));
        add(li, el("strong", null, pair(D.attrs[f.p]) + ": "));
        add(li, el("span", null, f.v + (f.u ? " " + pair(D.units[f.u]) : "")));
        statementMeta(f, li);
      });
    }
    add(body, el("h3", null, T.out));
    add(body, relItems(outE[i], true));
    add(body, el("h3", null, T.inc));
    add(body, relItems(inE[i], false));
    if (n.s && n.s.length) {
      add(body, el("h3", null, T.sources));
      add(body, sourceList(n.s));
    }
    panel.hidden = false;
  }
  function showEdge(ei) {
    current = {edge: ei};
    var e = VE[ei];
    body.textContent = "";
    add(body, el("h2", null, relLabel(e.rel)));
    add(body, el("p", "sub", T.statement));
    var p = add(body, el("p"));
    add(p, ref(idx[e.from]));
    add(p, el("span", null, " → " + relLabel(e.rel) + " → "));
    add(p, ref(idx[e.to]));
    var box = add(body, el("div"));
    statementMeta(E[ei], box);
    if (!E[ei].s || !E[ei].s.length) { add(body, el("p", "meta", T.sources + ": " + T.none)); }
    panel.hidden = false;
  }
  function rerenderPanel() {
    if (!current || panel.hidden) { return; }
    if (current.node !== undefined) { showNode(current.node); } else { showEdge(current.edge); }
  }
  function closePanel() { panel.hidden = true; current = null; }
  $("close").addEventListener("click", function () {
    closePanel();
    clearHighlight();
    network.unselectAll();
  });

  network.on("click", function (p) {
    if (p.nodes.length) {
      var i = idx[p.nodes[0]];
      highlight(i);
      showNode(i);
    } else if (p.edges.length) {
      clearHighlight();
      showEdge(p.edges[0]);
    } else {
      clearHighlight();
      closePanel();
    }
    api.clicks += 1;
  });

  function focusNode(i) {
    var t = VN[i].group;
    if (!typeOn[t]) { typeOn[t] = true; syncChecks(); refresh(); }
    network.selectNodes([VN[i].id]);
    network.focus(VN[i].id, {scale: Math.max(network.getScale(), 1.0),
      animation: {duration: 350, easingFunction: "easeInOutQuad"}});
    highlight(i);
    showNode(i);
  }
  api.focusNode = function (id) { if (id in idx) { focusNode(idx[id]); } };

  // ---- search --------------------------------------------------------------------------
  var STRIP = /[\s\-_·・.,，、'"“”‘’()（）《》<>\[\]【】「」:：\/]+/g;
  function norm(s) { return String(s).normalize("NFKC").toLowerCase().replace(STRIP, ""); }
  function search(q) {
    var k = norm(q);
    if (!k) { return []; }
    var hits = [];
    for (var i = 0; i < N.length; i++) {
      var keys = N[i].k, best = 9;
      for (var j = 0; j < keys.length && best > 0; j++) {
        var key = keys[j];
        if (key === k) {
          best = 0;
        } else if (best > 1 && key.lastIndexOf(k, 0) === 0) {
          best = 1;
        } else if (best > 2 && key.indexOf(k) >= 0) {
          best = 2;
        }
      }
      if (best < 9) { hits.push([best, -N[i].deg, N[i].id, i]); }
    }
    hits.sort(function (a, b) {
      return a[0] - b[0] || a[1] - b[1] || (a[2] < b[2] ? -1 : a[2] > b[2] ? 1 : 0);
    });
    return hits.slice(0, 12).map(function (h) { return h[3]; });
  }
  api.search = function (q) { return search(q).map(function (i) { return VN[i].id; }); };
  var input = $("search"), results = $("results"), hits = [];
  function showResults() {
    hits = search(input.value);
    results.textContent = "";
    if (!input.value.trim()) { results.hidden = true; return; }
    if (!hits.length) { add(results, el("li", "meta", T.noMatch)); }
    hits.forEach(function (i) {
      var b = add(add(results, el("li")), el("button", null, nameOf(i)));
      b.type = "button";
      var o = otherName(i);
      add(b, el("span", "sub", (o ? o + " · " : "") + typeLabel(VN[i].group)));
      b.addEventListener("click", function () { results.hidden = true; focusNode(i); });
    });
    results.hidden = false;
  }
  input.addEventListener("input", showResults);
  input.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter") {
      if (!hits.length) { showResults(); }
      if (hits.length) { results.hidden = true; focusNode(hits[0]); }
    } else if (ev.key === "Escape") {
      results.hidden = true;
    }
  });

  // ---- filter controls, legend, slider, stats, language ---------------------------------
  var checks = {types: [], rels: []};
  function refresh() {
    nodesView.refresh();
    edgesView.refresh();
    stats();
    rerenderPanel();
  }
  function syncChecks() {
    checks.types.forEach(function (c) { c.box.checked = !!typeOn[c.key]; });
    checks.rels.forEach(function (c) { c.box.checked = !!relOn[c.key]; });
  }
  function buildFilters() {
    var tl = $("types"), rl = $("rels");
    tl.textContent = ""; rl.textContent = "";
    checks = {types: [], rels: []};
    D.types.forEach(function (t) {
      var lab = add(add(tl, el("li")), el("label"));
      var box = add(lab, el("input"));
      box.type = "checkbox"; box.checked = !!typeOn[t.n]; box.value = t.n;
      box.addEventListener("change", function () { typeOn[t.n] = box.checked; refresh(); });
      var sw = add(lab, el("span", "swatch " + t.sh));
      sw.style.background = t.c; sw.style.borderColor = t.c; sw.style.color = t.c;
      add(lab, el("span", null, lang === "zh" ? t.zh : t.en));
      add(lab, el("span", "count", t.cnt));
      checks.types.push({key: t.n, box: box});
    });
    D.rels.forEach(function (r) {
      var lab = add(add(rl, el("li")), el("label"));
      var box = add(lab, el("input"));
      box.type = "checkbox"; box.checked = !!relOn[r.n]; box.value = r.n;
      box.addEventListener("change", function () { relOn[r.n] = box.checked; refresh(); });
      add(lab, el("span", null, (lang === "zh" ? r.zh : r.en) + (r.sym ? " ↔" : " →")));
      add(lab, el("span", "count", r.cnt));
      checks.rels.push({key: r.n, box: box});
    });
    [["bulk-types", typeOn, D.types], ["bulk-rels", relOn, D.rels]].forEach(function (x) {
      var box = $(x[0]);
      box.textContent = "";
      [[T.allOn, true], [T.allOff, false]].forEach(function (y) {
        var b = add(box, el("button", null, y[0]));
        b.type = "button";
        b.addEventListener("click", function () {
          x[2].forEach(function (t) { x[1][t.n] = y[1]; });
          syncChecks(); refresh();
        });
      });
    });
  }
  var slider = $("asof");
  function sliderLabel() {
    $("asof-label").textContent = asOf ? T.asOf + " " + asOf : T.all;
  }
  if (D.dates.length) {
    $("time").hidden = false;
    slider.max = String(D.dates.length);
    slider.value = String(D.dates.length);
    slider.addEventListener("input", function () {
      var v = +slider.value;
      asOf = v >= D.dates.length ? null : D.dates[v];
      sliderLabel();
      refresh();
    });
  }
  function stats() {
    var shown = edgesView.length;
    if (D.lod) {
      shown = 0;
      for (var i = 0; i < VE.length; i++) { if (edgeShown(i)) { shown += 1; } }
    }
    var parts = [nodesView.length + " " + T.nodes, shown + " " + T.edges];
    if (D.dataDate) { parts.push(T.dataDate + " " + D.dataDate); }
    if (D.asOf) { parts.push(T.asOf + " " + D.asOf); }
    if (asOf) { parts.push(T.asOf + " " + asOf); }
    if (D.lod) { parts.push(T.lod); }
    $("stats").textContent = parts.join(" · ");
  }
  function applyLanguage() {
    T = UI[lang];
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    input.placeholder = T.search;
    $("lang").textContent = T.lang;
    $("h-types").textContent = T.types;
    $("h-rels").textContent = T.rels;
    $("h-time").textContent = T.time;
    buildFilters();
    sliderLabel();
    stats();
  }
  $("lang").addEventListener("click", function () {
    lang = lang === "zh" ? "en" : "zh";
    applyLanguage();
    nodes.update(VN.map(function (n, i) { return {id: n.id, label: nameOf(i)}; }));
    edges.update(VE.map(function (e) { return {id: e.id, label: relLabel(e.rel)}; }));
    titledE = Object.create(null);
    rerenderPanel();
    if (!results.hidden) { showResults(); }
  });
  applyLanguage();
})();
"""
