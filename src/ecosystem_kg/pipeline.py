"""The build: load -> validate -> compile -> write every output atomically.

Outputs go to a fresh sibling folder first; only when every file is written does it replace the
output folder (two renames). A failed or killed build leaves the previous build as it was; the
next build clears any leftovers. The output folder is ekg's own: it holds a ``.ekg-build``
marker, and a non-empty folder without one is never replaced.
"""

from __future__ import annotations

import gc
import json
import os
import pickle
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .compile import Compiled, compile_entities, to_graphml, to_jsonld, to_ntriples, to_turtle
from .dates import latest
from .errors import BuildError, Problem, SourceLocation, ValidationFailed
from .load import (
    SOURCE_TYPE,
    Entity,
    Tally,
    display_paths,
    entity_dates,
    entity_file_names,
    entity_files,
    latest_source_date,
    tally,
)
from .ontology import Ontology, load_ontology, resolve_ontology_dir
from .validate import acyclic_links, validate, validate_changed, validate_links

if TYPE_CHECKING:
    from .render import MapData

MARKER = ".ekg-build"
OUTPUTS = ("ecosystem.ttl", "ecosystem.nt", "ecosystem.jsonld", "ecosystem.graphml",
           "index.sqlite", "ecosystem.html", "summary.json")


@dataclass
class Loaded:
    entities: list[Entity]
    ontology: Ontology
    files: int
    problems: list[Problem] = field(default_factory=list)


@dataclass
class BuildReport:
    out_dir: Path
    entities: int
    by_type: dict[str, int]
    relations: int
    facts: int
    triples: int
    sources: int
    seconds: float
    files: dict[str, int]  # output name -> bytes
    data_date: str | None
    map_skipped: str | None = None  # why no ecosystem.html was written, when html was asked


MAP_LIMIT = 20_000  # entity files; past this a whole-graph page is too big for a browser


def map_limit() -> int:
    """Most entity files for which ``ekg build`` writes the whole-graph map (EKG_MAP_LIMIT)."""
    try:
        return int(os.environ.get("EKG_MAP_LIMIT", MAP_LIMIT))
    except ValueError:
        return MAP_LIMIT


def load_graph(graph_dir: Path, ontology_dir: Path | None = None, *,
               cache_dir: Path | None = None) -> Loaded:
    """Load and validate every entity file; problems are collected, not raised."""
    if not graph_dir.is_dir():
        raise BuildError(f"{graph_dir}: no such graph folder; pass --graph DIR (a folder of "
                         "YAML entity files)")
    from .incremental import parse_files

    onto = load_ontology(resolve_ontology_dir(graph_dir, ontology_dir), cache_dir)
    paths, rels, problems = entity_files(graph_dir)
    _check_graph_root(graph_dir, rels, onto)
    entities: list[Entity] = []
    rel_paths: dict[str, str] = {}
    shown = display_paths(graph_dir, rels)
    gc_was_on = gc.isenabled()
    gc.disable()  # see build()
    try:
        for rel, name, (ent, probs) in zip(rels, shown, parse_files(paths, shown), strict=True):
            problems.extend(probs)
            if ent is not None:
                entities.append(ent)
                rel_paths[name] = rel
        if not paths and not problems:
            problems.append(Problem(SourceLocation(str(graph_dir)), "no entity files (*.yaml) "
                                    "in the graph folder", "empty"))
        problems.extend(validate(entities, onto, rel_paths))
    finally:
        if gc_was_on:
            gc.enable()
    return Loaded(entities, onto, len(paths), sorted(set(problems)))


def _check_graph_root(graph_dir: Path, rels: list[str], onto: Ontology) -> None:
    """Stop at once, saying which folder to pass, when every entity file lies one folder
    deeper than the ontology's folders (``--graph`` given the folder above the graph: each
    file would otherwise be reported as misplaced)."""
    folders = {c.folder for c in onto.classes.values() if c.folder}
    tops = {rel.partition("/")[0] for rel in rels}
    if not rels or len(tops) != 1 or any("/" not in rel for rel in rels):
        return
    top = tops.pop()
    if top in folders:
        return
    inner = {rel.split("/")[1] for rel in rels if rel.count("/") >= 2}
    if inner & folders:
        graph = graph_dir / top
        raise BuildError(f"{graph_dir}: the entity folders ({', '.join(sorted(inner & folders))}"
                         f") are in {graph}/, not here; pass --graph {graph}")


