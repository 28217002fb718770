"""The compiled graph on a SPARQL server: push it to a graph store, or serve it with Oxigraph.

``push`` replaces one graph of any SPARQL 1.1 Graph Store Protocol endpoint (Oxigraph's
``/store``, Fuseki's ``/DATASET/data``) with ``ecosystem.nt``: one HTTP PUT, streamed from the
file, to ``STORE?graph=IRI`` or ``STORE?default``. PUT replaces, so pushing twice leaves one
copy.

``serve`` loads the build into an Oxigraph store folder and runs the ``oxigraph`` server (from
the ``oxigraph`` package: ``pip install 'ecosystem-kg[server]'``) read-only in the foreground.

Only the standard library is imported here (urllib, subprocess), and only when called.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import EkgError, QueryError, RemoteError

INSTALL_HINT = "install the server extra: pip install 'ecosystem-kg[server]'"
STORE_MARKER = ".ekg-oxigraph"
_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"{}|\\^`]+$")


def check_url(url: str, what: str, example: str) -> None:
    if not re.match(r"^https?://[^/?#\s]+", url, re.I):
        raise RemoteError(f"{url!r}: the {what} must be an http(s) URL, e.g. {example}")


def send(url: str, data: Any, headers: dict[str, str], method: str, timeout: float, *,
         hint_on: tuple[int, ...] = (), hint: str = "") -> tuple[int, bytes]:
    """One HTTP request; (status, body). Every failure is a one-line RemoteError naming the
    URL: an HTTP error with the start of its body (plus ``hint`` for the ``hint_on`` codes),
    no connection, or no answer within ``timeout`` seconds."""
    import http.client
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        detail = " ".join(exc.read().decode("utf-8", "replace").split())[:200]
        raise RemoteError(f"{url}: HTTP {exc.code} {exc.reason}"
                          + (f": {detail}" if detail else "")
                          + (hint if exc.code in hint_on else "")) from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise RemoteError(f"{url}: no answer within {timeout:g} s") from None
        raise RemoteError(f"{url}: cannot connect: {exc.reason}") from None
    except TimeoutError:
        raise RemoteError(f"{url}: no answer within {timeout:g} s") from None
    except (OSError, http.client.HTTPException) as exc:
        raise RemoteError(f"{url}: the connection failed: {exc}") from None


def store_target(store_url: str, graph_iri: str | None = None) -> str:
    """The Graph Store Protocol URL of one graph: ``STORE?graph=IRI`` or ``STORE?default``."""
    import urllib.parse

    sep = "&" if "?" in store_url else "?"
    if graph_iri is None:
        return f"{store_url}{sep}default"
    return f"{store_url}{sep}{urllib.parse.urlencode({'graph': graph_iri})}"


def count_triples(nt_path: Path) -> tuple[int, int]:
    """(triples, bytes) of an N-Triples file: lines that are neither blank nor comments."""
    n = size = 0
    with nt_path.open("rb") as f:
        for line in f:
            size += len(line)
            s = line.lstrip()
            if s and not s.startswith(b"#"):
                n += 1
    return n, size


def push(nt_path: Path, store_url: str, graph_iri: str | None = None,
         timeout: float = 30.0) -> dict[str, Any]:
    """Replace a graph (the default graph when ``graph_iri`` is None) on a SPARQL 1.1 graph
    store with the N-Triples file ``nt_path``; return a summary (triples, bytes, seconds, ...).

    Raises RemoteError when the store cannot be reached, says no, or does not answer in time.
    """
    check_url(store_url, "graph store", "http://localhost:7878/store")
    if graph_iri is not None and not _IRI.match(graph_iri):
        raise RemoteError(f"{graph_iri!r}: the graph IRI must be an absolute IRI, "
                          "e.g. https://example.org/graph/ecosystem")
    if not nt_path.is_file():
        raise QueryError(f"{nt_path}: missing; run `ekg build` first")
    triples, size = count_triples(nt_path)
    target = store_target(store_url, graph_iri)
    hint = ""
    if re.search(r"/(query|sparql|update)/?$", store_url):
        hint = (" (is this the query endpoint? push needs the graph store URL, "
                "e.g. http://host:7878/store or http://host:3030/ds/data)")
    t0 = time.perf_counter()
    with nt_path.open("rb") as body:
        status, _ = send(target, body, {"Content-Type": "application/n-triples",
                                        "Content-Length": str(size)}, "PUT", timeout,
                         hint_on=(400, 404, 405), hint=hint)
    seconds = time.perf_counter() - t0
    return {"store": store_url, "graph": graph_iri, "target": target, "triples": triples,
            "bytes": size, "seconds": round(seconds, 3), "status": status}


# ---------------------------------------------------------------------------------------------
# serve
# ---------------------------------------------------------------------------------------------


def find_oxigraph() -> str | None:
    """The ``oxigraph`` executable: beside this Python (a virtualenv's bin/), else on PATH."""
    import shutil
    import sys

    here = Path(sys.executable).parent
    for name in ("oxigraph", "oxigraph.exe"):
        p = here / name
        if p.is_file():
            return str(p)
    return shutil.which("oxigraph")


def _oxigraph() -> str:
    exe = find_oxigraph()
    if exe is None:
        raise EkgError(f"the oxigraph executable was not found; {INSTALL_HINT}")
    return exe


def load_store(location: Path, files: list[Path]) -> Path:
    """Create a fresh Oxigraph store folder at ``location`` holding ``files`` (N-Triples or
    Turtle) in its default graph. An existing store made by ekg there is replaced; any other
    non-empty folder is refused."""
    import shutil
    import subprocess

    exe = _oxigraph()
    if location.exists():
        if location.is_dir() and ((location / STORE_MARKER).is_file()
                                  or not any(location.iterdir())):
            shutil.rmtree(location)
        else:
            raise EkgError(f"{location}: exists and is not a store ekg made; move it away")
    location.mkdir(parents=True)
    (location / STORE_MARKER).write_text("made by `ekg serve`; rebuilt at each start\n",
                                         encoding="utf-8")
    r = subprocess.run([exe, "load", "--location", str(location),
                        "--file", *[str(f) for f in files]],
                       capture_output=True, text=True, check=False)
    if r.returncode != 0:
        last = (r.stderr.strip() or r.stdout.strip()).splitlines()[-1:] or ["no message"]
        raise EkgError(f"oxigraph load failed (exit {r.returncode}): {last[0][:300]}")
    return location


def _listening(host: str, port: int) -> bool:
    import socket

    probe = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    try:
        with socket.create_connection((probe, port), timeout=0.5):
            return True
    except OSError:
        return False


def _wait_listening(proc: Any, host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if _listening(host, port):
            return proc.poll() is None
        time.sleep(0.05)
    return proc.poll() is None


def serve(location: Path, host: str = "127.0.0.1", port: int = 7878, *,
          ready: Callable[[str], None] | None = None) -> int:
    """Run ``oxigraph serve-read-only`` over ``location`` until it stops or this process is
    interrupted (Ctrl-C or SIGTERM, which stop the server too); return its exit code.

    ``ready`` is called with the query URL once the server accepts connections.
    """
    import signal
    import subprocess

    exe = _oxigraph()
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if _listening(host, port):
        raise EkgError(f"{bind}: something is already listening there; choose another --port")
    proc = subprocess.Popen([exe, "serve-read-only", "--location", str(location),
                             "--bind", bind])

    def _stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        old = signal.signal(signal.SIGTERM, _stop)
    except ValueError:  # not the main thread: leave signals alone
        old = None
    try:
        if _wait_listening(proc, host, port, timeout=30.0):
            if ready is not None:
                ready(f"http://{bind}/query")
        else:
            code = proc.wait()
            raise EkgError(f"oxigraph serve-read-only on {bind} exited (code {code}) "
                           "before accepting connections; is the port in use?")
        return int(proc.wait())
    except KeyboardInterrupt:
        return 0
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
