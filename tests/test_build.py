"""The build: outputs parse back, are deterministic and are written atomically."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from ecosystem_kg import BuildError, ValidationFailed, build, compile_graph
from ecosystem_kg.compile import to_networkx, to_rdflib

from .conftest import MINI, run_ekg

RDF_FILES = ("ecosystem.ttl", "ecosystem.nt", "ecosystem.jsonld")


def test_outputs_parse_back_to_the_same_graph(mini_build: tuple[Path, Path]) -> None:
    import rdflib
    from rdflib.compare import isomorphic

    graph, out = mini_build
    compiled = compile_graph(graph)
    expected = to_rdflib(compiled.triples)
    fmts = {"ecosystem.ttl": "turtle", "ecosystem.nt": "nt", "ecosystem.jsonld": "json-ld"}
    for name, fmt in fmts.items():
        g = rdflib.Graph()
        g.parse(out / name, format=fmt)
        assert len(g) == len(expected), name
        assert isomorphic(g, expected), name
    assert not any(isinstance(t, rdflib.BNode) for tr in expected for t in tr)


def test_statement_nodes_answer_which_source_says_what_and_when(mini_build: tuple[Path, Path]
                                                                ) -> None:
    import rdflib

    graph, out = mini_build
    g = rdflib.Graph()
    g.parse(out / "ecosystem.nt", format="nt")
    q = """
    PREFIX ekg: <https://w3id.org/ecosystem-kg/ontology#>
    PREFIX prov: <http://www.w3.org/ns/prov#>
    PREFIX rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#>
    SELECT ?src ?date WHERE {
      ?st rdf:subject <https://w3id.org/ecosystem-kg/id/biren> ;
          rdf:predicate ekg:listed_on ; rdf:object <https://w3id.org/ecosystem-kg/id/hkex> ;
          prov:wasDerivedFrom ?src ; ekg:date ?date . }"""
    rows = [(str(a), str(b)) for a, b in g.query(q)]  # type: ignore[misc]
    assert rows == [("https://w3id.org/ecosystem-kg/id/news-a", "2026-01-02")]


def test_networkx_projection() -> None:
    g = to_networkx(compile_graph(MINI))
    assert g.number_of_nodes() == 10  # sources are not nodes
    assert g.nodes["metax"]["name_zh"] == "沐曦股份"
    edges = g.get_edge_data("biren", "hkex")
    assert [d["rel"] for d in edges.values()] == ["listed_on"]
    assert next(iter(edges.values()))["date"] == "2026-01-02"


def test_summary_counts(mini_build: tuple[Path, Path]) -> None:
    _, out = mini_build
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert s["entities"] == 10 and s["relations"] == 12 and s["sources"] == 2
    assert s["by_type"]["GPUMaker"] == 2
    assert s["data_date"] == "2026-01-09"


@pytest.mark.slow
@pytest.mark.parametrize("way", ["one process", "workers and the map's process"])
def test_build_is_byte_identical_across_hash_seeds(tmp_path: Path, way: str) -> None:
    # one process without the map, and the full build on workers whose parts of the map are
    # gathered by the map's process (sets of sources, units and dates travel between them)
    args, env = ((["--no-html"], {"EKG_PARALLEL_MIN": "100000"}) if way == "one process"
                 else ([], {"EKG_PARALLEL_MIN": "2"}))
    outs = []
    for seed in ("1", "2"):
        out = tmp_path / f"out{seed}"
        r = run_ekg("build", "--graph", str(MINI), "--out", str(out), *args,
                    env={"PYTHONHASHSEED": seed, **env})
        assert r.returncode == 0, r.stderr
        outs.append(out)
    names = sorted(p.name for p in outs[0].iterdir() if p.is_file())
    assert names == sorted(p.name for p in outs[1].iterdir() if p.is_file())
    for name in names:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_failed_build_leaves_previous_build_intact(mini: Path, tmp_path: Path) -> None:
    out = tmp_path / "build"
    build(mini, out, html=False)
    before = _snapshot(out)
    (mini / "companies" / "biren.yaml").write_text(
        "id: biren\ntype: GPUMaker\nname: {zh: 壁仞, en: Biren}\nrelations:\n"
        "  - {rel: listed_in, to: hkex}\n", encoding="utf-8")
    r = run_ekg("build", "--graph", str(mini), "--out", str(out))
    assert r.returncode == 1
    assert "unknown relation 'listed_in'; did you mean 'listed_on'?" in r.stderr
    assert "Traceback" not in r.stderr
    assert _snapshot(out) == before


def test_error_while_writing_leaves_previous_build_intact(mini: Path, tmp_path: Path) -> None:
    out = tmp_path / "build"
    build(mini, out, html=False)
    before = _snapshot(out)

    def boom(_: Path) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError):
        build(mini, out, html=False, before_swap=boom)
    assert _snapshot(out) == before
    assert not list(tmp_path.glob(".build.tmp-*"))


def test_leftovers_of_a_killed_build_are_recovered(mini: Path, tmp_path: Path) -> None:
    out = tmp_path / "build"
    build(mini, out, html=False)
    before = _snapshot(out)
    # killed between the two renames: the old output sits aside, a tmp folder is half written
    out.rename(tmp_path / ".build.old-99999")
    (tmp_path / ".build.tmp-99998").mkdir()
    (tmp_path / ".build.tmp-99998" / "ecosystem.nt").write_text("partial", encoding="utf-8")
    build(mini, out, html=False)
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".build.")) == [
        ".build.lock"]


def test_refuses_to_replace_a_folder_it_did_not_make(tmp_path: Path) -> None:
    out = tmp_path / "docs"
    out.mkdir()
    (out / "precious.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(BuildError, match="not made by `ekg build`"):
        build(MINI, out, html=False)
    assert (out / "precious.txt").read_text(encoding="utf-8") == "keep me"


def test_validation_failure_raises_with_all_problems(tmp_path: Path) -> None:
    g = tmp_path / "g"
    shutil.copytree(MINI, g)
    os.remove(g / "organizations" / "hkex.yaml")
    with pytest.raises(ValidationFailed) as info:
        build(g, tmp_path / "out", html=False)
    assert [str(p) for p in info.value.problems] == [
        f"{os.path.relpath(g / 'companies' / 'biren.yaml')}:7:26: unknown entity 'hkex'"]
    assert not (tmp_path / "out").exists()


def test_ontology_is_bundled_and_works_from_another_directory(tmp_path: Path) -> None:
    g = tmp_path / "elsewhere"
    shutil.copytree(MINI, g)
    r = run_ekg("check", "--graph", str(g), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("OK: 12 files, 10 entities")


def test_the_ontology_is_read_as_rdflib_reads_it() -> None:
    """The ontology's Turtle is read by pyoxigraph: the same triples as rdflib's parser."""
    import rdflib

    from ecosystem_kg.ontology import _Literal, _read_turtle, bundled_ontology_dir

    path = bundled_ontology_dir() / "ekg.ttl"
    g = rdflib.Graph().parse(path, format="turtle")

    def plain(t: object) -> object:
        if isinstance(t, rdflib.Literal):
            return (str(t), t.language)
        return str(t)

    want = {(str(s), str(p), plain(o)) for s, p, o in g
            if not isinstance(s, rdflib.BNode) and not isinstance(o, rdflib.BNode)}
    ours = _read_turtle([path])
    got = {(s, p, (o.value, o.language) if isinstance(o, _Literal) else o)
           for s, preds in ours.sp.items() if not s.startswith("_:")
           for p, objs in preds.items() for o in objs
           if isinstance(o, _Literal) or not o.startswith("_:")}
    assert len(want) > 500 and got == want
    # the blank nodes too: the union classes' members, in order
    agent = "https://w3id.org/ecosystem-kg/ontology#Agent"
    union = rdflib.collection.Collection(
        g, g.value(rdflib.URIRef(agent), rdflib.OWL.unionOf))
    assert ours.items(ours.value(agent, str(rdflib.OWL.unionOf))) == [str(m) for m in union]


def test_an_ontology_that_does_not_parse_is_named_with_its_line(tmp_path: Path) -> None:
    g = tmp_path / "graph"
    shutil.copytree(MINI, g)
    onto = tmp_path / "ontology"
    onto.mkdir()
    from ecosystem_kg.ontology import bundled_ontology_dir

    text = (bundled_ontology_dir() / "ekg.ttl").read_text(encoding="utf-8")
    lines = text.splitlines()
    line = next(i for i, t in enumerate(lines) if t.startswith("ekg:")) + 1
    lines[line - 1] = lines[line - 1].replace("ekg:", "ekg:: ", 1)
    (onto / "ekg.ttl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = run_ekg("build", "--graph", str(g), "--out", str(tmp_path / "out"))
    assert r.returncode == 1
    assert f"ekg.ttl:{line}:" in r.stderr and "could not be parsed" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_the_folder_above_the_graph_is_named_as_such(tmp_path: Path) -> None:
    # --graph given the project folder (the entity folders one level down): one error that
    # names the folder to pass, not one misplaced file per entity
    project = tmp_path / "project"
    shutil.copytree(MINI, project / "graph")
    for args in (["build", "--out", str(tmp_path / "out")], ["check"]):
        r = run_ekg(*args, "--graph", str(project))
        assert r.returncode == 1, r.stderr
        assert f"pass --graph {project / 'graph'}" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()
    assert run_ekg("check", "--graph", str(project / "graph")).returncode == 0


def test_no_whole_graph_map_past_the_limit(mini: Path, tmp_path: Path) -> None:
    """Past EKG_MAP_LIMIT entity files the build writes everything but the page, and says so."""
    files = len(list(mini.rglob("*.yaml")))
    out = tmp_path / "out"
    r = run_ekg("build", "--graph", str(mini), "--out", str(out), "--json",
                env={"EKG_MAP_LIMIT": str(files - 1)})
    assert r.returncode == 0, r.stderr
    assert "note: no ecosystem.html:" in r.stderr and "ekg render ENTITY" in r.stderr
    assert json.loads(r.stdout)["map_skipped"].startswith(f"{files:,} entity files")
    assert not (out / "ecosystem.html").exists()
    assert (out / "ecosystem.ttl").is_file() and (out / "index.sqlite").is_file()
    r = run_ekg("build", "--graph", str(mini), "--out", str(out), "--json",
                env={"EKG_MAP_LIMIT": str(files)})
    assert r.returncode == 0 and "ecosystem.html" not in r.stderr
    assert json.loads(r.stdout)["map_skipped"] is None
    assert (out / "ecosystem.html").is_file()