def check(graph_dir: Path, ontology_dir: Path | None = None) -> Loaded:
    """Validate only. Raises :class:`ValidationFailed` when there are problems."""
    loaded = load_graph(graph_dir, ontology_dir)
    if loaded.problems:
        raise ValidationFailed(loaded.problems)
    return loaded


def compile_graph(graph_dir: Path, ontology_dir: Path | None = None) -> Compiled:
    """Load, validate and compile a graph folder (library entry point)."""
    loaded = check(graph_dir, ontology_dir)
    return compile_entities(loaded.entities, loaded.ontology)


def data_date(compiled: Compiled) -> str | None:
    """The latest date any statement or source carries: how recent the data is."""
    return latest({d for e in compiled.entities for d in entity_dates(e)},
                  latest_source_date(compiled.entities))


def summary(compiled: Compiled) -> dict[str, object]:
    return summary_state(compiled)[0]


def summary_state(compiled: Compiled) -> tuple[dict[str, Any], dict[str, Any]]:
    """:func:`summary`, and what a rebuild needs to bring it up to date after an edit: how
    many entities carry each date, and the latest source date."""
    return summary_of([tally(e) for e in compiled.entities], compiled.n_triples,
                      compiled.ontology)


def summary_of(tallies: list[Tally], triples: int, onto: Ontology
               ) -> tuple[dict[str, Any], dict[str, Any]]:
    """:func:`summary_state` from each entity's :func:`~ecosystem_kg.load.tally` (what a
    build that never holds the entities counts)."""
    dates: Counter[str] = Counter()
    types: Counter[str] = Counter()
    relations = facts = sources = 0
    source_max: str | None = None
    for kind, n_rel, n_facts, when, source_date in tallies:
        if kind == SOURCE_TYPE:
            sources += 1
            if source_date is not None and (source_max is None or source_date > source_max):
                source_max = source_date
            continue
        types[kind] += 1
        relations += n_rel
        facts += n_facts
        dates.update(when)
    summ = {
        "entities": len(tallies) - sources,
        "by_type": dict(sorted(types.items())),
        "relations": relations,
        "facts": facts,
        "sources": sources,
        "triples": triples,
        "data_date": latest(dates, source_max),
        "ontology": onto.fingerprint[:16],
    }
    return _with_state(summ, dates, source_max)


def _with_state(summ: dict[str, Any], dates: Counter[str], source_max: str | None
                ) -> tuple[dict[str, Any], dict[str, Any]]:
    return summ, {"summary": summ, "dates": dict(sorted(dates.items())),
                  "sourceMax": source_max}


