"""Read-only SPARQL over the compiled graph, with pyoxigraph.

pyoxigraph (Oxigraph's Rust engine) answers SPARQL about a hundred times faster than rdflib's
pure-Python engine on this data and loads N-Triples at about a million triples a second, so a
query loads ``ecosystem.nt`` plus the ontology into an in-memory store and runs there.

The sandbox: before anything runs, the query text is scanned token by token (strings, IRIs and
comments skipped) and refused when it is an update (INSERT, DELETE, LOAD, CLEAR, ...), calls
SERVICE, or reads a graph with FROM / FROM NAMED: Oxigraph would fetch SERVICE and remote
graphs over HTTP. Nothing in a local query opens a socket or a file.
"""

from __future__ import annotations

import csv
import gc
import hashlib
import io
import json
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import QueryError, RemoteError, SparqlRefused

UPDATE_WORDS = {"INSERT", "DELETE", "LOAD", "CLEAR", "DROP", "CREATE", "ADD", "MOVE", "COPY",
                "WITH"}
_TOKEN = re.compile(
    r'''(?P<comment>\#[^\n]*)
      | (?P<string>"""(?:[^"\\]|\\.|"(?!""))*"""|\'\'\'(?:[^'\\]|\\.|'(?!''))*\'\'\'
                  |"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
      | (?P<iri><[^<>"{}|^`\\\s]*>)
      | (?P<word>[A-Za-z_][A-Za-z0-9_-]*)
      | (?P<other>\S)''', re.VERBOSE)


def check_query(text: str) -> str:
    """Refuse what the sandbox forbids; return the query form (SELECT, ASK, ...)."""
    if not text.strip():
        raise SparqlRefused("empty SPARQL query")
    form = None
    for m in _TOKEN.finditer(text):
        if m.lastgroup != "word":
            continue
        start, end = m.start(), m.end()
        if start > 0 and text[start - 1] in ":?$":  # local part of a prefixed name, a variable
            continue
        if end < len(text) and text[end] == ":":  # a prefix such as service:
            continue
        w = m.group().upper()
        if w == "SERVICE":
            raise SparqlRefused("SERVICE is refused: queries run over the local graph only and "
                                "never open a connection (use --endpoint to query a server)")
        if w in UPDATE_WORDS:
            raise SparqlRefused(f"{w} is refused: the graph is read-only here (edit the YAML "
                                "files and run `ekg build` instead)")
        if w == "FROM":
            raise SparqlRefused("FROM / FROM NAMED is refused: the query runs over the compiled "
                                "graph only, and a graph named by IRI would be fetched remotely")
        if form is None and w in ("SELECT", "ASK", "CONSTRUCT", "DESCRIBE"):
            form = w
    if form is None:
        raise SparqlRefused("not a SPARQL query: expected SELECT, ASK, CONSTRUCT or DESCRIBE")
    return form


def default_prefixes() -> dict[str, str]:
    """Prefixes every query may use without declaring them (``:`` is the entity namespace):
    ekg, rdf, rdfs, xsd, skos, schema, prov, dct, wd, stmt, as in the Turtle output."""
    from .compile import PREFIXES

    return dict(PREFIXES)


def with_prologue(text: str) -> str:
    """The query with the default prefixes declared first, for endpoints that do not know them
    (a later PREFIX in the query itself overrides these)."""
    lines = [f"PREFIX {p}: <{iri}>" for p, iri in sorted(default_prefixes().items())]
    return "\n".join(lines) + "\n" + text


def _short_syntax_error(msg: str) -> str:
    """Oxigraph lists every character class it expected; keep the position and the point."""
    head, sep, rest = msg.partition(" expected one of")
    if not sep:
        return msg
    head = head.rstrip(": ")
    if "Prefix not found" in rest:
        return (f"{head}: undeclared prefix; declare it with PREFIX (predeclared: "
                + ", ".join(f"{p}:" for p in sorted(default_prefixes())) + ")")
    return f"{head}: unexpected text here"


