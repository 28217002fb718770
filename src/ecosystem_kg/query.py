"""Queries over the compiled SQLite index: resolve, find, show, neighbours, paths, lists,
stats, rankings and timelines. Every function returns plain data (dicts and lists) that the
CLI prints as a table or as JSON.

Nothing here imports rdflib or pyvis; networkx is imported only for PageRank and betweenness.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .dates import date_key, in_force
from .errors import Ambiguous, EkgError, NotFound, QueryError
from .names import normalize

KIND_RANK = {"id": 0, "name": 1, "alias": 2, "pinyin": 3}
KIND_SCORE = {"id": 100.0, "name": 100.0, "alias": 95.0, "pinyin": 90.0}


def newest_mtime(*folders: Path) -> float:
    """The latest modification time of any file or folder below the given folders (hidden
    ones skipped). Where the system allows, each folder is opened once and its files are
    stat'ed relative to it (the kernel then looks up one name per file, not the whole path)."""
    return _newest(folders, relative=os.stat in os.supports_dir_fd
                   and os.scandir in os.supports_fd)


def _newest_by_path(folders: tuple[Path, ...]) -> float:
    """:func:`newest_mtime` with every file stat'ed by its whole path."""
    return _newest(folders, relative=False)


def _newest(folders: tuple[Path, ...], *, relative: bool) -> float:
    newest = 0.0
    stat = os.stat
    stack = [str(f) for f in folders if f.exists()]
    while stack:
        d = stack.pop()
        try:
            fd = os.open(d, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)) if relative else None
        except OSError:
            continue
        try:
            newest = max(newest, stat(d if fd is None else fd).st_mtime)
            names = []
            with os.scandir(d if fd is None else fd) as it:
                for entry in it:
                    if entry.name.startswith("."):
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(os.path.join(d, entry.name))
                    else:
                        names.append(entry.name if fd is not None else os.path.join(d, entry.name))
            for name in names:
                try:
                    m = stat(name, dir_fd=fd).st_mtime
                except OSError:  # removed meanwhile: the folder's own time has changed
                    continue
                if m > newest:
                    newest = m
        except OSError:
            continue
        finally:
            if fd is not None:
                os.close(fd)
    return newest


def ensure_built(graph: Path, out: Path, ontology: Path | None,
                 notify: Callable[[str], None] | None = None) -> Path:
    """Path of a fresh index; rebuilds (with one note) when missing or older than the inputs."""
    from .ontology import resolve_ontology_dir

    index = out / "index.sqlite"
    if not graph.is_dir():
        if index.is_file():
            return index  # a build without its sources (shipped outputs): use as is
        raise QueryError(f"{graph}: no such graph folder; pass --graph DIR")
    onto_dir = resolve_ontology_dir(graph, ontology)
    try:
        built = index.stat().st_mtime
    except OSError:
        built = None
    if built is None or newest_mtime(graph, onto_dir) > built:
        if notify is not None:
            why = "missing" if built is None else "older than the graph files"
            notify(f"note: {out}/ is {why}; rebuilding it")
        from .pipeline import build

        build(graph, out, ontology)
    return index


def open_index(graph: Path, out: Path, ontology: Path | None = None, *,
               notify: Callable[[str], None] | None = None, fresh_check: bool = True) -> Index:
    path = ensure_built(graph, out, ontology, notify) if fresh_check else out / "index.sqlite"
    index = Index(path)
    index.graph_dir = graph
    return index


def _name(zh: str | None, en: str | None) -> dict[str, str]:
    return {"zh": zh or "", "en": en or ""}


