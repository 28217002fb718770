"""The `ekg` command line: parse arguments, call one library function, format, map errors.

Only typer is imported at start-up; each command imports what it needs, so a query does not
pay for rdflib, networkx or pyvis.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from . import __version__
from .errors import EkgError, ValidationFailed

app = typer.Typer(
    name="ekg",
    help="ecosystem-kg: build and query a knowledge graph of the AI-chip and compute ecosystem.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

GraphOpt = Annotated[Path, typer.Option("--graph", "-g", help="Folder of YAML entity files.")]
OutOpt = Annotated[Path, typer.Option("--out", help="Folder of compiled outputs.")]
OntoOpt = Annotated[Path | None, typer.Option("--ontology", help="Ontology folder (default: "
                                              "ontology/ beside the graph, else the bundled one).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print exactly one JSON document.")]
AsOfOpt = Annotated[str | None, typer.Option("--as-of", help="The graph as it stood on this date "
                                             "(YYYY, YYYY-MM or YYYY-MM-DD).")]
DEFAULT_GRAPH = Path("graph")
DEFAULT_OUT = Path("build")


def _err(msg: str) -> None:
    typer.echo(msg, err=True)


def _fail(exc: EkgError) -> NoReturn:
    if isinstance(exc, ValidationFailed):
        _err(exc.report())
    else:
        _err(f"Error: {exc}")
    raise typer.Exit(exc.exit_code)


def _usage(msg: str) -> NoReturn:
    _err(f"Usage error: {msg}")
    raise typer.Exit(2)


def _emit(data: Any, as_json: bool, human: Any) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    else:
        text = human(data)
        if text:
            sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ekg {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """ecosystem-kg: build and query a knowledge graph of the AI-chip and compute ecosystem."""


def _index(graph: Path, out: Path, ontology: Path | None) -> Any:
    from .query import open_index

    return open_index(graph, out, ontology, notify=_err)


def _check_date(value: str | None, opt: str) -> None:
    if value is None:
        return
    from .dates import check_date

    msg = check_date(value)
    if msg:
        _usage(f"{opt}: {msg}")


# ---------------------------------------------------------------------------------------------
# build and check
# ---------------------------------------------------------------------------------------------


@app.command()
def build(
    graph: GraphOpt = DEFAULT_GRAPH,
    out: OutOpt = DEFAULT_OUT,
    ontology: OntoOpt = None,
    no_html: Annotated[bool, typer.Option("--no-html", help="Skip the HTML map.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Validate the YAML files and write RDF, GraphML, the query index and the HTML map."""
    from .pipeline import build as run_build

    try:
        rep = run_build(graph, out, ontology, html=not no_html, keep=_KEPT)
    except EkgError as exc:
        _fail(exc)
    _KEPT.append(rep)  # (and pypinyin's tables, sqlite's, ...: a tenth of a second to free)
    if rep.map_skipped:
        _err(f"note: no ecosystem.html: {rep.map_skipped}")
    data = {
        "out": str(rep.out_dir), "entities": rep.entities, "by_type": rep.by_type,
        "relations": rep.relations, "attribute_facts": rep.facts, "sources": rep.sources,
        "triples": rep.triples, "seconds": round(rep.seconds, 3), "files": rep.files,
        "data_date": rep.data_date, "map_skipped": rep.map_skipped,
    }

    def human(d: dict[str, Any]) -> str:
        lines = [f"Built {d['out']}/ in {d['seconds']:.2f} s",
                 f"  entities   {d['entities']:>7,}", f"  relations  {d['relations']:>7,}",
                 f"  attributes {d['attribute_facts']:>7,}", f"  sources    {d['sources']:>7,}",
                 f"  triples    {d['triples']:>7,}", f"  data as of {d['data_date'] or '-'}",
                 "  by type:"]
        lines += [f"    {t:<24} {n:>6,}" for t, n in sorted(d["by_type"].items(),
                                                            key=lambda kv: (-kv[1], kv[0]))]
        lines.append("  files: " + ", ".join(f"{k} ({v / 1024:.0f} KiB)"
                                             for k, v in sorted(d["files"].items())))
        return "\n".join(lines)

    _emit(data, as_json, human)


