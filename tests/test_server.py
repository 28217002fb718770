"""`ekg push`, `ekg sparql --endpoint` and `ekg serve` against a real Oxigraph server.

A writable `oxigraph serve` runs on 127.0.0.1 at a free port over a temporary folder. Without
the `oxigraph` executable (pip install 'ecosystem-kg[server]') these tests skip, unless
EKG_REQUIRE_SERVER=1 (as in CI): then they fail.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ecosystem_kg.cli import app
from ecosystem_kg.remote import count_triples, find_oxigraph

from .conftest import run_ekg

REQUIRE = os.environ.get("EKG_REQUIRE_SERVER") == "1"
IRI = "https://w3id.org/ecosystem-kg/graph/test"
COUNT_ALL = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"


def unavailable(reason: str) -> None:
    if REQUIRE:
        pytest.fail(f"{reason} (EKG_REQUIRE_SERVER=1, so this is a failure, not a skip)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[Any], timeout: float = 60.0) -> None:
    """Until ``url`` answers over HTTP (any status), or fail if ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the server exited with code {proc.returncode}: {err or out}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"{url} did not answer within {timeout:g} s")


def stop(proc: subprocess.Popen[Any]) -> int:
    proc.terminate()
    try:
        return proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


@pytest.fixture(scope="session")
def oxigraph_exe() -> str:
    exe = find_oxigraph()
    if exe is None:
        unavailable("the oxigraph executable is not installed "
                    "(pip install 'ecosystem-kg[server]')")
    assert exe is not None
    return exe