class Index:
    """Read-only access to ``index.sqlite``."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise QueryError(f"{path}: no compiled index; run `ekg build` first")
        try:
            self.con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            self.con.execute("SELECT 1 FROM meta LIMIT 1")
        except sqlite3.DatabaseError as exc:
            raise QueryError(f"{path}: not a valid index ({exc}); run `ekg build` again") from None
        self._classes: dict[str, list[str]] | None = None
        self._rels: dict[str, tuple[str, str]] | None = None
        self._sources: dict[str, dict[str, Any]] | None = None
        self.graph_dir: Path | None = None  # where entity files are; "file" is relative to it

    # -- ontology --------------------------------------------------------------------------

    @property
    def classes(self) -> dict[str, list[str]]:
        if self._classes is None:
            self._classes = {n: json.loads(a) for n, a in
                             self.con.execute("SELECT name, ancestors FROM class")}
        return self._classes

    @property
    def relations(self) -> dict[str, tuple[str, str]]:
        if self._rels is None:
            self._rels = {n: (en, zh) for n, en, zh in
                          self.con.execute("SELECT name, label_en, label_zh FROM relation")}
        return self._rels

    def subtypes(self, types: Iterable[str]) -> set[str]:
        """The given classes and all their subclasses; unknown names raise."""
        out: set[str] = set()
        for t in types:
            if t not in self.classes:
                from difflib import get_close_matches

                hint = get_close_matches(t, list(self.classes), n=1, cutoff=0.5)
                raise QueryError(f"unknown type {t!r}" + (f"; did you mean {hint[0]!r}?"
                                                          if hint else ""))
            out.update(c for c, anc in self.classes.items() if t in anc)
        return out

    def check_rels(self, rels: Iterable[str]) -> None:
        for r in rels:
            if r not in self.relations:
                from difflib import get_close_matches

                hint = get_close_matches(r, list(self.relations), n=1, cutoff=0.5)
                raise QueryError(f"unknown relation {r!r}" + (f"; did you mean {hint[0]!r}?"
                                                              if hint else ""))

    @property
    def sources(self) -> dict[str, dict[str, Any]]:
        if self._sources is None:
            self._sources = {i: json.loads(d) for i, d in
                             self.con.execute("SELECT id, doc FROM source")}
        return self._sources

    def source_refs(self, ids: Iterable[str]) -> list[dict[str, Any]]:
        out = []
        for sid in ids:
            s = self.sources.get(sid, {})
            out.append({"id": sid, "title": s.get("title", ""), "title_en": s.get("title_en"),
                        "publisher": s.get("publisher", ""), "date": s.get("date")})
        return out

    # -- resolution --------------------------------------------------------------------------

    def names_of(self, ids: Iterable[str]) -> dict[str, tuple[str, str, str]]:
        ids = list(dict.fromkeys(ids))
        out: dict[str, tuple[str, str, str]] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            q = ",".join("?" * len(chunk))
            for eid, typ, zh, en in self.con.execute(
                    f"SELECT id, type, name_zh, name_en FROM entity WHERE id IN ({q})", chunk):
                out[eid] = (typ, zh, en)
        return out

    def resolve(self, text: str) -> str:
        """The id of the entity ``text`` names (id, zh/en name, alias or pinyin)."""
        text = text.strip()
        if not text:
            raise QueryError("empty entity name")
        row = self.con.execute("SELECT id FROM entity WHERE id = ?", (text,)).fetchone()
        if row:
            return str(row[0])
        keys = [normalize(text)]  # pinyin rows were written at build time: 'muxi' matches
        best: dict[str, int] = {}
        for key in keys:
            for eid, kind in self.con.execute("SELECT id, kind FROM name WHERE key = ?", (key,)):
                rank = KIND_RANK.get(kind, 9)
                best[eid] = min(best.get(eid, 9), rank)
        if not best:
            sugg = self.find(text, limit=5)
            raise NotFound(text, [(r["id"], r["name"]["zh"] or r["name"]["en"]) for r in sugg])
        top = min(best.values())
        winners = sorted(e for e, r in best.items() if r == top)
        if len(winners) > 1:
            names = self.names_of(winners)
            raise Ambiguous(text, [(w, names[w][1] or names[w][2]) for w in winners])
        return winners[0]

    def find(self, text: str, *, limit: int = 10) -> list[dict[str, Any]]:
        """Entities whose id, names, aliases or pinyin match ``text``, best first."""
        q = normalize(text)
        if not q:
            return []
        qs = {q}
        scores: dict[str, float] = {}

        def bump(eid: str, s: float) -> None:
            if s > scores.get(eid, 0.0):
                scores[eid] = s

        for qq in qs:
            for key, eid, kind in self.con.execute(
                    "SELECT key, id, kind FROM name WHERE key >= ? AND key < ?",
                    (qq, qq + "\U0010ffff")):
                if key == qq:
                    bump(eid, KIND_SCORE.get(kind, 80.0))
                else:
                    bump(eid, 60.0 + 20.0 * len(qq) / len(key))
            for key, eid in self.con.execute(
                    "SELECT key, id FROM name WHERE instr(key, ?) > 0", (qq,)):
                if key != qq and not key.startswith(qq):
                    bump(eid, 40.0 + 20.0 * len(qq) / len(key))
        if not scores and len(q) >= 2:  # typos: only when nothing else matched
            from difflib import SequenceMatcher, get_close_matches

            keys: dict[str, list[str]] = {}
            for key, eid in self.con.execute("SELECT key, id FROM name"):
                keys.setdefault(key, []).append(eid)
            for key in get_close_matches(q, list(keys), n=limit * 2, cutoff=0.6):
                ratio = SequenceMatcher(None, q, key).ratio()
                for eid in keys[key]:
                    bump(eid, round(40.0 * ratio, 1))
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        names = self.names_of(e for e, _ in ranked)
        return [{"id": e, "type": names[e][0], "name": _name(names[e][1], names[e][2]),
                 "score": round(s, 1)} for e, s in ranked if e in names]

    # -- entity views --------------------------------------------------------------------------

    def _edges(self, where: str, args: Iterable[Any]) -> list[tuple[Any, ...]]:
        return self.con.execute(
            f'SELECT stmt, src, rel, dst, date, start, "end", doc FROM edge WHERE {where}',
            list(args)).fetchall()

    def show(self, entity: str, *, as_of: str | None = None) -> dict[str, Any]:
        eid = self.resolve(entity)
        typ, zh, en, doc_s = self.con.execute(
            "SELECT type, name_zh, name_en, doc FROM entity WHERE id = ?", (eid,)).fetchone()
        doc = json.loads(doc_s)
        attrs = []
        for a in doc["attributes"]:
            if not in_force(as_of, a.get("date"), a.get("start"), a.get("end")):
                continue
            item = {k: v for k, v in a.items() if k != "sources"}
            item["sources"] = self.source_refs(a["sources"])
            attrs.append(item)
        rels = []
        edges = [(e, "out") for e in self._edges("src = ?", [eid])]
        edges += [(e, "in") for e in self._edges("dst = ?", [eid])]
        others = self.names_of(e[3] if d == "out" else e[1] for e, d in edges)
        for (_stmt, src, rel, dst, date, start, end, edoc), direction in edges:
            if not in_force(as_of, date, start, end):
                continue
            other = dst if direction == "out" else src
            t, ozh, oen = others.get(other, ("", "", ""))
            ed = json.loads(edoc)
            item2: dict[str, Any] = {"rel": rel, "direction": direction, "id": other, "type": t,
                                     "name": _name(ozh, oen), "date": date}
            if start or end:
                item2["start"], item2["end"] = start, end
            for k in ("role", "amount", "note"):
                if k in ed:
                    item2[k] = ed[k]
            item2["sources"] = self.source_refs(ed["sources"])
            rels.append(item2)
        rels.sort(key=lambda r: (r["direction"] != "out", r["rel"], r["id"]))
        return {"id": eid, "type": typ, "name": _name(zh, en), "aliases": doc["aliases"],
                "description": doc["description"], "wikidata": doc.get("wikidata"),
                "note": doc.get("note"), "attributes": attrs, "relations": rels,
                "sources": self.source_refs(doc["sources"]), "file": self._file(doc.get("file"))}

    def _file(self, rel: str | None) -> str | None:
        if rel is None or self.graph_dir is None:
            return rel
        return os.path.relpath(self.graph_dir / rel)

    def _adjacent(self, frontier: list[str], rels: set[str] | None, direction: str,
                  as_of: str | None) -> list[tuple[str, str, str, str]]:
        """(from, rel, to, direction) for every edge touching the frontier."""
        out: list[tuple[str, str, str, str]] = []
        sql = 'SELECT src, rel, dst, date, start, "end" FROM edge WHERE '
        for i in range(0, len(frontier), 400):
            chunk = frontier[i:i + 400]
            q = ",".join("?" * len(chunk))
            if direction in ("out", "both"):
                for src, rel, dst, date, start, end in self.con.execute(
                        f"{sql} src IN ({q})", chunk):
                    if (rels is None or rel in rels) and in_force(as_of, date, start, end):
                        out.append((src, rel, dst, "out"))
            if direction in ("in", "both"):
                for src, rel, dst, date, start, end in self.con.execute(
                        f"{sql} dst IN ({q})", chunk):
                    if (rels is None or rel in rels) and in_force(as_of, date, start, end):
                        out.append((dst, rel, src, "in"))
        return out

    def neighbors(self, entity: str, *, hops: int = 1, rels: list[str] | None = None,
                  types: list[str] | None = None, direction: str = "both",
                  as_of: str | None = None) -> list[dict[str, Any]]:
        eid = self.resolve(entity)
        if rels:
            self.check_rels(rels)
        allowed = self.subtypes(types) if types else None
        relset = set(rels) if rels else None
        seen = {eid: 0}
        found: list[tuple[int, str, str, str, str]] = []  # hops, dir, rel, id, via
        frontier = [eid]
        for h in range(1, hops + 1):
            nxt: list[str] = []
            for frm, rel, to, d in sorted(set(self._adjacent(frontier, relset, direction,
                                                              as_of))):
                if to == eid or seen.get(to, h) < h:
                    continue
                if to not in seen:
                    seen[to] = h
                    nxt.append(to)
                found.append((h, d, rel, to, frm))
            frontier = nxt
            if not frontier:
                break
        names = self.names_of(x[3] for x in found)
        rows = []
        for h, d, rel, to, frm in sorted(set(found)):
            t, zh, en = names.get(to, ("", "", ""))
            if allowed is not None and t not in allowed:
                continue
            row: dict[str, Any] = {"id": to, "type": t, "name": _name(zh, en), "rel": rel,
                                   "direction": d, "hops": h}
            if h > 1:
                row["via"] = frm
            rows.append(row)
        return rows

    def path(self, a: str, b: str, *, max_hops: int = 6, all_paths: bool = False,
             as_of: str | None = None) -> dict[str, Any]:
        src, dst = self.resolve(a), self.resolve(b)
        if src == dst:
            return {"found": True, "hops": 0, "steps": [], "paths": [[]] if all_paths else None}
        if not all_paths:
            steps = self._shortest(src, dst, max_hops, as_of)
            if steps is None:
                return {"found": False, "hops": None, "steps": []}
            ids = {s["from"] for s in steps} | {s["to"] for s in steps}
            names = self.names_of(ids)
            return {"found": True, "hops": len(steps), "steps": steps,
                    "nodes": {i: {"type": names[i][0], "name": _name(names[i][1], names[i][2])}
                              for i in sorted(ids) if i in names}}
        preds: dict[str, list[tuple[str, str, str]]] = {src: []}  # node -> (prev, rel, dir)
        frontier = [src]
        depth = 0
        while frontier and dst not in preds and depth < max_hops:
            depth += 1
            layer: dict[str, list[tuple[str, str, str]]] = {}
            for frm, rel, to, d in sorted(set(self._adjacent(frontier, None, "both", as_of))):
                if to in preds:
                    continue
                layer.setdefault(to, []).append((frm, rel, d))
            preds.update(layer)
            frontier = sorted(layer)
        if dst not in preds:
            return {"found": False, "hops": None, "steps": [],
                    **({"paths": []} if all_paths else {})}

        def walk(node: str) -> list[list[dict[str, str]]]:
            if node == src:
                return [[]]
            out = []
            options = preds[node] if all_paths else preds[node][:1]
            for prev, rel, d in options:
                step = {"from": prev, "rel": rel, "to": node, "direction": d}
                for p in walk(prev):
                    out.append([*p, step])
                    if len(out) >= 100:
                        return out
            return out

        paths = walk(dst)
        ids = {s["from"] for p in paths for s in p} | {s["to"] for p in paths for s in p}
        names = self.names_of(ids)
        result: dict[str, Any] = {
            "found": True, "hops": len(paths[0]), "steps": paths[0],
            "nodes": {i: {"type": names[i][0], "name": _name(names[i][1], names[i][2])}
                      for i in sorted(ids) if i in names}}
        if all_paths:
            result["paths"] = paths
        return result

    def _shortest(self, src: str, dst: str, max_hops: int,
                  as_of: str | None) -> list[dict[str, str]] | None:
        """One shortest path, searching from both ends (the smaller frontier first), so hubs
        near one end do not flood the search. Ties break on ids: the answer is deterministic."""
        flip = {"out": "in", "in": "out"}
        # node -> (distance, previous node, rel, direction of the step as walked from src)
        fwd: dict[str, tuple[int, str, str, str]] = {src: (0, "", "", "")}
        bwd: dict[str, tuple[int, str, str, str]] = {dst: (0, "", "", "")}
        ffront, bfront = [src], [dst]
        depth_f = depth_b = 0
        while ffront and bfront and depth_f + depth_b < max_hops:
            forward = len(ffront) <= len(bfront)
            seen, front = (fwd, ffront) if forward else (bwd, bfront)
            depth = (depth_f if forward else depth_b) + 1
            layer: dict[str, tuple[int, str, str, str]] = {}
            for frm, rel, to, d in sorted(set(self._adjacent(front, None, "both", as_of))):
                if to not in seen and to not in layer:
                    # forward: the step frm -> to; backward: the walk goes to -> frm
                    layer[to] = (depth, frm, rel, d if forward else flip[d])
            seen.update(layer)
            if forward:
                ffront, depth_f = sorted(layer), depth
            else:
                bfront, depth_b = sorted(layer), depth
            other = bwd if forward else fwd
            meets = [n for n in layer if n in other]
            if meets:
                meet = min(meets, key=lambda n: (fwd[n][0] + bwd[n][0], n))
                steps: list[dict[str, str]] = []
                node = meet
                while node != src:
                    _, prev, rel, d = fwd[node]
                    steps.append({"from": prev, "rel": rel, "to": node, "direction": d})
                    node = prev
                steps.reverse()
                node = meet
                while node != dst:
                    _, nxt, rel, d = bwd[node]
                    steps.append({"from": node, "rel": rel, "to": nxt, "direction": d})
                    node = nxt
                return steps
        return None

    def list_entities(self, type_: str, *, where: list[tuple[str, str]] | None = None
             ) -> list[dict[str, Any]]:
        types = sorted(self.subtypes([type_]))
        q = ",".join("?" * len(types))
        rows = self.con.execute(
            f"SELECT id, type, name_zh, name_en, doc FROM entity WHERE type IN ({q}) ORDER BY id",
            types).fetchall()
        for field, value in where or []:
            if field in self.relations:
                target = self.resolve(value)
                ids = {r[0] for r in self.con.execute(
                    "SELECT src FROM edge WHERE rel = ? AND dst = ?", (field, target))}
                rows = [r for r in rows if r[0] in ids]
            elif field in ("type", "id"):
                rows = [r for r in rows if (r[1] if field == "type" else r[0]) == value]
            else:
                want = normalize(value)
                rows = [r for r in rows if any(
                    a["attribute"] == field and normalize(str(a["value"])) == want
                    for a in json.loads(r[4])["attributes"])]
        return [{"id": r[0], "type": r[1], "name": _name(r[2], r[3])} for r in rows]

    def stats(self) -> dict[str, Any]:
        meta = dict(self.con.execute("SELECT key, value FROM meta"))
        summ = json.loads(meta.get("summary", "{}"))
        by_rel = dict(self.con.execute(
            "SELECT rel, count(*) FROM edge GROUP BY rel ORDER BY rel"))
        dated = self.con.execute(
            'SELECT count(*) FROM edge WHERE date IS NOT NULL OR start IS NOT NULL').fetchone()[0]
        return {"entities": summ.get("entities"), "by_type": summ.get("by_type", {}),
                "relations": summ.get("relations"), "by_relation": by_rel,
                "dated_relations": dated, "attribute_facts": summ.get("facts"),
                "sources": summ.get("sources"), "triples": summ.get("triples"),
                "data_date": summ.get("data_date")}

    def rank(self, *, by: str = "degree", types: list[str] | None = None, top: int = 10
             ) -> list[dict[str, Any]]:
        allowed = self.subtypes(types) if types else None
        scores: dict[str, float] = {}
        if by == "degree":
            for node, n in self.con.execute(
                    "SELECT node, count(*) FROM (SELECT src AS node FROM edge UNION ALL "
                    "SELECT dst FROM edge) GROUP BY node"):
                scores[node] = float(n)
        elif by == "pagerank":
            nodes = [r[0] for r in self.con.execute("SELECT id FROM entity ORDER BY id")]
            edges = self.con.execute("SELECT src, dst FROM edge ORDER BY stmt").fetchall()
            scores = pagerank(nodes, edges)
        else:
            import networkx as nx

            g = nx.Graph()
            g.add_nodes_from(r[0] for r in self.con.execute("SELECT id FROM entity ORDER BY id"))
            g.add_edges_from(self.con.execute("SELECT src, dst FROM edge ORDER BY stmt"))
            k = None if g.number_of_nodes() <= 2000 else 500
            scores = nx.betweenness_centrality(g, k=k, seed=0)
        names = self.names_of(scores)
        ranked = sorted(((s, e) for e, s in scores.items()
                         if allowed is None or names.get(e, ("",))[0] in allowed),
                        key=lambda x: (-x[0], x[1]))[:top]
        return [{"rank": i, "score": round(s, 6), "id": e, "type": names[e][0],
                 "name": _name(names[e][1], names[e][2])}
                for i, (s, e) in enumerate(ranked, 1) if e in names]

    def timeline(self, *, start: str | None = None, end: str | None = None,
                 entity: str | None = None, rels: Iterable[str] | None = None,
                 types: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Dated statements (relations and attribute facts) in date order.

        ``rels`` keeps only these relations or attributes; ``types`` keeps statements whose
        subject or object is of one of these types (subclasses included).
        """
        eid = self.resolve(entity) if entity else None
        want_rels = set(rels) if rels else None
        want_types = self.subtypes(list(types)) if types else None
        events: list[dict[str, Any]] = []
        if eid:
            edges = self._edges("(src = ? OR dst = ?) AND (date IS NOT NULL OR start IS NOT "
                                "NULL)", [eid, eid])
        else:
            edges = self._edges("date IS NOT NULL OR start IS NOT NULL", [])
        names = self.names_of([e[1] for e in edges] + [e[3] for e in edges])
        for _stmt, src, rel, dst, date, st, en, doc in edges:
            when = date or st
            events.append({"date": when, "end": en, "subject": self._ref(src, names),
                           "rel": rel, "object": self._ref(dst, names),
                           "sources": json.loads(doc)["sources"], **(
                               {k: v for k, v in json.loads(doc).items()
                                if k in ("amount", "role", "note")})})
        q = "SELECT id, type, name_zh, name_en, doc FROM entity"
        args: list[Any] = []
        if eid:
            q += " WHERE id = ?"
            args.append(eid)
        for i, t, zh, en, doc_s in self.con.execute(q, args):
            for a in json.loads(doc_s)["attributes"]:
                when = a.get("date") or a.get("start")
                if a["attribute"] in ("founded",):
                    when = when or str(a["value"])
                if not when:
                    continue
                item = {"date": when, "end": a.get("end"),
                        "subject": {"id": i, "type": t, "name": _name(zh, en)},
                        "rel": a["attribute"], "object": None, "value": a["value"],
                        "sources": a["sources"]}
                if a.get("unit"):
                    item["unit"] = a["unit"]
                if a.get("note"):
                    item["note"] = a["note"]
                events.append(item)
        if want_rels:
            known = set(self.relations) | {e["rel"] for e in events}
            for r in sorted(want_rels - known):
                from difflib import get_close_matches

                hint = get_close_matches(r, sorted(known), n=1, cutoff=0.5)
                raise QueryError(f"no relation or dated attribute {r!r}"
                                 + (f"; did you mean {hint[0]!r}?" if hint else ""))
        lo = date_key(start) if start else None
        hi = date_key(end, end=True) if end else None
        out = [e for e in events if (lo is None or date_key(e["date"], end=True) >= lo)
               and (hi is None or date_key(e["date"]) <= hi)
               and (want_rels is None or e["rel"] in want_rels)
               and (want_types is None or e["subject"]["type"] in want_types
                    or (e["object"] or {}).get("type") in want_types)]
        out.sort(key=lambda e: (date_key(e["date"]), e["subject"]["id"], e["rel"],
                                (e["object"] or {}).get("id", "")))
        return out

    @staticmethod
    def _ref(eid: str, names: dict[str, tuple[str, str, str]]) -> dict[str, Any]:
        t, zh, en = names.get(eid, ("", "", ""))
        return {"id": eid, "type": t, "name": _name(zh, en)}


