"""The compiled query index: one SQLite file that `find`, `show`, `neighbors`, `path`, `list`,
`rank` and `timeline` read without importing rdflib or networkx.

An indexed store keeps cold queries flat as the graph grows: a query reads the rows it needs,
not the whole graph.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable
from operator import itemgetter
from pathlib import Path
from typing import Any

from .compile import Compiled, relation_stmt_iri
from .names import normalize, pinyin_key
from .ontology import Ontology

INDEX_NAME = "index.sqlite"
FORMAT_VERSION = "1"

SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE class(name TEXT PRIMARY KEY, ancestors TEXT NOT NULL, label_en TEXT, label_zh TEXT,
                   color TEXT, shape TEXT);
CREATE TABLE relation(name TEXT PRIMARY KEY, label_en TEXT, label_zh TEXT, symmetric INTEGER);
CREATE TABLE entity(id TEXT PRIMARY KEY, type TEXT NOT NULL, name_zh TEXT, name_en TEXT,
                    doc TEXT NOT NULL);
CREATE TABLE edge(stmt TEXT PRIMARY KEY, src TEXT NOT NULL, rel TEXT NOT NULL, dst TEXT NOT NULL,
                  date TEXT, start TEXT, "end" TEXT, doc TEXT NOT NULL);
CREATE TABLE source(id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE name(key TEXT NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL, text TEXT NOT NULL);
"""
INDEXES = """
CREATE INDEX edge_src ON edge(src);
CREATE INDEX edge_dst ON edge(dst);
CREATE INDEX name_key ON name(key);
CREATE INDEX entity_type ON entity(type);
"""

def name_rows(eid: str, zh: str, en: str, aliases: list[str]) -> list[tuple[str, str, str, str]]:
    rows: set[tuple[str, str, str, str]] = set()
    texts = [(eid, "id")]
    if zh:
        texts.append((zh, "name"))
    if en:
        texts.append((en, "name"))
    for a in aliases:
        texts.append((a, "alias"))
    for text, kind in texts:
        key = normalize(text)
        if key:
            rows.add((key, eid, kind, text))
        py = pinyin_key(text)
        if py:
            rows.add((py, eid, "pinyin", text))
    return sorted(rows)


def entity_doc(e: Any, onto: Ontology, graph_dir: Path | None = None, rel: str | None = None
               ) -> dict[str, Any]:
    attrs = []
    for f in e.facts:
        item: dict[str, Any] = {"attribute": f.prop, "value": f.value}
        for k in ("unit", "date", "start", "end", "note"):
            v = getattr(f, k)
            if v is not None:
                item[k] = v
        item["sources"] = list(f.sources)
        attrs.append(item)
    return {
        "aliases": list(e.aliases),
        "description": dict(sorted(e.description.items())),
        "wikidata": e.wikidata,
        "sources": list(e.sources),
        "note": e.note,
        "attributes": attrs,
        "file": rel if rel is not None else graph_relative(e.path, graph_dir),
    }


def graph_relative(file: str, graph_dir: Path | None) -> str:
    """An entity file's path inside its graph folder ("companies/metax.yaml"), so the index does
    not depend on where the folder lies."""
    if graph_dir is None:
        return file
    rel = os.path.relpath(os.path.abspath(file), os.path.abspath(graph_dir))
    return rel.replace(os.sep, "/")


_enc = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) uses for str
# json.dumps(..., ensure_ascii=False, sort_keys=True), without making an encoder per call
_encode = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode


def _value(v: Any) -> str:
    """``_encode(v)``: the JSON of one value, as it is written inside a document."""
    if type(v) is str:
        return _enc(v)
    if type(v) is int:
        return int.__repr__(v)
    return _encode(v)


def _or_null(v: str | None) -> str:
    return "null" if v is None else _enc(v)


def _doc_text(e: Any, file: str) -> str:
    """``_encode(entity_doc(e, ...))`` written directly (the keys in their sorted order), for
    the usual entity, whose text fields hold text; a TypeError otherwise."""
    attrs = []
    for f in e.facts:  # keys: attribute, date, end, note, sources, start, unit, value
        item = '{"attribute": ' + _enc(f.prop)
        if f.date is not None:
            item += ', "date": ' + _enc(f.date)
        if f.end is not None:
            item += ', "end": ' + _enc(f.end)
        if f.note is not None:
            item += ', "note": ' + _enc(f.note)
        item += f', "sources": [{", ".join(map(_enc, f.sources))}]'
        if f.start is not None:
            item += ', "start": ' + _enc(f.start)
        if f.unit is not None:
            item += ', "unit": ' + _enc(f.unit)
        attrs.append(f'{item}, "value": {_value(f.value)}}}')
    desc = ", ".join([f"{_enc(k)}: {_enc(v)}" for k, v in sorted(e.description.items())])
    return (f'{{"aliases": [{", ".join(map(_enc, e.aliases))}], '
            f'"attributes": [{", ".join(attrs)}], "description": {{{desc}}}, '
            f'"file": {_enc(file)}, "note": {_or_null(e.note)}, '
            f'"sources": [{", ".join(map(_enc, e.sources))}], '
            f'"wikidata": {_or_null(e.wikidata)}}}')


