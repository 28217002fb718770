"""`ekg export`: the graph (optionally as of a date) as Turtle, N-Triples, JSON-LD, GraphML or
CSV (nodes.csv and edges.csv, spreadsheet-safe)."""

from __future__ import annotations

import copy
import csv
import io
import os
from collections.abc import Callable
from pathlib import Path

from .compile import Compiled, compile_entities, to_graphml, to_jsonld, to_ntriples, to_turtle
from .dates import in_force
from .sparql import _csv_safe

FILES = {"ttl": "ecosystem.ttl", "nt": "ecosystem.nt", "jsonld": "ecosystem.jsonld",
         "graphml": "ecosystem.graphml"}


def as_of_view(compiled: Compiled, as_of: str) -> Compiled:
    """The compiled graph with only the statements in force on ``as_of``."""
    ents = []
    for e in compiled.entities:
        e2 = copy.copy(e)
        e2.relations = [r for r in e.relations if in_force(as_of, r.date, r.start, r.end)]
        e2.facts = [f for f in e.facts if in_force(as_of, f.date, f.start, f.end)]
        ents.append(e2)
    return compile_entities(ents, compiled.ontology)


def csv_tables(compiled: Compiled) -> tuple[str, str]:
    nodes = io.StringIO()
    w = csv.writer(nodes, lineterminator="\n")
    w.writerow(["id", "type", "name_zh", "name_en", "aliases", "description", "sources"])
    for e in compiled.entities:
        if e.is_source:
            continue
        w.writerow([_csv_safe(x) for x in (
            e.id, e.type, e.name_zh, e.name_en, ";".join(e.aliases),
            e.description.get("en") or e.description.get("zh", ""), ";".join(e.sources))])
    edges = io.StringIO()
    w = csv.writer(edges, lineterminator="\n")
    w.writerow(["source", "rel", "target", "date", "start", "end", "role", "amount", "unit",
                "sources", "note"])
    for e in compiled.entities:
        for r in e.relations:
            amt = r.amount
            w.writerow([_csv_safe(str(x)) for x in (
                e.id, r.rel, r.target, r.date or "", r.start or "", r.end or "", r.role or "",
                "" if amt is None else amt.value, "" if amt is None else amt.unit or "",
                ";".join(r.sources), r.note or "")])
    return nodes.getvalue(), edges.getvalue()


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def export(fmt: str, output: Path | None, *, graph: Path, out: Path,
           ontology: Path | None = None, as_of: str | None = None,
           notify: Callable[[str], None] | None = None) -> str:
    """Return the text (no ``output``) or the path written, as text."""
    from .pipeline import compile_graph
    from .query import ensure_built

    if as_of is None and fmt in FILES:
        ensure_built(graph, out, ontology, notify)
        text = (out / FILES[fmt]).read_text(encoding="utf-8")
    else:
        compiled = compile_graph(graph, ontology)
        if as_of is not None:
            compiled = as_of_view(compiled, as_of)
        if fmt == "csv":
            assert output is not None
            nodes, edges = csv_tables(compiled)
            output.mkdir(parents=True, exist_ok=True)
            _write(output / "nodes.csv", nodes)
            _write(output / "edges.csv", edges)
            return str(output)
        text = {"ttl": to_turtle, "nt": to_ntriples, "jsonld": to_jsonld}[fmt](
            compiled.triples) if fmt != "graphml" else to_graphml(compiled)
    if output is None:
        return text
    _write(output, text)
    return str(output)