@app.command()
def check(
    graph: GraphOpt = DEFAULT_GRAPH,
    ontology: OntoOpt = None,
    shacl: Annotated[bool, typer.Option(
        "--shacl", help="Also validate against the SHACL shapes in ontology/shapes.ttl "
        "(needs pyshacl: pip install 'ecosystem-kg[shacl]').")] = False,
) -> None:
    """Validate the YAML files only; print every problem as file:line:col: message."""
    from .pipeline import check as run_check

    try:
        loaded = run_check(graph, ontology)
        if shacl:
            from .ontology import resolve_ontology_dir
            from .shacl import run_shacl

            run_shacl(loaded, resolve_ontology_dir(graph, ontology))
    except EkgError as exc:
        _fail(exc)
    n = sum(1 for e in loaded.entities if not e.is_source)
    typer.echo(f"OK: {loaded.files} files, {n} entities, "
               f"{sum(len(e.relations) for e in loaded.entities)} relations"
               + (" (SHACL: conforms)" if shacl else ""))


# ---------------------------------------------------------------------------------------------
# queries
# ---------------------------------------------------------------------------------------------


@app.command()
def find(
    text: Annotated[str, typer.Argument(help="Name in Chinese or English, alias, id or pinyin.")],
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many results.")] = 10,
    graph: GraphOpt = DEFAULT_GRAPH, out: OutOpt = DEFAULT_OUT, ontology: OntoOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Find entities by name, alias, id or pinyin, best match first."""
    from .render_text import table

    try:
        rows = _index(graph, out, ontology).find(text, limit=limit)
    except EkgError as exc:
        _fail(exc)
    _emit(rows, as_json, lambda r: table(r, ["id", "type", "name.zh", "name.en", "score"])
          if r else "no match")
    if not rows:
        raise typer.Exit(1)


@app.command()
def show(
    entity: Annotated[str, typer.Argument(help="Id, name, alias or pinyin.")],
    graph: GraphOpt = DEFAULT_GRAPH, out: OutOpt = DEFAULT_OUT, ontology: OntoOpt = None,
    as_of: AsOfOpt = None, as_json: JsonOpt = False,
) -> None:
    """Everything the graph says about one entity, with sources."""
    from .render_text import show_text

    _check_date(as_of, "--as-of")
    try:
        data = _index(graph, out, ontology).show(entity, as_of=as_of)
    except EkgError as exc:
        _fail(exc)
    _emit(data, as_json, show_text)


@app.command()
def neighbors(
    entity: Annotated[str, typer.Argument(help="Id, name, alias or pinyin.")],
    hops: Annotated[int, typer.Option("--hops", min=1, max=6, help="How far to go.")] = 1,
    rel: Annotated[list[str] | None, typer.Option("--rel", help="Only these relations.")] = None,
    type_: Annotated[list[str] | None, typer.Option("--type", help="Only neighbours of these "
                                                    "types (subclasses included).")] = None,
    direction: Annotated[str, typer.Option("--direction", help="in, out or both.")] = "both",
    graph: GraphOpt = DEFAULT_GRAPH, out: OutOpt = DEFAULT_OUT, ontology: OntoOpt = None,
    as_of: AsOfOpt = None, as_json: JsonOpt = False,
) -> None:
    """Entities linked to ENTITY, within N hops."""
    from .render_text import table

    if direction not in ("in", "out", "both"):
        _usage("--direction must be in, out or both")
    _check_date(as_of, "--as-of")
    try:
        rows = _index(graph, out, ontology).neighbors(
            entity, hops=hops, rels=rel or None, types=type_ or None, direction=direction,
            as_of=as_of)
    except EkgError as exc:
        _fail(exc)
    _emit(rows, as_json, lambda r: table(r, ["hops", "direction", "rel", "id", "type",
                                             "name.zh", "name.en"]) if r else "no neighbours")


@app.command()
def path(
    a: Annotated[str, typer.Argument(help="From this entity.")],
    b: Annotated[str, typer.Argument(help="To this entity.")],
    max_hops: Annotated[int, typer.Option("--max-hops", min=1, max=12)] = 6,
    all_: Annotated[bool, typer.Option("--all", help="All shortest paths, not just one.")] = False,
    graph: GraphOpt = DEFAULT_GRAPH, out: OutOpt = DEFAULT_OUT, ontology: OntoOpt = None,
    as_of: AsOfOpt = None, as_json: JsonOpt = False,
) -> None:
    """Shortest path(s) between two entities, relations shown in their true direction."""
    from .render_text import path_text

    _check_date(as_of, "--as-of")
    try:
        data = _index(graph, out, ontology).path(a, b, max_hops=max_hops, all_paths=all_,
                                                 as_of=as_of)
    except EkgError as exc:
        _fail(exc)
    _emit(data, as_json, path_text)
    if not data["found"]:
        raise typer.Exit(1)


@app.command("list")
def list_(
    type_: Annotated[str, typer.Argument(metavar="TYPE", help="Ontology class (subclasses "
                                         "included), e.g. Company, GPUMaker, Policy.")],
    where: Annotated[list[str] | None, typer.Option("--where", help="FIELD=VALUE: an attribute, "
                     "or a relation to an entity (located_in=lingang).")] = None,
    graph: GraphOpt = DEFAULT_GRAPH, out: OutOpt = DEFAULT_OUT, ontology: OntoOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the entities of a type."""
    from .render_text import table

    conds = []
    for w in where or []:
        if "=" not in w:
            _usage(f"--where {w!r}: write FIELD=VALUE")
        k, v = w.split("=", 1)
        conds.append((k.strip(), v.strip()))
    try:
        rows = _index(graph, out, ontology).list_entities(type_, where=conds)
    except EkgError as exc:
        _fail(exc)
    _emit(rows, as_json, lambda r: table(r, ["id", "type", "name.zh", "name.en"])
          if r else "none")


@app.command()
def stats(
    graph: GraphOpt = DEFAULT_GRAPH, out: OutOpt = DEFAULT_OUT, ontology: OntoOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Counts: entities by type, relations by kind, sources, dates."""
    from .render_text import stats_text

    try:
        data = _index(graph, out, ontology).stats()
    except EkgError as exc:
        _fail(exc)
    _emit(data, as_json, stats_text)


@app.command()
def rank(
    by: Annotated[str, typer.Option("--by", help="degree, pagerank or betweenness.")] = "degree",
    type_: Annotated[list[str] | None, typer.Option("--type", help="Only these types.")] = None,
    top: Annotated[int, typer.Option("--top", min=1)] = 10,
    graph: GraphOpt = DEFAULT_GRAPH, out: OutOpt = DEFAULT_OUT, ontology: OntoOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Who the hubs are: entities ranked by degree, PageRank or betweenness."""
    from .render_text import table

    if by not in ("degree", "pagerank", "betweenness"):
        _usage("--by must be degree, pagerank or betweenness")
    try:
        rows = _index(graph, out, ontology).rank(by=by, types=type_ or None, top=top)
    except EkgError as exc:
        _fail(exc)
    _emit(rows, as_json, lambda r: table(r, ["rank", "score", "id", "type", "name.zh",
                                             "name.en"]))


@app.command()
def timeline(
    from_: Annotated[str | None, typer.Option("--from", help="Start date.")] = None,
    to: Annotated[str | None, typer.Option("--to", help="End date.")] = None,
    entity: Annotated[str | None, typer.Option("--entity", help="Only statements about this "
                                               "entity.")] = None,
    rel: Annotated[list[str] | None, typer.Option(
        "--rel", help="Only these relations or attributes (repeatable), e.g. listed_on.")] = None,
    type_: Annotated[list[str] | None, typer.Option(
        "--type", help="Only statements whose subject or object is of this type "
        "(subclasses included; repeatable).")] = None,
    graph: GraphOpt = DEFAULT_GRAPH, out: OutOpt = DEFAULT_OUT, ontology: OntoOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Dated statements in order: listings, policies, investments, launches."""
    from .render_text import timeline_text

    _check_date(from_, "--from")
    _check_date(to, "--to")
    try:
        rows = _index(graph, out, ontology).timeline(start=from_, end=to, entity=entity,
                                                     rels=rel or None, types=type_ or None)
    except EkgError as exc:
        _fail(exc)
    _emit(rows, as_json, lambda r: timeline_text(r) if r else "no dated statements")


@app.command()
def sparql(
    query: Annotated[str | None, typer.Argument(help="The SPARQL query text.")] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="Read the query from a "
                                              ".rq file.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="json, csv, tsv or table.")] = "table",
    endpoint: Annotated[str | None, typer.Option("--endpoint", help="Run against a remote "
                        "SPARQL 1.1 endpoint URL instead of the local graph.")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for a remote "
                                           "endpoint.")] = 30.0,
    graph: GraphOpt = DEFAULT_GRAPH, out: OutOpt = DEFAULT_OUT, ontology: OntoOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a read-only SPARQL query (SELECT, ASK, CONSTRUCT, DESCRIBE) over the graph."""
    from .sparql import run_query

    if (query is None) == (file is None):
        _usage("give the query as an argument or with --file, not both")
    if as_json:
        fmt = "json"
    if fmt not in ("json", "csv", "tsv", "table"):
        _usage("--format must be json, csv, tsv or table")
    if file is not None:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            _err(f"Error: {file}: cannot read the query: {exc}")
            raise typer.Exit(1) from None
    else:
        text = query or ""
    try:
        result = run_query(text, fmt=fmt, graph=graph, out=out, ontology=ontology,
                           endpoint=endpoint, timeout=timeout, notify=_err)
    except EkgError as exc:
        _fail(exc)
    sys.stdout.write(result if result.endswith("\n") else result + "\n")


@app.command()
def push(
    store: Annotated[str, typer.Option("--store", help="SPARQL 1.1 graph store URL, e.g. "
                     "http://host:7878/store (Oxigraph) or http://host:3030/ds/data (Fuseki).")],
    graph_iri: Annotated[str | None, typer.Option("--graph-iri", help="Replace this named "
                         "graph (default: the store's default graph).")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the "
                                           "store.")] = 30.0,
    graph: GraphOpt = DEFAULT_GRAPH, out: OutOpt = DEFAULT_OUT, ontology: OntoOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Replace a graph on a SPARQL server with the compiled graph (HTTP PUT of N-Triples)."""
    from .query import ensure_built
    from .remote import push as run_push

    try:
        ensure_built(graph, out, ontology, _err)
        data = run_push(out / "ecosystem.nt", store, graph_iri, timeout=timeout)
    except EkgError as exc:
        _fail(exc)
    _emit(data, as_json, lambda d: (
        f"pushed {d['triples']:,} triples ({d['bytes'] / 1024:,.0f} KiB) to "
        + (f"<{d['graph']}>" if d["graph"] else "the default graph")
        + f" at {d['store']} in {d['seconds']:.2f} s"))


def _serving(url: str) -> None:
    typer.echo(f"SPARQL endpoint: {url}")
    _err(f"read-only; Ctrl-C stops it. Try: ekg sparql --endpoint {url} "
         "'SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }'")


@app.command()
def serve(
    port: Annotated[int, typer.Option("--port", "-p", min=1, max=65535,
                                      help="Port to listen on.")] = 7878,
    host: Annotated[str, typer.Option("--host", help="Address to listen on (0.0.0.0: every "
                                      "interface).")] = "127.0.0.1",
    graph: GraphOpt = DEFAULT_GRAPH, out: OutOpt = DEFAULT_OUT, ontology: OntoOpt = None,
) -> None:
    """Serve the compiled graph (and the ontology) read-only over SPARQL with Oxigraph."""
    from .ontology import ontology_files, resolve_ontology_dir
    from .query import ensure_built
    from .remote import load_store
    from .remote import serve as run_serve

    try:
        ensure_built(graph, out, ontology, _err)
        onto_dir = resolve_ontology_dir(graph, ontology) if graph.is_dir() else None
        files = [out / "ecosystem.nt", *(ontology_files(onto_dir) if onto_dir else [])]
        location = load_store(out / "oxigraph", files)
        code = run_serve(location, host, port, ready=_serving)
    except EkgError as exc:
        _fail(exc)
    if code:
        _err(f"Error: the oxigraph server stopped with exit code {code}")
        raise typer.Exit(1)


@app.command()
def export(
    fmt: Annotated[str, typer.Option("--format", help="ttl, nt, jsonld, graphml or csv.")] = "ttl",
    output: Annotated[Path | None, typer.Option("-o", "--output", help="File (or folder for "
                                                "csv); default: standard output.")] = None,
    graph: GraphOpt = DEFAULT_GRAPH, out: OutOpt = DEFAULT_OUT, ontology: OntoOpt = None,
    as_of: AsOfOpt = None,
) -> None:
    """Export the graph (optionally as of a date) as Turtle, N-Triples, JSON-LD, GraphML or CSV."""
    from .export import export as run_export

    if fmt not in ("ttl", "nt", "jsonld", "graphml", "csv"):
        _usage("--format must be ttl, nt, jsonld, graphml or csv")
    if fmt == "csv" and output is None:
        _usage("csv writes nodes.csv and edges.csv: give -o FOLDER")
    _check_date(as_of, "--as-of")
    try:
        written = run_export(fmt, output, graph=graph, out=out, ontology=ontology, as_of=as_of,
                             notify=_err)
    except EkgError as exc:
        _fail(exc)
    if output is None:
        sys.stdout.write(written)
    else:
        _err(f"wrote {written}")


@app.command()
def render(
    entity: Annotated[str | None, typer.Argument(help="Centre the map on this entity.")] = None,
    hops: Annotated[int, typer.Option("--hops", min=1, max=6)] = 2,
    type_: Annotated[list[str] | None, typer.Option("--type", help="Only these types.")] = None,
    rel: Annotated[list[str] | None, typer.Option("--rel", help="Only these relations.")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="HTML file to write.")]
    = None,
    open_: Annotated[bool, typer.Option("--open", help="Open it in the browser.")] = False,
    graph: GraphOpt = DEFAULT_GRAPH, out: OutOpt = DEFAULT_OUT, ontology: OntoOpt = None,
    as_of: AsOfOpt = None,
) -> None:
    """Write an interactive HTML map of the graph or of one entity's neighbourhood."""
    from .render import render_file

    _check_date(as_of, "--as-of")
    try:
        path_ = render_file(graph=graph, out=out, ontology=ontology, entity=entity, hops=hops,
                            types=type_ or None, rels=rel or None, as_of=as_of, output=output,
                            notify=_err)
    except EkgError as exc:
        _fail(exc)
    _err(f"wrote {path_}")
    if open_:
        import webbrowser

        webbrowser.open(path_.resolve().as_uri())


@app.command()
def synth(
    entities: Annotated[int, typer.Option("--entities", "-n", min=1,
                                          help="How many entities to generate.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Graph folder to write (created).")],
    seed: Annotated[int, typer.Option("--seed", help="Random seed; same seed, same files.")] = 0,
    force: Annotated[bool, typer.Option("--force", help="Write into a non-empty folder.")]
    = False,
) -> None:
    """Write a synthetic graph folder (for benchmarks): realistic types, hubs, dated relations."""
    from .synth import synth as run_synth

    if out_dir.exists() and not out_dir.is_dir():
        _usage(f"--out {out_dir}: not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        _fail(EkgError(f"{out_dir}: folder is not empty; choose an empty or new folder, "
                       "or pass --force to write into it"))
    try:
        run_synth(entities, out_dir, seed=seed)
    except OSError as exc:
        _fail(EkgError(f"{out_dir}: cannot write: {exc.strerror or exc}"))
    _err(f"wrote {entities} entities to {out_dir}")


def _command_name(info: Any) -> str:
    return str(info.name or info.callback.__name__.strip("_").replace("_", "-"))


# What a command leaves to free at exit: the console entry point exits without freeing it
_KEPT: list[Any] = []


def main() -> None:
    """Console entry point: runs the command, then exits at once (see :func:`_main`)."""
    try:
        _main()
    except SystemExit as exc:
        if not _KEPT:
            raise
        code = exc.code
    else:
        if not _KEPT:
            return
        code = 0
    # A build leaves millions of small objects: freeing them one by one at exit takes ~5% of
    # a large build. Everything is written and closed; flush what is printed and leave.
    if not isinstance(code, int):
        if code is not None:
            print(code, file=sys.stderr)
        code = 0 if code is None else 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _main() -> None:
    """Run one command.

    ``ekg COMMAND ...`` builds a one-command app for COMMAND only, so a query does not pay for
    turning every other command's signature into click options at each start (about 10 ms).
    ``ekg``, ``ekg --help`` and ``ekg --version`` use the full app.
    """
    argv = sys.argv[1:]
    try:
        if argv and not argv[0].startswith("-"):
            for info in app.registered_commands:
                if _command_name(info) == argv[0]:
                    one = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                                      rich_markup_mode=None)
                    one.registered_commands.append(info)
                    one(args=argv[1:], prog_name=f"ekg {argv[0]}")
                    return
        app()
    except KeyboardInterrupt:  # pragma: no cover - interactive
        _err("interrupted")
        sys.exit(130)