def edge_doc(r: Any) -> str:
    """A relation's edge document: the text of ``json.dumps(doc, ensure_ascii=False,
    sort_keys=True)`` for ``{"amount": ..., "note": ..., "role": ..., "sources": [...]}``
    (amount, note and role when given), written directly: a build writes one per relation."""
    head = ""
    if r.amount is not None:
        head = '"amount": ' + _encode({"value": r.amount.value, "unit": r.amount.unit}) + ", "
    if r.note:
        head += '"note": ' + _enc(r.note) + ", "
    if r.role:
        head += '"role": ' + _enc(r.role) + ", "
    return f'{{{head}"sources": [{", ".join(map(_enc, r.sources))}]}}'


IndexRows = tuple[tuple[Any, ...], list[tuple[str, str, str, str]] | None, list[tuple[Any, ...]]]


def entity_rows(e: Any, onto: Ontology, graph_dir: Path | None = None, *,
                rel: str | None = None) -> IndexRows:
    """One entity's index rows: (entity row, name rows, edge rows); a source gives
    (source row, None, []). ``rel``: the file's path inside the graph folder, when known."""
    if e.is_source:
        doc = {"id": e.id, **e.extra}
        return (e.id, _encode(doc)), None, []
    eid = e.id
    edges: list[tuple[Any, ...]] = [
        (relation_stmt_iri(eid, r.rel, r.target, r.index), eid, r.rel, r.target, r.date,
         r.start, r.end, edge_doc(r)) for r in e.relations]
    file = rel if rel is not None else graph_relative(e.path, graph_dir)
    try:
        text = _doc_text(e, file)
    except TypeError:  # a field that is not text: the encoder says what it makes of it
        text = _encode(entity_doc(e, onto, graph_dir, rel))
    row = (eid, e.type, e.name_zh, e.name_en, text)
    return row, name_rows(eid, e.name_zh, e.name_en, e.aliases), edges


def write_index(compiled: Compiled, path: Path, meta: dict[str, str],
                graph_dir: Path | None = None, rows: Iterable[IndexRows] | None = None
                ) -> None:
    """Write the index to ``path`` (a new file), deterministically. ``rows``: the
    :func:`entity_rows` of every entity, when they were computed already."""
    onto = compiled.ontology
    writer = IndexWriter(path, onto)
    try:
        writer.fill(rows if rows is not None else [entity_rows(e, onto, graph_dir)
                                                   for e in compiled.entities])
    except BaseException:
        writer.abandon()
        raise
    writer.finish(meta)


def _ontology_rows(con: sqlite3.Connection, onto: Ontology) -> None:
    """The classes and relations the queries look up (labels, ancestors, styles)."""
    con.executemany(
        "INSERT INTO class VALUES (?, ?, ?, ?, ?, ?)",
        [(c.name, json.dumps(c.ancestors), c.label_en, c.label_zh, *onto.style_of(c.name))
         for c in sorted(onto.classes.values(), key=lambda c: c.name)])
    con.executemany(
        "INSERT INTO relation VALUES (?, ?, ?, ?)",
        [(r.name, r.label_en, r.label_zh, int(r.symmetric))
         for r in sorted(onto.relations.values(), key=lambda r: r.name)])


def _uri(path: Path) -> str:
    from urllib.parse import quote

    return "file:" + quote(os.path.abspath(path))


# the rows wait in temporary tables (not in the file) and go into the real ones in sorted order
STAGING = {"entity": "ent_in(id TEXT, type TEXT, name_zh TEXT, name_en TEXT, doc TEXT)",
           "source": "src_in(id TEXT, doc TEXT)",
           "name": "name_in(key TEXT, id TEXT, kind TEXT, text TEXT)",
           "edge": 'edge_in(stmt TEXT, src TEXT, rel TEXT, dst TEXT, date TEXT, start TEXT, '
                   '"end" TEXT, doc TEXT)'}
FINAL = ["INSERT INTO entity SELECT * FROM ent_in ORDER BY id",
         "INSERT INTO source SELECT * FROM src_in ORDER BY id",
         "INSERT INTO name SELECT DISTINCT key, id, kind, text FROM name_in "
         "ORDER BY key, id, kind, text",
         "INSERT INTO edge SELECT * FROM edge_in ORDER BY stmt"]


_FIRST = itemgetter(0)