def _summary_after(state: dict[str, Any] | None, changes: list[tuple[Entity, Entity]],
                   count: int, onto: Ontology) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The previous build's :func:`summary_state` brought up to date for edited entities, or
    None when the edit changes more than it can follow (a type, a source)."""
    if state is None:
        return None
    try:
        summ: dict[str, Any] = json.loads(json.dumps(state["summary"]))
        dates: Counter[str] = Counter(state["dates"])
        source_max = state["sourceMax"]
    except (TypeError, KeyError, ValueError):
        return None
    if summ.get("ontology") != onto.fingerprint[:16]:
        return None
    for was, now in changes:
        if was.type != now.type or was.is_source or now.is_source:
            return None
        (_, rel_was, facts_was, dates_was, _), (_, rel_now, facts_now, dates_now, _) = (
            tally(was), tally(now))
        summ["relations"] += rel_now - rel_was
        summ["facts"] += facts_now - facts_was
        dates.update(dict.fromkeys(dates_was, -1))
        dates.update(dict.fromkeys(dates_now, 1))
    if any(v < 0 for v in dates.values()):
        return None
    dates = +dates
    summ["triples"] = count
    summ["data_date"] = latest(dates, source_max)
    return _with_state(summ, dates, source_max)


def write_outputs(compiled: Compiled, folder: Path, *, html: bool = True,
                  graph_dir: Path | None = None) -> None:
    """Write every output file into ``folder`` (which must exist)."""
    from .index import INDEX_NAME, write_index

    summ = summary(compiled)
    (folder / "ecosystem.nt").write_text(to_ntriples(compiled.triples), encoding="utf-8")
    (folder / "ecosystem.ttl").write_text(to_turtle(compiled.triples), encoding="utf-8")
    (folder / "ecosystem.jsonld").write_text(to_jsonld(compiled.triples), encoding="utf-8")
    (folder / "ecosystem.graphml").write_text(to_graphml(compiled), encoding="utf-8")
    write_index(compiled, folder / INDEX_NAME,
                {"summary": json.dumps(summ, ensure_ascii=False, sort_keys=True)}, graph_dir)
    if html:
        from .render import render_html

        (folder / "ecosystem.html").write_text(render_html(compiled), encoding="utf-8")
    (folder / "summary.json").write_text(
        json.dumps(summ, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (folder / MARKER).write_text("ecosystem-kg build output; replaced whole by `ekg build`\n",
                                 encoding="utf-8")


def build(graph_dir: Path, out_dir: Path, ontology_dir: Path | None = None, *,
          html: bool = True, before_swap: Callable[[Path], None] | None = None,
          keep: list[Any] | None = None) -> BuildReport:
    """Validate, compile and write all outputs to ``out_dir`` atomically.

    Files unchanged since the previous build into ``out_dir`` are taken from its cache; the
    others are parsed on every core when there are many (see :mod:`ecosystem_kg.incremental`).
    The outputs are the same bytes either way.

    ``keep``: a list the compiled graph is appended to, for a caller that exits right after and
    would rather not spend time freeing it (the CLI: about 5% of a large build).
    """
    t0 = time.perf_counter()
    gc_was_on = gc.isenabled()
    gc.disable()  # millions of small objects, no cycles worth collecting: the collector would
    try:          # walk them again and again
        compiled, summ, skipped = _build(graph_dir, out_dir, ontology_dir, html, before_swap)
        if keep is not None and compiled is not None:
            keep.append(compiled)
    finally:
        from .names import PINYIN_KEYS

        PINYIN_KEYS.clear()
        if keep:  # kept until exit: the collector's first pass would walk every object the
            gc.freeze()  # build made (about 0.5 s at 10,000 entities); leave them out of it
        if gc_was_on:
            gc.enable()
        _reap(wait=keep is None)
    files = {name: (out_dir / name).stat().st_size for name in OUTPUTS
             if (out_dir / name).exists()}
    return BuildReport(out_dir=out_dir, entities=int(summ["entities"]),  # type: ignore[call-overload]
                       by_type=summ["by_type"],  # type: ignore[arg-type]
                       relations=int(summ["relations"]),  # type: ignore[call-overload]
                       facts=int(summ["facts"]),  # type: ignore[call-overload]
                       triples=int(summ["triples"]),  # type: ignore[call-overload]
                       sources=int(summ["sources"]),  # type: ignore[call-overload]
                       seconds=time.perf_counter() - t0, files=files,
                       data_date=summ["data_date"],  # type: ignore[arg-type]
                       map_skipped=skipped)


def _build(graph_dir: Path, out_dir: Path, ontology_dir: Path | None, html: bool,
           before_swap: Callable[[Path], None] | None
           ) -> tuple[Compiled | None, dict[str, object], str | None]:
    from . import incremental

    if not graph_dir.is_dir():
        raise BuildError(f"{graph_dir}: no such graph folder; pass --graph DIR (a folder of "
                         "YAML entity files)")
    # the previous build keeps the parsed ontology beside its cache (no Turtle read again)
    onto = load_ontology(resolve_ontology_dir(graph_dir, ontology_dir),
                         out_dir / incremental.CACHE_DIR, save=False)
    paths, rels, problems = entity_file_names(graph_dir)
    _check_graph_root(graph_dir, rels, onto)
    skipped = None
    if html and len(paths) > map_limit():
        html = False
        skipped = (f"{len(paths):,} entity files are more than the {map_limit():,} a whole-graph "
                   "map can show in a browser; `ekg render ENTITY` (or --type/--rel) writes a "
                   "focused map, and EKG_MAP_LIMIT raises the limit")
    with _OutputLock(out_dir) as lock:
        try:
            compiled, summ = _attempt(graph_dir, out_dir, onto, paths, rels, list(problems),
                                      html, before_swap, lock, use_cache=True)
        except incremental.CacheUnusable:  # damaged: start again without it
            compiled, summ = _attempt(graph_dir, out_dir, onto, paths, rels, problems, html,
                                      before_swap, lock, use_cache=False)
    return compiled, summ, skipped


def _attempt(graph_dir: Path, out_dir: Path, onto: Ontology, paths: list[str], rels: list[str],
             problems: list[Problem], html: bool, before_swap: Callable[[Path], None] | None,
             lock: _OutputLock, *, use_cache: bool
             ) -> tuple[Compiled | None, dict[str, object]]:
    """One try at building into a fresh folder and swapping it in (the first uses the cache;
    a cache found damaged on the way raises :class:`~ecosystem_kg.incremental.CacheUnusable`,
    and the build starts again without it)."""
    from . import incremental
    from .index import INDEX_NAME, write_index

    tmp = lock.fresh_dir("tmp")
    html_job: _HtmlJob | _MapFeed | None = None
    st: incremental.Streamed | None = None
    fork = len(paths) >= incremental.parallel_min()
    defer = html and fork  # the map starts as soon as the entities are in; index rows
    try:                   # and output files are finished beside it

        feeds: list[_MapFeed] = []

        def feed() -> _MapFeed:  # a full build: the map is made as the files are read
            feeds.append(_MapFeed(onto, tmp / "ecosystem.html", (out_dir, tmp),
                                  _map_key(onto, graph_dir)))
            return feeds[-1]

        st = incremental.stream_build(graph_dir, onto, paths, out_dir, tmp, rels=rels,
                                      defer=defer, use_cache=use_cache,
                                      while_parsing=_import_map_tools if defer else None,
                                      keep_entities=html and not defer,
                                      feed=feed if defer else None)
        if st.feed is not None:  # every entity was handed to the map's process: it draws
            if st.tallies is not None and not problems:  # the map once they all passed
                html_job = feeds[-1]
            else:  # something to say, or an entity not where its id says: the usual way
                st.feed.cancel()
            st.feed = None
        problems.extend(st.problems)
        if not paths and not problems:
            problems.append(Problem(SourceLocation(str(graph_dir)), "no entity files "
                                    "(*.yaml) in the graph folder", "empty"))
        compiled: Compiled | None = None
        # An edit that keeps every id and type, and the links that could form a cycle, as
        # the last build had them: only the edited entities are checked again, the map and
        # the summary are the last ones updated for them, and the other entities are never
        # read from the cache.
        edit = (st.complete and not problems and st.same_universe and st.changes is not None
                and all(acyclic_links(was) == acyclic_links(now) for was, now in st.changes))
        summ: dict[str, Any] | None = None
        if edit:
            assert st.changes is not None
            if html:
                _remember_pinyin(st.pinyin)
                if _splice_html(onto, tmp / "ecosystem.html", (out_dir, tmp),
                                _map_key(onto, graph_dir), st.changes):
                    html = False  # written
            problems.extend(validate_changed([now for _, now in st.changes], onto, st.kinds))
            updated = _summary_after(st.summary, st.changes, st.count, onto)
            if updated is not None:
                summ, st.summary = updated
        if st.complete and not problems and st.tallies is not None:  # entities not kept
            summ, st.summary = summary_of(st.tallies, st.count, onto)
        elif st.complete and not problems and (html or summ is None):
            compiled = Compiled([], sorted(st.entities, key=lambda e: e.id), onto,
                                count=st.count)
            if html and fork:  # validation leaves valid entities as they are: the map can
                _remember_pinyin(st.pinyin)  # start now, and is thrown away on problems
                html_job = _HtmlJob(compiled, tmp / "ecosystem.html", fork=True,
                                    layout=(out_dir, tmp), key=_map_key(onto, graph_dir))
        try:
            if not edit and st.tallies is None:  # (else checked on the workers' digests)
                problems.extend(validate_links(st.entities, onto, checked=st.checked))
        except BaseException:
            if html_job is not None:
                html_job.cancel()
            raise
        if problems:
            if html_job is not None:
                html_job.cancel()
            raise ValidationFailed(sorted(set(problems)))
        incremental.finish_stream(st, tmp)
        if compiled is None and summ is None:  # an id differs from its file name, or a file
            compiled = compile_entities(st.entities, onto)  # did not compile on its own
            (tmp / "ecosystem.nt").write_text(to_ntriples(compiled.triples),
                                              encoding="utf-8")
            (tmp / "ecosystem.ttl").write_text(to_turtle(compiled.triples),
                                               encoding="utf-8")
            (tmp / "ecosystem.jsonld").write_text(to_jsonld(compiled.triples),
                                                  encoding="utf-8")
        if summ is None:
            assert compiled is not None
            summ, st.summary = summary_state(compiled)
        if html and html_job is None:
            assert compiled is not None
            html_job = _HtmlJob(compiled, tmp / "ecosystem.html", fork=fork,
                                layout=(out_dir, tmp), key=_map_key(onto, graph_dir))
        if not st.complete:
            assert compiled is not None
            (tmp / "ecosystem.graphml").write_text(to_graphml(compiled), encoding="utf-8")
        meta = {"summary": json.dumps(summ, ensure_ascii=False, sort_keys=True)}
        if st.index is not None:
            incremental.pack(st)  # while the index's process sorts the rows
            st.index.finish(meta)
            st.index = None
        else:
            assert compiled is not None
            write_index(compiled, tmp / INDEX_NAME, meta, graph_dir)
        (tmp / "summary.json").write_text(
            json.dumps(summ, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
            encoding="utf-8")
        (tmp / MARKER).write_text("ecosystem-kg build output; replaced whole by "
                                  "`ekg build`\n", encoding="utf-8")
        incremental.save(tmp, onto, graph_dir, st)
        if html_job is not None:
            html_job.wait()
        if before_swap is not None:
            before_swap(tmp)
        _swap(tmp, out_dir, lock)
    except BaseException:
        if html_job is not None:
            html_job.cancel()
        if st is not None:
            if st.feed is not None:
                st.feed.cancel()
            incremental.abandon_stream(st, tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return compiled, summ


def _import_map_tools() -> None:
    """What the map needs (pyvis imports IPython: about 0.2 s), imported while the workers
    parse; the map's process, forked later, finds it loaded."""
    import pyvis.network  # noqa: F401

    from . import render  # noqa: F401


