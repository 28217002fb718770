"""The SPARQL sandbox: read-only, no SERVICE, no LOAD, no FROM; no socket, no file."""

from __future__ import annotations

import json
import socket
import sys
import threading
from pathlib import Path

import pytest

from ecosystem_kg.errors import SparqlRefused
from ecosystem_kg.sparql import check_query, format_results, run_query


@pytest.mark.parametrize("query,word", [
    ("INSERT DATA { <http://a> <http://b> <http://c> }", "INSERT"),
    ("DELETE WHERE { ?s ?p ?o }", "DELETE"),
    ("LOAD <http://example.org/data.ttl>", "LOAD"),
    ("CLEAR ALL", "CLEAR"),
    ("DROP GRAPH <http://g>", "DROP"),
    ("WITH <http://g> DELETE { ?s ?p ?o } WHERE { ?s ?p ?o }", "WITH"),
    ("SELECT * WHERE { SERVICE <http://127.0.0.1:9/sparql> { ?s ?p ?o } }", "SERVICE"),
    ("select * where { service silent <http://x/> { ?s ?p ?o } }", "SERVICE"),
    ("SELECT * FROM <http://example.org/remote.ttl> WHERE { ?s ?p ?o }", "FROM"),
    ("SELECT * FROM NAMED <file:///etc/passwd> WHERE { GRAPH ?g { ?s ?p ?o } }", "FROM"),
])
def test_refused_before_anything_runs(query: str, word: str) -> None:
    with pytest.raises(SparqlRefused, match=word):
        check_query(query)


@pytest.mark.parametrize("query", [
    'SELECT ?s WHERE { ?s ?p "SERVICE FROM LOAD insert" }  # DELETE in a comment',
    "PREFIX service: <http://x/> SELECT ?from WHERE { ?from service:load ?insert }",
    "ASK { ?s ?p ?o }",
    "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }",
    "DESCRIBE <https://w3id.org/ecosystem-kg/id/metax>",
])
def test_words_inside_strings_names_and_comments_are_fine(query: str) -> None:
    assert check_query(query) in ("SELECT", "ASK", "CONSTRUCT", "DESCRIBE")


def test_service_query_opens_no_connection(mini_build: tuple[Path, Path]) -> None:
    graph, out = mini_build
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.settimeout(1.0)
    port = listener.getsockname()[1]
    accepted: list[object] = []

    def accept() -> None:
        try:
            conn, _ = listener.accept()
            accepted.append(conn)
        except OSError:
            pass

    t = threading.Thread(target=accept)
    t.start()
    q = f"SELECT * WHERE {{ SERVICE <http://127.0.0.1:{port}/sparql> {{ ?s ?p ?o }} }}"
    with pytest.raises(SparqlRefused):
        run_query(q, fmt="json", graph=graph, out=out)
    t.join()
    listener.close()
    assert accepted == []


def test_a_query_opens_no_socket_and_no_file(mini_build: tuple[Path, Path]) -> None:
    """An audit hook records every open and socket event while queries run."""
    import pyoxigraph as ox

    from ecosystem_kg.sparql import _store

    graph, out = mini_build
    store = _store(out, [])
    events: list[str] = []
    active = [True]

    def hook(event: str, args: tuple[object, ...]) -> None:
        if active[0] and (event == "open" or event.startswith("socket.")):
            events.append(f"{event} {args[:1]}")

    sys.addaudithook(hook)
    try:
        for q in ("SELECT ?s WHERE { ?s ?p ?o } LIMIT 5", "ASK { ?s ?p ?o }",
                  "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o } LIMIT 3"):
            check_query(q)
            res = store.query(q)
            if isinstance(res, ox.QuerySolutions):
                list(res)
    finally:
        active[0] = False
    assert events == []


def test_formats(mini_build: tuple[Path, Path]) -> None:
    graph, out = mini_build
    q = ("SELECT ?l WHERE { <https://w3id.org/ecosystem-kg/id/hkex> "
         "<http://www.w3.org/2000/01/rdf-schema#label> ?l } ORDER BY ?l")
    csv_ = run_query(q, fmt="csv", graph=graph, out=out)
    assert csv_.splitlines() == ["l", "Hong Kong Stock Exchange", "香港交易所"]
    tsv = run_query(q, fmt="tsv", graph=graph, out=out)
    assert tsv.splitlines()[1:] == ["Hong Kong Stock Exchange@en", "香港交易所@zh"]
    assert "2 row(s)" in run_query(q, fmt="table", graph=graph, out=out)


def test_csv_cells_cannot_start_formulas() -> None:
    doc = {"head": {"vars": ["x"]}, "results": {"bindings": [
        {"x": {"type": "literal", "value": "=HYPERLINK(\"http://evil\")"}},
        {"x": {"type": "literal", "value": "+1"}}, {"x": {"type": "literal", "value": "ok"}}]}}
    import csv
    import io

    rows = list(csv.reader(io.StringIO(format_results(doc, "csv"))))
    assert rows == [["x"], ["'=HYPERLINK(\"http://evil\")"], ["'+1"], ["ok"]]


def test_the_on_disk_store_is_reused_and_replaced_after_a_rebuild(mini: Path,
                                                                  tmp_path: Path) -> None:
    from ecosystem_kg import build

    out = tmp_path / "build"
    build(mini, out, html=False)
    q = "SELECT (COUNT(*) AS ?n) WHERE { ?s skos:altLabel ?o }"

    def count() -> int:
        doc = json.loads(run_query(q, fmt="json", graph=mini, out=out))
        return int(doc["results"]["bindings"][0]["n"]["value"])

    before = count()
    stores = sorted(p.name for p in (out / ".sparql").iterdir())
    assert len(stores) == 1
    assert count() == before  # opened read-only, same answer
    place = mini / "places" / "shanghai.yaml"
    place.write_text(place.read_text(encoding="utf-8").replace("[上海市, 申城]",
                                                               "[上海市, 申城, 沪]"),
                     encoding="utf-8")
    build(mini, out, html=False)
    assert count() == before + 1
    after = sorted(p.name for p in (out / ".sparql").iterdir())
    assert len(after) == 1 and after != stores


def test_when_the_store_cannot_be_kept_the_query_runs_in_memory(mini_build: tuple[Path, Path],
                                                                tmp_path: Path) -> None:
    import shutil

    _graph, out = mini_build
    blocked = tmp_path / "blocked"
    shutil.copytree(out, blocked, ignore=shutil.ignore_patterns(".sparql"))
    (blocked / ".sparql").write_text("not a folder", encoding="utf-8")
    doc = json.loads(run_query("ASK { ?s ?p ?o }", fmt="json", graph=tmp_path / "none",
                               out=blocked))
    assert doc["boolean"] is True
    assert (blocked / ".sparql").read_text(encoding="utf-8") == "not a folder"