class IndexWriter:
    """Writes the index from the entities' rows, in any order, holding nothing but the
    current batch: rows wait in temporary tables and are copied into the file's tables in
    sorted order at :meth:`prepare`. The file depends only on the rows, never on the order
    they came in or on where they came from (:meth:`copy_from` takes the unchanged entities'
    rows from the previous build's index): the same rows give the same bytes."""

    BATCH = 4096

    def __init__(self, path: Path, onto: Ontology) -> None:
        self.con = sqlite3.connect(_uri(path), uri=True)  # URIs: copy_from attaches read-only
        con = self.con
        con.execute("PRAGMA journal_mode=OFF")
        con.execute("PRAGMA synchronous=OFF")
        con.executescript(SCHEMA)
        for table in STAGING.values():
            con.execute(f"CREATE TEMP TABLE {table}")
        _ontology_rows(con, onto)
        con.commit()  # the file's transactions are the same whatever the rows' way in
        self.onto = onto
        self.prepared = False
        self.staged = False  # rows went into the temporary tables
        self.ents: list[tuple[Any, ...]] = []
        self.sources: list[tuple[Any, ...]] = []
        self.names: list[tuple[str, str, str, str]] = []
        self.edges: list[tuple[Any, ...]] = []

    def add(self, rows: IndexRows) -> None:
        """One entity's :func:`entity_rows`."""
        self.staged = True
        row, names, edges = rows
        if names is None:
            self.sources.append(row)
        else:
            self.ents.append(row)
            self.names.extend(names)
            self.edges.extend(edges)
        if len(self.names) + len(self.edges) + len(self.ents) >= self.BATCH:
            self._flush()

    def copy_from(self, previous: Path, ids: list[str]) -> None:
        """The rows of the entities ``ids`` as the index ``previous`` holds them (a build's
        index of the same files: the unchanged files' rows are the ones they gave then)."""
        self.staged = True
        con = self.con
        con.commit()
        con.execute("ATTACH DATABASE ? AS prev", (_uri(previous) + "?mode=ro",))
        try:
            con.execute("CREATE TEMP TABLE keep(id TEXT PRIMARY KEY)")
            con.executemany("INSERT INTO keep VALUES (?)", ((i,) for i in ids))
            con.execute("INSERT INTO ent_in SELECT * FROM prev.entity WHERE id IN keep")
            con.execute("INSERT INTO src_in SELECT * FROM prev.source WHERE id IN keep")
            con.execute("INSERT INTO name_in SELECT * FROM prev.name WHERE id IN keep")
            con.execute("INSERT INTO edge_in SELECT * FROM prev.edge WHERE src IN keep")
            con.execute("DROP TABLE keep")
            con.commit()
        finally:
            con.execute("DETACH DATABASE prev")

    def _flush(self) -> None:
        con = self.con
        con.executemany("INSERT INTO ent_in VALUES (?, ?, ?, ?, ?)", self.ents)
        con.executemany("INSERT INTO src_in VALUES (?, ?)", self.sources)
        con.executemany("INSERT INTO name_in VALUES (?, ?, ?, ?)", self.names)
        con.executemany("INSERT INTO edge_in VALUES (?, ?, ?, ?, ?, ?, ?, ?)", self.edges)
        self.ents, self.sources, self.names, self.edges = [], [], [], []

    def fill(self, rows: Iterable[IndexRows]) -> None:
        """Every entity's :func:`entity_rows`, when none came before: sorted here and written
        to the tables in their order at once, without the temporary tables (the same file as
        :meth:`add` of each, in a quarter less time); then :meth:`prepare` is done."""
        if self.staged or self.prepared:
            for r in rows:
                self.add(r)
            return
        ents: list[tuple[Any, ...]] = []
        sources: list[tuple[Any, ...]] = []
        names: set[tuple[str, str, str, str]] = set()
        edges: list[tuple[Any, ...]] = []
        for row, entity_names, entity_edges in rows:
            if entity_names is None:
                sources.append(row)
            else:
                ents.append(row)
                names.update(entity_names)
                edges.extend(entity_edges)
        # the order of FINAL's ORDER BY: Python orders text as SQLite does (code points, the
        # order of their UTF-8 bytes); ids and statements are unique
        ents.sort(key=_FIRST)
        sources.sort(key=_FIRST)
        edges.sort(key=_FIRST)
        con = self.con
        con.executemany("INSERT INTO entity VALUES (?, ?, ?, ?, ?)", ents)
        con.executemany("INSERT INTO source VALUES (?, ?)", sources)
        con.executemany("INSERT INTO name VALUES (?, ?, ?, ?)", sorted(names))
        con.executemany("INSERT INTO edge VALUES (?, ?, ?, ?, ?, ?, ?, ?)", edges)
        con.commit()
        for table in STAGING.values():
            con.execute("DROP TABLE " + table.partition("(")[0])
        con.executescript(INDEXES)
        self.prepared = True

    def prepare(self) -> None:
        """All but the meta rows (they hold the build's summary, known last): every table
        filled in sorted order, indexes made. :meth:`finish` calls it if nobody did."""
        if self.prepared:
            return
        self._flush()
        con = self.con
        con.commit()
        for statement in FINAL:
            con.execute(statement)
        con.commit()
        for table in STAGING.values():
            con.execute("DROP TABLE " + table.partition("(")[0])
        con.executescript(INDEXES)
        self.prepared = True

    def finish(self, meta: dict[str, str]) -> None:
        con = self.con
        try:
            self.prepare()
            rows_meta = dict(meta)
            rows_meta["format"] = FORMAT_VERSION
            rows_meta["ontology"] = self.onto.fingerprint
            con.executemany("INSERT INTO meta VALUES (?, ?)", sorted(rows_meta.items()))
            con.commit()
        finally:
            con.close()

    def abandon(self) -> None:
        self.con.close()