@pytest.fixture(scope="module")
def server(oxigraph_exe: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A writable Oxigraph server on 127.0.0.1; yields its base URL."""
    location = tmp_path_factory.mktemp("oxigraph")
    port = free_port()
    proc = subprocess.Popen([oxigraph_exe, "serve", "--location", str(location),
                             "--bind", f"127.0.0.1:{port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/query?query={urllib.parse.quote('ASK {}')}", proc)
        yield base
    finally:
        stop(proc)


def ekg(mini_build: tuple[Path, Path], *args: str) -> subprocess.CompletedProcess[str]:
    graph, out = mini_build
    return run_ekg(*args, "--graph", str(graph), "--out", str(out))


def push(mini_build: tuple[Path, Path], store: str, *args: str) -> dict[str, Any]:
    r = ekg(mini_build, "push", "--store", store, *args, "--json")
    assert r.returncode == 0, r.stderr
    data: dict[str, Any] = json.loads(r.stdout)
    return data


def select(mini_build: tuple[Path, Path], query: str, endpoint: str | None = None) -> Any:
    args = ["--endpoint", endpoint] if endpoint else []
    r = ekg(mini_build, "sparql", query, *args, "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["results"]["bindings"]


def count(mini_build: tuple[Path, Path], query: str, endpoint: str | None = None) -> int:
    return int(select(mini_build, query, endpoint)[0]["n"]["value"])


def in_graph(iri: str) -> str:
    return f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{iri}> {{ ?s ?p ?o }} }}"


def test_push_replaces_a_named_graph(server: str, mini_build: tuple[Path, Path]) -> None:
    triples, size = count_triples(mini_build[1] / "ecosystem.nt")
    assert triples > 50
    first = push(mini_build, f"{server}/store", "--graph-iri", IRI)
    assert first["triples"] == triples and first["bytes"] == size and first["graph"] == IRI
    assert first["target"] == f"{server}/store?graph={urllib.parse.quote(IRI, safe='')}"
    assert count(mini_build, in_graph(IRI), f"{server}/query") == triples
    push(mini_build, f"{server}/store", "--graph-iri", IRI)  # again: replaced, not doubled
    assert count(mini_build, in_graph(IRI), f"{server}/query") == triples
    # the human summary is one line
    r = ekg(mini_build, "push", "--store", f"{server}/store", "--graph-iri", IRI)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("\n") == 1 and f"pushed {triples:,} triples" in r.stdout
    assert IRI in r.stdout and server in r.stdout


def test_the_pushed_graph_answers_like_the_local_one(server: str,
                                                     mini_build: tuple[Path, Path]) -> None:
    iri = IRI + "/answers"
    push(mini_build, f"{server}/store", "--graph-iri", iri)
    q = "SELECT (COUNT(?x) AS ?n) WHERE { %s }"
    local = count(mini_build, q % "?x a ekg:GPUMaker")
    assert local == 2
    assert count(mini_build, q % f"GRAPH <{iri}> {{ ?x a ekg:GPUMaker }}",
                 f"{server}/query") == local
    about = "SELECT ?p ?o WHERE { %s } ORDER BY ?p ?o"
    local_rows = select(mini_build, about % ":metax ?p ?o")
    assert len(local_rows) > 5
    assert select(mini_build, about % f"GRAPH <{iri}> {{ :metax ?p ?o }}",
                  f"{server}/query") == local_rows


def test_push_to_the_default_graph(server: str, mini_build: tuple[Path, Path]) -> None:
    triples, _ = count_triples(mini_build[1] / "ecosystem.nt")
    default = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"  # the default graph only
    for _ in range(2):
        d = push(mini_build, f"{server}/store")
        assert d["graph"] is None and d["target"] == f"{server}/store?default"
        assert count(mini_build, default, f"{server}/query") == triples


def test_push_errors_are_one_line(server: str, mini_build: tuple[Path, Path]) -> None:
    closed = free_port()
    r = ekg(mini_build, "push", "--store", f"http://127.0.0.1:{closed}/store")
    assert r.returncode == 1 and "cannot connect" in r.stderr and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr

    r = ekg(mini_build, "push", "--store", f"{server}/no-such-store", "--graph-iri", IRI)
    assert r.returncode == 1 and "HTTP 404" in r.stderr and r.stderr.count("\n") == 1

    r = ekg(mini_build, "push", "--store", f"{server}/query")
    assert r.returncode == 1 and "graph store URL" in r.stderr

    for url in ("ftp://127.0.0.1/store", "127.0.0.1:7878/store", "file:///tmp/x"):
        r = ekg(mini_build, "push", "--store", url)
        assert r.returncode == 1 and "http(s) URL" in r.stderr, url

    r = ekg(mini_build, "push", "--store", f"{server}/store", "--graph-iri", "not an iri")
    assert r.returncode == 1 and "absolute IRI" in r.stderr


def test_push_times_out(mini_build: tuple[Path, Path]) -> None:
    """A listener that never answers: the push gives up after --timeout."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        t0 = time.monotonic()
        r = ekg(mini_build, "push", "--store", f"http://127.0.0.1:{port}/store",
                "--timeout", "0.5")
        assert time.monotonic() - t0 < 20
    assert r.returncode == 1 and "no answer within 0.5 s" in r.stderr


def test_sparql_endpoint_errors(server: str, mini_build: tuple[Path, Path]) -> None:
    r = ekg(mini_build, "sparql", COUNT_ALL, "--endpoint", f"http://127.0.0.1:{free_port()}/q")
    assert r.returncode == 1 and "cannot connect" in r.stderr
    r = ekg(mini_build, "sparql", "SELECT ?x WHERE { ?x ?y }", "--endpoint", f"{server}/query")
    assert r.returncode == 1 and "HTTP 400" in r.stderr


def test_serve(oxigraph_exe: str, mini_build: tuple[Path, Path]) -> None:
    graph, out = mini_build
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ecosystem_kg", "serve", "--port", str(port),
                             "--graph", str(graph), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    endpoint = f"http://127.0.0.1:{port}/query"
    try:
        wait_http(f"{endpoint}?query={urllib.parse.quote('ASK {}')}", proc)
        # the data and the ontology, as in a local query
        assert count(mini_build, COUNT_ALL, endpoint) == count(mini_build, COUNT_ALL)
        sub = ("SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE { ?x a/rdfs:subClassOf* ekg:Place }")
        assert count(mini_build, sub, endpoint) == count(mini_build, sub) >= 3
        # read-only
        req = urllib.request.Request(f"http://127.0.0.1:{port}/store?default", method="PUT",
                                     data=b"", headers={"Content-Type": "application/n-triples"})
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(req, timeout=10)
    finally:
        code = stop(proc)
    stdout, _ = proc.communicate()
    assert code == 0
    assert f"SPARQL endpoint: {endpoint}" in stdout
    with pytest.raises(OSError):  # the oxigraph server went with it
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert (out / "oxigraph" / ".ekg-oxigraph").is_file()


def test_serve_refuses_a_busy_port(oxigraph_exe: str, mini_build: tuple[Path, Path]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        r = ekg(mini_build, "serve", "--port", str(s.getsockname()[1]))
    assert r.returncode == 1 and "already listening" in r.stderr


def test_serve_without_oxigraph_says_how_to_install(
        mini_build: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    graph, out = mini_build
    r = CliRunner().invoke(app, ["serve", "--graph", str(graph), "--out", str(out)])
    assert r.exit_code == 1
    assert "install the server extra: pip install 'ecosystem-kg[server]'" in r.stderr