def _map_key(onto: Ontology, graph_dir: Path) -> str:
    from .incremental import cache_header
    from .render import map_key

    return map_key(json.dumps(cache_header(onto, graph_dir), sort_keys=True))


def _remember_pinyin(keys: dict[str, str]) -> None:
    """The map's search keys need the pinyin the index rows hold already: reuse it."""
    from .names import PINYIN_KEYS

    PINYIN_KEYS.update(keys)


class _HtmlJob:
    """Writes the HTML map, in a forked process for large graphs (it needs nothing the other
    writers make, so it runs beside them); :meth:`wait` raises the error it met."""

    def __init__(self, compiled: Compiled, path: Path, *, fork: bool,
                 layout: tuple[Path, Path], key: str) -> None:
        """``layout``: the previous and the new output folder, whose layout caches are read
        and written; ``key``: what the map depends on besides the entities (kept with the
        map's records, see :func:`_splice_html`)."""
        import multiprocessing

        self.proc: Any = None
        args = (compiled, path, layout, key)
        if not fork or "fork" not in multiprocessing.get_all_start_methods():
            _write_html(*args)
            return
        ctx = multiprocessing.get_context("fork")
        self.conn, child_conn = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=_html_child, args=(child_conn, *args), daemon=True)
        self.proc.start()
        child_conn.close()

    def wait(self) -> None:
        """Wait for the map to be written; the process is left to end (see :func:`_reap`)."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        try:
            error = self.conn.recv()
        except EOFError:
            error = BuildError("the process writing ecosystem.html died")
        finally:
            self.conn.close()
            if error is None:  # done: ending (freeing its memory) takes it a while more
                _ENDING.append(proc)
            else:
                proc.join()
        if error is not None:
            raise error

    def cancel(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.join()
            self.conn.close()
            self.proc = None


_ENDING: list[Any] = []  # processes that did their part of a build and are ending


def _reap(wait: bool) -> None:
    """Join the processes :data:`_ENDING` (``wait``: else leave them to end on their own,
    for a caller that exits next)."""
    if wait:
        for proc in _ENDING:
            proc.join()
    _ENDING.clear()


def _write_html(compiled: Compiled | MapData, path: Path, layout: tuple[Path, Path], key: str
                ) -> None:
    """The whole-graph map, drawn whole (its layout reused while the nodes and links are the
    same), with the records :func:`_splice_html` needs at the next build. ``compiled``: the
    graph, or the map's data gathered from every entity."""
    from .incremental import CACHE_DIR
    from .render import LayoutCache, MapData, render_data, render_map

    old, new = layout[0] / CACHE_DIR, layout[1] / CACHE_DIR
    new.mkdir(exist_ok=True)
    cache = LayoutCache(old / LAYOUT_FILE, new / LAYOUT_FILE)
    text, records = (render_data(compiled, layout_cache=cache) if isinstance(compiled, MapData)
                     else render_map(compiled, layout_cache=cache))
    path.write_text(text, encoding="utf-8")
    if key:
        records.save(new / MAP_FILE, key, path)