def pagerank(nodes: list[str], edges: list[tuple[str, str]], *, alpha: float = 0.85,
             tol: float = 1e-10, max_iter: int = 200) -> dict[str, float]:
    """PageRank by power iteration over the directed relation graph (no numpy needed).

    A relation points from subject to object, so rank flows to what many things point at:
    exchanges, places, parks, the chips that centres host.
    """
    n = len(nodes)
    if n == 0:
        return {}
    idx = {v: i for i, v in enumerate(nodes)}
    out_deg = [0] * n
    links: list[tuple[int, int]] = []
    for src, dst in edges:
        if src in idx and dst in idx:
            links.append((idx[src], idx[dst]))
            out_deg[idx[src]] += 1
    rank = [1.0 / n] * n
    for _ in range(max_iter):
        dangling = alpha * sum(rank[i] for i in range(n) if out_deg[i] == 0) / n
        new = [(1.0 - alpha) / n + dangling] * n
        for a, b in links:
            new[b] += alpha * rank[a] / out_deg[a]
        delta = sum(abs(x - y) for x, y in zip(new, rank, strict=True))
        rank = new
        if delta < n * tol:
            break
    return {v: rank[i] for v, i in idx.items()}


__all__ = ["EkgError", "Index", "ensure_built", "open_index", "pagerank"]