def _store(out: Path, onto_files: list[Path]) -> Any:
    """A pyoxigraph store over the build and the ontology.

    The first query after a build loads the N-Triples into an on-disk store kept beside the
    build (``OUT/.sparql/``, keyed by the inputs' sizes and times); later queries open it
    read-only, which costs the same whatever the graph's size. Where the output folder cannot
    be written, the store is loaded in memory.
    """
    import pyoxigraph as ox

    nt = out / "ecosystem.nt"
    if not nt.is_file():
        raise QueryError(f"{nt}: missing; run `ekg build` first")
    sources = [nt, *onto_files]
    try:
        key = hashlib.sha1("\n".join(
            f"{p.resolve()} {st.st_size} {st.st_mtime_ns}"
            for p in sources for st in [p.stat()]).encode()).hexdigest()[:16]
    except OSError as exc:
        raise QueryError(f"{exc.filename}: cannot read: {exc.strerror}") from None
    cache = out / ".sparql"
    ready = cache / key
    if ready.is_dir():
        try:
            return ox.Store.read_only(str(ready))
        except OSError:
            pass
    try:
        cache.mkdir(exist_ok=True)
        for old in cache.iterdir():  # stores of earlier builds
            if old.name != key:
                shutil.rmtree(old, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{key}.tmp-", dir=cache))
    except OSError:
        return _load(ox.Store(), nt, onto_files)
    try:
        store = _load(ox.Store(str(tmp)), nt, onto_files)
        store.flush()
        del store
        gc.collect()  # closes the writable store before it is opened read-only
        try:
            tmp.rename(ready)
        except OSError:  # another process made it first
            shutil.rmtree(tmp, ignore_errors=True)
        return ox.Store.read_only(str(ready))
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        return _load(ox.Store(), nt, onto_files)


def _load(store: Any, nt: Path, onto_files: list[Path]) -> Any:
    import pyoxigraph as ox

    store.bulk_load(path=str(nt), format=ox.RdfFormat.N_TRIPLES)
    for f in onto_files:
        store.bulk_load(path=str(f), format=ox.RdfFormat.TURTLE)
    return store


def run_query(text: str, *, fmt: str = "table", graph: Path, out: Path,
              ontology: Path | None = None, endpoint: str | None = None, timeout: float = 30.0,
              notify: Callable[[str], None] | None = None) -> str:
    """Run a query and return its results serialised as ``fmt`` (json, csv, tsv, table)."""
    form = check_query(text)
    if endpoint is not None:
        return _remote(with_prologue(text), form, endpoint, fmt, timeout)
    import pyoxigraph as ox

    from .ontology import ontology_files, resolve_ontology_dir
    from .query import ensure_built

    ensure_built(graph, out, ontology, notify)
    onto_dir = resolve_ontology_dir(graph, ontology) if graph.is_dir() else None
    store = _store(out, ontology_files(onto_dir) if onto_dir else [])
    try:
        result = store.query(text, prefixes=default_prefixes())
    except SyntaxError as exc:
        raise QueryError(f"SPARQL syntax error: {_short_syntax_error(str(exc))}") from None
    except (OSError, ValueError, RuntimeError) as exc:
        raise QueryError(f"SPARQL query failed: {exc}") from None
    if isinstance(result, ox.QueryBoolean):
        return _format_boolean(bool(result), fmt)
    if isinstance(result, ox.QueryTriples):
        return bytes(result.serialize(format=ox.RdfFormat.N_TRIPLES) or b"").decode("utf-8")
    doc: dict[str, Any] = json.loads(bytes(result.serialize(format=ox.QueryResultsFormat.JSON)
                                           or b"{}"))
    return format_results(doc, fmt)


def _format_boolean(value: bool, fmt: str) -> str:
    if fmt == "json":
        return json.dumps({"head": {}, "boolean": value})
    return "true" if value else "false"


def _cell(b: dict[str, Any] | None, *, rich: bool) -> str:
    if b is None:
        return ""
    v = str(b.get("value", ""))
    if not rich:
        return v
    if b.get("type") == "uri":
        return f"<{v}>"
    if "xml:lang" in b:
        return f"{v}@{b['xml:lang']}"
    return v


def format_results(doc: dict[str, Any], fmt: str) -> str:
    """SPARQL 1.1 JSON results -> json, csv, tsv or a table."""
    if "boolean" in doc:
        return _format_boolean(bool(doc["boolean"]), fmt)
    if fmt == "json":
        return json.dumps(doc, ensure_ascii=False, indent=1)
    vars_ = doc["head"]["vars"]
    rows = doc["results"]["bindings"]
    if fmt in ("csv", "tsv"):
        buf = io.StringIO()
        w = csv.writer(buf, delimiter="," if fmt == "csv" else "\t", lineterminator="\n")
        w.writerow(vars_)
        for r in rows:
            w.writerow([_csv_safe(_cell(r.get(v), rich=fmt == "tsv")) for v in vars_])
        return buf.getvalue()
    from .render_text import table

    short = _compact_iri(default_prefixes())
    data = [{v: short(_cell(r.get(v), rich=False)) if (r.get(v) or {}).get("type") == "uri"
             else _cell(r.get(v), rich=False) for v in vars_} for r in rows]
    return table(data, vars_) + f"\n{len(rows)} row(s)"


def _compact_iri(prefixes: dict[str, str]) -> Callable[[str], str]:
    """IRI -> prefixed name for the table view (``:metax``, ``ekg:GPUMaker``), longest
    namespace first; IRIs outside the known namespaces stay whole."""
    spaces = sorted(prefixes.items(), key=lambda kv: -len(kv[1]))

    def short(iri: str) -> str:
        for p, ns in spaces:
            local = iri[len(ns):]
            if iri.startswith(ns) and re.fullmatch(r"[\w.-]*", local) and "/" not in local:
                return f"{p}:{local}"
        return iri

    return short


def _csv_safe(value: str) -> str:
    """Neutralise spreadsheet formulas: a cell starting with = + - @ gets a leading quote."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _remote(text: str, form: str, endpoint: str, fmt: str, timeout: float) -> str:
    import urllib.parse

    from .remote import check_url, send

    check_url(endpoint, "endpoint", "http://localhost:7878/query")
    accept = ("application/n-triples" if form in ("CONSTRUCT", "DESCRIBE")
              else "application/sparql-results+json")
    _, raw = send(endpoint, urllib.parse.urlencode({"query": text}).encode(),
                  {"Content-Type": "application/x-www-form-urlencoded", "Accept": accept},
                  "POST", timeout)
    body = raw.decode("utf-8", "replace")
    if form in ("CONSTRUCT", "DESCRIBE"):
        return body
    try:
        doc: dict[str, Any] = json.loads(body)
    except ValueError:
        raise RemoteError(f"{endpoint}: the answer is not SPARQL JSON results") from None
    return format_results(doc, fmt)