def _splice_html(onto: Ontology, path: Path, layout: tuple[Path, Path], key: str,
                 changes: list[tuple[Entity, Entity]]) -> bool:
    """Write the map by replacing the edited entities' records in the previous build's page,
    if that is all the edit changes; False if the map must be drawn again."""
    from .incremental import CACHE_DIR
    from .render import MapRecords, splice_map

    old, new = layout[0] / CACHE_DIR, layout[1] / CACHE_DIR
    records = MapRecords.load(old / MAP_FILE, key, layout[0] / "ecosystem.html") if key else None
    if records is None:
        return False
    try:
        page = (layout[0] / "ecosystem.html").read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    spliced = splice_map(page, records, changes, onto)
    if spliced is None:
        return False
    new.mkdir(exist_ok=True)
    path.write_text(spliced[0], encoding="utf-8")
    spliced[1].save(new / MAP_FILE, key, path)
    try:  # the positions stay as they were: kept for the build after this one
        shutil.copyfile(old / LAYOUT_FILE, new / LAYOUT_FILE)
    except OSError:
        pass
    return True


LAYOUT_FILE = "layout.bin"
MAP_FILE = "map.bin"  # where each entity's records lie in ecosystem.html


class _MapFeed(_HtmlJob):
    """The map's process for a full build, started before the files are read: it is handed
    each entity's part of the map as the workers make them (each entity's records, see
    :class:`~ecosystem_kg.render.MapData`), and draws the map once the last is in.
    The build throws it away if a check fails. Waited for and cancelled as an
    :class:`_HtmlJob` is."""

    BATCH = 64  # entities sent at a time

    def __init__(self, onto: Ontology, path: Path, layout: tuple[Path, Path], key: str
                 ) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        self.conn, child_conn = ctx.Pipe(duplex=False)  # its error, or None, at the end
        entities, self.send = ctx.Pipe(duplex=False)
        try:  # room for every entity of a large graph: this process never waits on it
            import fcntl

            fcntl.fcntl(self.send.fileno(), 1031, 1 << 20)  # F_SETPIPE_SZ
        except (ImportError, OSError):
            pass
        self.proc: Any = ctx.Process(target=_feed_child,
                                     args=(entities, child_conn, onto, path, layout, key),
                                     daemon=True)
        self.proc.start()
        child_conn.close()
        entities.close()
        self.batch: list[bytes] = []

    def add(self, part: bytes) -> None:
        self.batch.append(part)
        if len(self.batch) >= self.BATCH:
            self._flush()

    def _flush(self) -> None:
        if self.batch:
            self._send(pickle.dumps(self.batch, pickle.HIGHEST_PROTOCOL))
            self.batch = []

    def _send(self, msg: bytes) -> None:
        if self.send.closed:  # the process is gone: wait() says so
            return
        try:
            self.send.send_bytes(msg)
        except OSError:
            self.send.close()

    def end(self) -> None:
        self._flush()
        self._send(b"")
        if not self.send.closed:
            self.send.close()

    def cancel(self) -> None:
        super().cancel()
        if not self.send.closed:
            self.send.close()


