"""Every command through typer's CliRunner: exit codes, and --json stdout parses on its own."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ecosystem_kg.cli import app

from .conftest import ROOT

runner = CliRunner()


def ekg(mini_build: tuple[Path, Path], *args: str) -> tuple[int, str, str]:
    graph, out = mini_build
    r = runner.invoke(app, [*args, "--graph", str(graph), "--out", str(out)])
    return r.exit_code, r.stdout, r.stderr


def ekg_json(mini_build: tuple[Path, Path], *args: str) -> object:
    code, out, err = ekg(mini_build, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_find_by_pinyin_alias_and_width(mini_build: tuple[Path, Path]) -> None:
    rows = ekg_json(mini_build, "find", "muxi")
    assert isinstance(rows, list) and rows[0]["id"] == "metax"
    assert set(rows[0]) == {"id", "type", "name", "score"}
    assert rows[0]["name"] == {"zh": "沐曦股份", "en": "MetaX"}
    assert ekg_json(mini_build, "find", "ＨＫＥＸ")[0]["id"] == "hkex"  # type: ignore[index]
    assert ekg_json(mini_build, "find", "  hong kong ")[0]["id"] == "hkex"  # type: ignore[index]


def test_show_contract(mini_build: tuple[Path, Path]) -> None:
    d = ekg_json(mini_build, "show", "沐曦")
    assert isinstance(d, dict)
    assert set(d) >= {"id", "type", "name", "aliases", "description", "attributes", "relations"}
    listed = [r for r in d["relations"] if r["rel"] == "listed_on"][0]
    assert set(listed) >= {"rel", "direction", "id", "name", "date", "sources"}
    assert listed["direction"] == "out" and listed["date"] == "2025-12"
    assert [s["title"] for s in listed["sources"]] == ["测试报道甲", "测试报道乙"]
    inv = [r for r in d["relations"] if r["rel"] == "invested_in"][0]
    assert inv["direction"] == "in" and inv["amount"] == {"value": 5, "unit": "RMB_100M"}


def test_neighbors_contract_and_filters(mini_build: tuple[Path, Path]) -> None:
    rows = ekg_json(mini_build, "neighbors", "沐曦")
    assert isinstance(rows, list)
    assert all(set(r) >= {"id", "type", "name", "rel", "direction", "hops"} for r in rows)
    assert {(r["id"], r["direction"]) for r in rows} == {
        ("chen-weiliang", "in"), ("telecom-lingang", "in"), ("pudong-vc", "in"),
        ("compute-vouchers", "in"), ("star-market", "out"), ("shanghai", "out")}
    rows = ekg_json(mini_build, "neighbors", "metax", "--hops", "2", "--type", "Place")
    # Park and ComputeCentre are subclasses of Place
    assert {r["id"] for r in rows} == {"shanghai", "lingang", "telecom-lingang"}
    rows = ekg_json(mini_build, "neighbors", "metax", "--rel", "listed_on", "--direction", "out")
    assert [r["id"] for r in rows] == ["star-market"]
    rows = ekg_json(mini_build, "neighbors", "metax", "--as-of", "2025-06")
    assert "star-market" not in {r["id"] for r in rows}


def test_path_contract(mini_build: tuple[Path, Path]) -> None:
    d = ekg_json(mini_build, "path", "浦东创投", "港交所")
    assert isinstance(d, dict) and d["found"] is True and d["hops"] == 4
    assert d["steps"][0] == {"from": "pudong-vc", "rel": "invested_in", "to": "metax",
                             "direction": "out"}
    assert d["steps"][2]["direction"] == "in"  # biren located_in shanghai, walked backwards
    d = ekg_json(mini_build, "path", "metax", "biren", "--all")
    assert isinstance(d, dict) and len(d["paths"]) == 2  # via shanghai and via telecom-lingang
    code, out, _ = ekg(mini_build, "path", "metax", "hkex", "--max-hops", "1", "--json")
    assert code == 1 and json.loads(out)["found"] is False


def test_list_stats_rank_timeline(mini_build: tuple[Path, Path]) -> None:
    rows = ekg_json(mini_build, "list", "Company", "--where", "located_in=上海")
    assert [r["id"] for r in rows] == ["biren", "metax"]  # type: ignore[index]
    s = ekg_json(mini_build, "stats")
    assert isinstance(s, dict) and s["entities"] == 10 and s["by_relation"]["listed_on"] == 2
    r = ekg_json(mini_build, "rank", "--by", "degree", "--top", "1")
    assert r[0]["id"] == "metax"  # type: ignore[index]
    for by in ("pagerank", "betweenness"):
        assert len(ekg_json(mini_build, "rank", "--by", by, "--top", "3")) == 3  # type: ignore
    t = ekg_json(mini_build, "timeline", "--from", "2025-12", "--to", "2026-01")
    assert [(e["date"], e["rel"]) for e in t] == [  # type: ignore[index, union-attr]
        ("2025-12", "listed_on"), ("2026-01", "compute_capacity"), ("2026-01-02", "listed_on")]


def test_sparql_json_is_standard_results_format(mini_build: tuple[Path, Path]) -> None:
    d = ekg_json(mini_build, "sparql", "SELECT ?s WHERE { ?s a "
                 "<https://w3id.org/ecosystem-kg/ontology#GPUMaker> } ORDER BY ?s")
    assert isinstance(d, dict) and d["head"]["vars"] == ["s"]
    assert [b["s"]["value"].rsplit("/", 1)[1] for b in d["results"]["bindings"]] == [
        "biren", "metax"]
    # subclass reasoning through the ontology loaded beside the data
    d = ekg_json(mini_build, "sparql", "PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#> "
                 "PREFIX ekg: <https://w3id.org/ecosystem-kg/ontology#> SELECT (COUNT(?s) AS ?n)"
                 " WHERE { ?s a/rdfs:subClassOf* ekg:Company }")
    assert d["results"]["bindings"][0]["n"]["value"] == "2"  # type: ignore[index]


def test_export_formats(mini_build: tuple[Path, Path], tmp_path: Path) -> None:
    for fmt in ("ttl", "nt", "jsonld", "graphml"):
        code, out, err = ekg(mini_build, "export", "--format", fmt)
        assert code == 0 and out.strip(), err
    code, _, err = ekg(mini_build, "export", "--format", "csv", "-o", str(tmp_path / "csv"))
    assert code == 0, err
    edges = (tmp_path / "csv" / "edges.csv").read_text(encoding="utf-8").splitlines()
    assert edges[0].startswith("source,rel,target,date")
    assert len(edges) == 13
    code, out, _ = ekg(mini_build, "export", "--format", "nt", "--as-of", "2025-06")
    assert code == 0 and "listed_on" not in out


@pytest.mark.parametrize("args,code,needle", [
    (["show", "nosuch"], 1, "no entity matches 'nosuch'"),
    (["show", "metx"], 1, "did you mean: 沐曦股份 (metax)"),
    (["neighbors", "metax", "--direction", "up"], 2, "--direction must be in, out or both"),
    (["neighbors", "metax", "--as-of", "2026-13"], 2, "month 13 does not exist"),
    (["neighbors", "metax", "--rel", "listed_in"], 1, "did you mean 'listed_on'"),
    (["list", "Compny"], 1, "did you mean 'Company'"),
    (["rank", "--by", "fame"], 2, "--by must be"),
    (["sparql", "DELETE WHERE { ?s ?p ?o }"], 1, "DELETE is refused"),
    (["export", "--format", "xml"], 2, "--format must be"),
    (["neighbors"], 2, "Missing argument"),
])
def test_errors_exit_codes(mini_build: tuple[Path, Path], args: list[str], code: int,
                           needle: str) -> None:
    c, out, err = ekg(mini_build, *args)
    assert c == code, (out, err)
    assert needle in err
    assert "Traceback" not in err


def test_ambiguous_name_lists_candidates(mini: Path, tmp_path: Path) -> None:
    (mini / "companies" / "metax-two.yaml").write_text(
        "id: metax-two\ntype: Company\nname: {zh: 另一家, en: Other}\naliases: [沐曦]\n"
        "source: news-a\nrelations:\n  - {rel: located_in, to: shanghai, source: news-a}\n",
        encoding="utf-8")
    r = runner.invoke(app, ["show", "沐曦", "--graph", str(mini), "--out",
                            str(tmp_path / "b")])
    assert r.exit_code == 1
    assert "ambiguous" in r.stderr and "metax" in r.stderr and "metax-two" in r.stderr


def test_stale_output_is_rebuilt_with_a_note(mini: Path, tmp_path: Path) -> None:
    out = tmp_path / "b"
    r = runner.invoke(app, ["find", "biren", "--graph", str(mini), "--out", str(out), "--json"])
    assert r.exit_code == 0 and "rebuilding" in r.stderr
    json.loads(r.stdout)
    r = runner.invoke(app, ["find", "biren", "--graph", str(mini), "--out", str(out), "--json"])
    assert "rebuilding" not in r.stderr
    p = mini / "companies" / "biren.yaml"
    p.write_text(p.read_text(encoding="utf-8").replace("Biren Technology", "Biren Tech"),
                 encoding="utf-8")
    import os
    import time
    future = time.time() + 5
    os.utime(p, (future, future))
    r = runner.invoke(app, ["show", "biren", "--graph", str(mini), "--out", str(out), "--json"])
    assert r.exit_code == 0 and "rebuilding" in r.stderr
    assert json.loads(r.stdout)["name"]["en"] == "Biren Tech"


def test_every_command_has_help_and_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    names = [c.name or (c.callback.__name__ if c.callback else "")
             for c in app.registered_commands]
    assert len(names) >= 12
    for name in names:
        r = runner.invoke(app, [name, "--help"])
        assert r.exit_code == 0 and "Usage" in r.stdout, name
        assert re.search(rf"ekg {re.escape(name)}\b", readme), f"README lacks `ekg {name}`"


def test_version() -> None:
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and re.match(r"ekg \d+\.\d+\.\d+", r.stdout)


def test_timeline_filters_by_relation_and_type(mini_build: tuple[Path, Path]) -> None:
    t = ekg_json(mini_build, "timeline", "--rel", "listed_on")
    assert [(e["date"], e["subject"]["id"], e["object"]["id"])  # type: ignore[index]
            for e in t] == [("2025-12", "metax", "star-market"), ("2026-01-02", "biren", "hkex")]
    t = ekg_json(mini_build, "timeline", "--type", "StockExchange")
    assert {e["rel"] for e in t} == {"listed_on"}  # type: ignore[index, union-attr]
    t = ekg_json(mini_build, "timeline", "--type", "Measure")
    assert [(e["date"], e["rel"]) for e in t] == [  # type: ignore[index]
        ("2025-07-28", "budget"), ("2025-07-28", "issued_by"), ("2025-08", "supports")]
    code, out, err = ekg(mini_build, "timeline", "--rel", "listd_on")
    assert code == 1 and "did you mean 'listed_on'" in err and "Traceback" not in err
    code, out, err = ekg(mini_build, "timeline", "--rel", "listed_on")
    first = out.splitlines()[2].split()
    assert code == 0 and first == ["2025-12", "沐曦股份", "listed_on", "科创板"]


def test_sparql_prefixes_are_predeclared_and_iris_shortened(mini_build: tuple[Path, Path]
                                                           ) -> None:
    code, out, err = ekg(mini_build, "sparql", "SELECT ?s WHERE { ?s a ekg:GPUMaker ; "
                         "rdfs:label ?l } ORDER BY ?s LIMIT 1")
    assert code == 0, err
    assert out.splitlines()[2].strip() == ":biren"
    code, out, err = ekg(mini_build, "sparql", "SELECT ?s WHERE { ?s foo:bar ?o }")
    assert code == 1 and "undeclared prefix" in err and "ekg:" in err and len(err) < 300
    # a query's own PREFIX wins over the predeclared one
    code, out, err = ekg(mini_build, "sparql", "PREFIX ekg: <urn:x#> ASK { ?s a ekg:GPUMaker }",
                         "--format", "json")
    assert code == 0 and json.loads(out)["boolean"] is False


@pytest.mark.parametrize("args", [["neighbors", "沐曦"], ["find", "muxi"], ["show", "hkex"],
                                  ["path", "沐曦", "hkex"]])
def test_queries_leave_the_heavy_libraries_unloaded(mini_build: tuple[Path, Path],
                                                    args: list[str]) -> None:
    """A query reads the index: no rdflib, pyvis, networkx, pyoxigraph or yaml is imported."""
    import subprocess
    import sys

    graph, out = mini_build
    code = ("import sys\nfrom ecosystem_kg.cli import main\n"
            f"sys.argv = ['ekg', *{args!r}, '--graph', {str(graph)!r}, '--out', {str(out)!r},"
            " '--json']\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "heavy = sorted(m for m in ('rdflib', 'pyvis', 'networkx', 'pyoxigraph', 'yaml')"
            " if m in sys.modules)\n"
            "print('HEAVY', heavy, file=sys.stderr)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "HEAVY []" in r.stderr
    json.loads(r.stdout)