def _feed_child(entities: Any, conn: Any, onto: Ontology, path: Path,
                layout: tuple[Path, Path], key: str) -> None:
    error: BaseException | None = None
    try:
        from .render import MapData

        _import_map_tools()  # while the first files are read
        data = MapData(onto)
        while msg := entities.recv_bytes():
            for part in pickle.loads(msg):
                data.add_part(pickle.loads(part))
        entities.close()
        _write_html(data, path, layout, key)
    except BaseException as exc:  # noqa: BLE001 - sent to the parent, which raises it
        error = exc
    _send_error(conn, error)


def _send_error(conn: Any, error: BaseException | None) -> None:
    try:
        conn.send(error)
    except Exception:  # noqa: BLE001 - an error that does not pickle
        conn.send(BuildError(f"writing ecosystem.html failed: {error!r}"))
    conn.close()


def _html_child(conn: Any, *args: Any) -> None:
    error: BaseException | None = None
    try:
        _write_html(*args)
    except BaseException as exc:  # noqa: BLE001 - sent to the parent, which raises it
        error = exc
    _send_error(conn, error)


class _OutputLock:
    """Serialises builds into one output folder and clears what killed builds left behind."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.parent = out_dir.resolve().parent
        self.stem = "." + out_dir.resolve().name
        self.fd: int | None = None

    def __enter__(self) -> _OutputLock:
        import fcntl

        if self.out_dir.exists():
            if not self.out_dir.is_dir():
                raise BuildError(f"{self.out_dir}: exists and is not a folder; choose another "
                                 "--out")
            if any(self.out_dir.iterdir()) and not (self.out_dir / MARKER).exists():
                raise BuildError(f"{self.out_dir}: folder is not empty and was not made by "
                                 "`ekg build`; choose an empty or new --out folder")
        try:
            self.parent.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(self.parent / f"{self.stem}.lock", os.O_CREAT | os.O_RDWR, 0o644)
        except OSError as exc:
            raise BuildError(f"{self.out_dir}: cannot write here: {exc.strerror}") from None
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        self._recover()
        return self

    def __exit__(self, *exc: object) -> None:
        import fcntl

        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)

    def fresh_dir(self, kind: str) -> Path:
        p = self.parent / f"{self.stem}.{kind}-{os.getpid()}"
        shutil.rmtree(p, ignore_errors=True)
        p.mkdir()
        return p

    def _recover(self) -> None:
        """A killed build may leave a tmp folder, or the old output renamed aside."""
        olds = sorted(self.parent.glob(f"{self.stem}.old-*"))
        if not self.out_dir.exists() and olds:
            olds[-1].rename(self.out_dir)  # killed between the two renames: put it back
            olds = olds[:-1]
        for p in [*olds, *self.parent.glob(f"{self.stem}.tmp-*")]:
            shutil.rmtree(p, ignore_errors=True)


def _swap(tmp: Path, out_dir: Path, lock: _OutputLock) -> None:
    old = None
    if out_dir.exists():
        old = lock.parent / f"{lock.stem}.old-{os.getpid()}"
        shutil.rmtree(old, ignore_errors=True)
        out_dir.rename(old)
    tmp.rename(out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
