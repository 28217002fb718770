"""Parallel, incremental builds: per-file results cached by content hash, RDF written as it comes.

Loading one entity file depends on nothing but its bytes, the path shown in messages and the
ontology; so do its triples, their N-Triples, Turtle and JSON-LD text, and its index rows. Each
file is processed on its own (on every core when there are many files: each worker appends its
files' text to part files of its own); the main process puts each file's RDF text into the new
output files in id order, keeps the entities for validation (which needs them all; a build
without a map keeps a digest of each instead, see :func:`stream_build`) and records where each
file's text lies in the outputs.

That record is the cache (``OUT/.cache/files.pickle``, with each file's entity in
``blobs.bin``): the next build into the same folder parses only the files whose bytes changed
(files whose stamp is the one recorded are not even read), copies the text of the others from
the previous outputs and their index rows from the previous index, and reads their entities
back only if the edit needs them (see :attr:`Streamed.entities`). The cache is written into
the new output folder before it replaces the old one, so it always describes the outputs next
to it; a cache made with another ontology, graph folder, working directory or version of ekg,
or whose outputs were changed since, is ignored.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from . import __version__
from .compile import (
    GRAPHML_HEAD,
    GRAPHML_TAIL,
    JSONLD_SEP,
    JSONLD_TAIL,
    TURTLE_HEAD,
    entity_texts,
    graphml_edges,
    graphml_node,
    jsonld_head,
)
from .errors import Problem
from .index import INDEX_NAME, IndexRows, IndexWriter, entity_rows
from .load import (
    Entity,
    Stamp,
    Tally,
    display_paths,
    parse_entity,
    read_entity_file,
    read_stamped,
    stamp_of,
    tally,
)
from .ontology import Ontology, save_ontology
from .validate import Links, links_of, links_pass, universe_of, validate_alone

CACHE_DIR = ".cache"
CACHE_FILE = "files.pickle"  # per file: content hash, where its blob and texts lie
BLOBS = "blobs.bin"  # per file: the pickled (entity, problems, triple count, pinyin keys)
CACHE_FORMAT = "6"
STREAMED = ("ecosystem.nt", "ecosystem.ttl", "ecosystem.jsonld", "ecosystem.graphml")
EDGES_PART = ".graphml-edges.part"  # GraphML edges follow all nodes: written aside, then appended
PARALLEL_MIN_FILES = 500  # below this, starting worker processes costs more than it saves
PROTOCOL = pickle.HIGHEST_PROTOCOL

# One file's result: sha1 of its bytes ("" if unreadable), the pickled (entity, problems, triple
# count, pinyin keys), the pickled index rows, the UTF-8 N-Triples, Turtle body, JSON-LD
# nodes, GraphML node and GraphML edges (None when the file has problems: the build will stop
# at validation), and the file's stamp before it was read.
Texts = tuple[bytes, bytes, bytes, bytes, bytes]
Result = tuple[str, bytes, bytes, Texts | None, Stamp | None]
Span = tuple[int, int]  # offset and length of a file's text in an output (GraphML edges: in the
Spans = tuple[Span, Span, Span, Span, Span]  # edges section)
# sha1, span of the entity blob in BLOBS, text spans in the outputs (the index rows of the
# unchanged files are taken from the previous index itself), the file's stamp when it was
# read, and the entity's id, type and number of triples
Kind = tuple[str, str, int]
Entry = tuple[str, Span, Spans | None, Stamp | None, Kind | None]


def parallel_min() -> int:
    """How many files make a build use worker processes (``EKG_PARALLEL_MIN`` overrides)."""
    try:
        return max(1, int(os.environ.get("EKG_PARALLEL_MIN", PARALLEL_MIN_FILES)))
    except ValueError:
        return PARALLEL_MIN_FILES


def worker_count() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def process_file(path: str | Path, shown: str, onto: Ontology, rel: str) -> Result:
    """Everything about one file that does not depend on the other files (``rel``: its path
    inside the graph folder)."""
    return _process(path, shown, onto, rel)[0]


def _process(path: str | Path, shown: str, onto: Ontology, rel: str, digest: bool = False,
             mapped: bool = False) -> tuple[Result, bytes, bytes]:
    """:func:`process_file`, with ``digest`` its :data:`Digest`, pickled, and with
    ``mapped`` the entity's :func:`~ecosystem_kg.render.map_part`, pickled, when the file has
    no problem (else ``b""``)."""
    raw, problems, stamp = read_stamped(path, shown)
    if raw is None:
        return (("", pickle.dumps((None, problems, 0, ()), PROTOCOL), _NO_ROWS, None, None),
                pickle.dumps((problems, 0, None, None, None), PROTOCOL) if digest else b"",
                b"")
    sha = hashlib.sha1(raw).hexdigest()
    ent, problems = parse_entity(raw, shown, os.path.splitext(os.path.basename(path))[0])
    if ent is not None:
        problems.extend(validate_alone(ent, onto, rel))
    texts: Texts | None = None
    rows: IndexRows | None = None
    count = 0
    if ent is not None and not problems:
        try:
            count, nt, ttl, jsonld = entity_texts(ent, onto)
            texts = (nt.encode(), ttl.encode(), jsonld.encode(),
                     graphml_node(ent).encode(), graphml_edges(ent).encode())
            rows = entity_rows(ent, onto, rel=rel)
        except Exception:  # noqa: BLE001 - compiled again after validation, which reports it
            texts, rows = None, None
    pinyin = tuple((text, key) for key, _, kind, text in (rows[1] or ()) if kind == "pinyin"
                   ) if rows is not None else ()
    summary = b""
    if digest:
        links: Links | None = None
        tallied: Tally | None = None
        if ent is not None and texts is not None:  # no problem: checked on the digests
            links, tallied = links_of(ent, onto), tally(ent)
        summary = pickle.dumps((problems, count, (ent.id, ent.type) if ent is not None else None,
                                links, tallied), PROTOCOL)
    part = b""
    if mapped and ent is not None and texts is not None and rows is not None:
        from .render import map_part

        part = pickle.dumps(map_part(ent, onto.relations, None, rows[1]), PROTOCOL)
    return ((sha, pickle.dumps((ent, problems, count, pinyin), PROTOCOL),
             pickle.dumps(rows, PROTOCOL), texts, stamp), summary, part)


# What a build that does not keep the entities learns of one file instead (see
# :func:`stream_build`): its problems, triple count, the entity's id and type (None without
# an entity), and, when the file has no problem, its :func:`~ecosystem_kg.validate.links_of`
# and :func:`~ecosystem_kg.load.tally`
Digest = tuple[list[Problem], int, tuple[str, str] | None, Links | None, Tally | None]


_NO_ROWS = pickle.dumps(None, PROTOCOL)


_SHARED: dict[str, Any] = {}  # what forked workers inherit


PART_PREFIX = ".part-"  # a worker's texts, copied into the outputs by the main process
PARTS = 6  # part files of a worker: one per streamed text, and the pickled entities
_SEPS = (b"", b"", JSONLD_SEP.encode(), b"", b"", b"")  # between the texts, part by part
# what a worker returns instead of a file's texts: its process id and where the five texts lie
# in its part files (and, when it sends digests, where the pickled entity lies: a sixth span,
# alone when the file has problems)
Placed = tuple[int, tuple[Span, ...]]
_PARTS: dict[str, Any] = {}  # a worker's open part files and their sizes


def _batches(n: int, workers: int) -> list[tuple[int, int]]:
    """The runs of consecutive files (start, end) handed to the workers one at a time: up to
    256 files while much is left (fewer messages), fewer towards the end, so that the workers
    finish together (a last large run would leave the other cores waiting on one)."""
    out = []
    j = 0
    while j < n:
        k = j + max(16, min(256, (n - j) // (workers * 4)))
        out.append((j, min(k, n)))
        j = k
    return out


def _before_fork(mapped: bool) -> None:
    """Load what every worker would otherwise load for itself, once, for the workers forked
    next to share: pypinyin's dictionaries (0.12 s and 60 MiB) and, for the map's parts, the
    map's module. (The map's process, forked before, needs neither: it imports pyvis
    meanwhile.)"""
    from .names import load_pinyin

    load_pinyin()
    if mapped:
        from . import render  # noqa: F401


def _work_batch(tasks: list[tuple[str, str, str]]
                ) -> list[tuple[str, bytes, bytes, Placed | None, Stamp | None, bytes]]:
    """:func:`process_file` of consecutive files in a worker process. Their texts go to the
    worker's own part files (one per output, in the folder ``_SHARED["parts"]``), each after
    the output's separator, so that the main process copies runs of them with
    ``copy_file_range`` instead of receiving them through a pipe.

    With ``_SHARED["digest"]`` the pickled entities go to a part file too (the sixth span
    says where), and the main process receives each file's :data:`Digest` in their place;
    with ``_SHARED["map"]`` it receives each entity's part of the map too (else ``b""``)."""
    onto = _SHARED["onto"]
    digest = _SHARED.get("digest", False)
    mapped = _SHARED.get("map", False)
    pid = os.getpid()
    if _PARTS.get("pid") != pid:
        folder = _SHARED["parts"]
        _PARTS.update(pid=pid, fds=[os.open(os.path.join(folder, f"{PART_PREFIX}{pid}.{k}"),
                                            os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                                    for k in range(PARTS)], sizes=[0] * PARTS)
    sizes: list[int] = _PARTS["sizes"]
    bufs: list[list[bytes]] = [[] for _ in range(PARTS)]
    out: list[tuple[str, bytes, bytes, Placed | None, Stamp | None, bytes]] = []
    for path, shown, rel in tasks:
        (sha, blob, rblob, texts, stamp), summary, part = _process(path, shown, onto, rel,
                                                                    digest, mapped)
        placed: Placed | None = None
        if texts is not None or digest:
            spans = []
            written = (*(texts or ()), *((blob,) if digest else ()))
            for k, text in enumerate(written, 0 if texts is not None else PARTS - 1):
                sep = _SEPS[k]
                bufs[k].append(sep)
                bufs[k].append(text)
                spans.append((sizes[k] + len(sep), len(text)))
                sizes[k] += len(sep) + len(text)
            placed = (pid, tuple(spans))
        if digest:
            blob = summary
        out.append((sha, blob, rblob, placed, stamp, part))
    for fd, buf in zip(_PARTS["fds"], bufs, strict=True):
        view = memoryview(b"".join(buf))
        while view:  # written before the results are sent: the main process copies them
            view = view[os.write(fd, view):]
    return out


# Where the workers' part files go: a memory-backed folder when the system has one, so that
# the texts are written to disk once (copied from the parts into the outputs) and not twice.
# The main process frees each run of a part file once it has copied it (a hole punched in the
# file), so the folder holds little more than what is not yet copied. Elsewhere, the parts go
# into the build's own temporary folder.
SCRATCH = Path("/dev/shm")
SCRATCH_PREFIX = "ekg-parts-"  # + the building process's id + "-" + a random suffix
# what the scratch folder must have free, per file and in all (it holds the pickled entities,
# about 1.5 KB a file, and the text not yet copied out): a small /dev/shm, as containers
# have by default (64 MiB), is not used for a large graph
SCRATCH_PER_FILE = 4096
SCRATCH_SPARE = 64 << 20


def _scratch_folder(tmp: Path, files: int = 0) -> tuple[Path, bool]:
    """A fresh folder for the part files of ``files`` files, and whether it is one of its
    own (else ``tmp``)."""
    try:
        if (SCRATCH.is_dir() and os.access(SCRATCH, os.W_OK | os.X_OK)
                and _free_bytes(SCRATCH) >= files * SCRATCH_PER_FILE + SCRATCH_SPARE):
            _sweep_scratch()
            import tempfile

            return Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-",
                                         dir=SCRATCH)), True
    except OSError:
        pass
    return tmp, False


def _free_bytes(folder: Path) -> int:
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize


def _sweep_scratch() -> None:
    """Remove part folders left by builds that were killed (their process is gone)."""
    import shutil

    for d in SCRATCH.glob(SCRATCH_PREFIX + "*"):
        pid = d.name[len(SCRATCH_PREFIX):].partition("-")[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except OSError:  # alive, someone else's
            pass


_PUNCH: list[Any] = []  # libc's fallocate, once looked up (or None where there is none)


def punch_hole(fd: int, off: int, n: int) -> bool:
    """Free the bytes ``off .. off + n`` of a file (they read as zeros after); False where
    the system cannot."""
    if not _PUNCH:
        try:
            import ctypes

            fallocate = ctypes.CDLL(None, use_errno=True).fallocate
            fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
            fallocate.restype = ctypes.c_int
            _PUNCH.append(fallocate)
        except (OSError, AttributeError):
            _PUNCH.append(None)
    fallocate = _PUNCH[0]
    if fallocate is None or n <= 0:
        return False
    return bool(fallocate(fd, 3, off, n) == 0)  # FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE


class _Parts:
    """The main process's side of the workers' part files: opened when first named, removed
    when the workers are done (the open descriptors keep them readable until closed).
    ``own``: the folder is the parts' own (removed at :meth:`close`), and each run of text
    copied out is freed (:meth:`release`)."""

    def __init__(self, folder: Path, own: bool = False) -> None:
        self.folder = folder
        self.own = own
        self.fds: dict[int, list[int]] = {}
        self.texts: set[int] = set()  # descriptors of the text parts (not the entities')

    def of(self, pid: int) -> list[int]:
        fds = self.fds.get(pid)
        if fds is None:
            fds = self.fds[pid] = []
            for k in range(PARTS):  # (freeing a run needs a descriptor open for writing)
                fds.append(os.open(self.folder / f"{PART_PREFIX}{pid}.{k}",
                                   os.O_RDWR if self.own else os.O_RDONLY))
            self.texts.update(fds[:PARTS - 1])
        return fds

    def release(self, fd: int, off: int, end: int) -> None:
        """The bytes ``off .. end`` of part ``fd`` are copied out: free them."""
        if self.own and fd in self.texts:
            punch_hole(fd, off, end - off)

    def unlink(self) -> None:
        for p in self.folder.glob(PART_PREFIX + "*"):
            p.unlink(missing_ok=True)

    def close(self) -> None:
        self.unlink()
        for fds in self.fds.values():
            for fd in fds:
                os.close(fd)
        self.fds = {}
        self.texts = set()
        if self.own:
            try:
                self.folder.rmdir()
            except OSError:
                pass


def _parse_only(task: tuple[str, str]) -> bytes:
    path = Path(task[0])
    raw, problems = read_entity_file(path, task[1])
    if raw is None:
        return pickle.dumps((None, problems), PROTOCOL)
    return pickle.dumps(parse_entity(raw, task[1], path.stem), PROTOCOL)


def parse_files(paths: list[Path], shown: list[str], *, workers: int | None = None
                ) -> Iterator[tuple[Entity | None, list[Problem]]]:
    """:func:`~ecosystem_kg.load.load_file` of every path, in order; on every core when there
    are many."""
    workers = worker_count() if workers is None else workers
    if workers <= 1 or len(paths) < parallel_min():
        from .load import load_file

        for p, name in zip(paths, shown, strict=True):
            yield load_file(p, name)
        return
    import multiprocessing

    chunk = max(8, min(256, len(paths) // (workers * 8)))
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for blob in pool.imap(_parse_only, [(str(p), name) for p, name in
                                            zip(paths, shown, strict=True)], chunk):
            yield pickle.loads(blob)


class Feed(Protocol):
    """Takes each entity's part of the map (:func:`~ecosystem_kg.render.map_part`, pickled by
    the worker that read its file), in file order, for each file without problems."""

    def add(self, part: bytes) -> None: ...

    def end(self) -> None:
        """The last entity is in."""

    def cancel(self) -> None:
        """The build stops, or goes another way: whatever the feed started is thrown away."""


@dataclass
class Streamed:
    """What :func:`stream_build` read and wrote."""

    # the entities in file order; those of unchanged files are read from the cache only when
    # :attr:`entities` is first asked for (a rebuild after an edit may never need them)
    loaded: list[Entity | None] = field(default_factory=list)
    lazy: dict[int, Span] = field(default_factory=dict)  # position -> span in old_blobs
    old_blobs: Path | None = None
    kinds: dict[str, str] = field(default_factory=dict)  # id -> type, of every entity
    problems: list[Problem] = field(default_factory=list)
    rel_paths: dict[str, str] = field(default_factory=dict)
    index: IndexWriter | IndexChild | None = None  # the index, written but for its meta rows
    pinyin: dict[str, str] = field(default_factory=dict)  # name -> pinyin key, from the rows
    count: int = 0  # triples written
    edges_at: int = 0  # offset of the GraphML edges section
    complete: bool = True  # every entity's text was written, in id order
    universe: str = ""  # digest of the entities' ids and types
    started: int = 0  # time.time_ns() before any file was looked at
    same_universe: bool = False  # the ids and types are those the cached files passed with
    checked: list[int] = field(default_factory=list)  # entities whose links need no check
    # each file parsed again, as it was (from the cache) and as it is, when the files are the
    # ones the cache knows (none added or removed); None otherwise
    changes: list[tuple[Entity, Entity]] | None = None
    entries: dict[str, Entry] = field(default_factory=dict)
    parsed: int = 0  # files parsed (not taken from the cache)
    # what :func:`finish_stream` still has to do: index rows to add (pickled: they are read
    # then, after the files, while the map's process lays the graph out), output files to close
    pending: list[bytes] = field(default_factory=list)
    stack: ExitStack | None = None
    writers: list[_Writer] = field(default_factory=list)
    closing: Any = None  # the thread finishing the outputs, if one does
    close_error: BaseException | None = None
    # the previous build's summary and what brings it up to date (then this build's)
    summary: dict[str, Any] | None = None
    # set when a build did not keep the entities (see stream_build), and every link was
    # found right: what the summary counts of each entity
    tallies: list[Tally] | None = None
    packed: bytes | None = None  # the entries, pickled (see pack)
    feed: Feed | None = None  # what each entity was handed to (see stream_build)

    @property
    def entities(self) -> list[Entity]:
        """Every entity, in file order (the unchanged ones read from the cache now)."""
        if self.tallies is not None:
            raise RuntimeError("this build did not keep the entities (keep_entities=False)")
        if self.lazy:
            assert self.old_blobs is not None
            with open(self.old_blobs, "rb") as f:
                for pos, (off, n) in sorted(self.lazy.items()):
                    f.seek(off)
                    ent, _, _, pinyin = _load_cached(f.read(n))
                    self.loaded[pos] = ent
                    self.pinyin.update(pinyin)
            self.lazy = {}
        return self.loaded  # type: ignore[return-value]


RACY_NS = 3_000_000_000  # file times this close to a build's start may hide a later edit


def _unchanged(path: str | Path, entry: Entry, started: int) -> Stamp | None:
    """The file's stamp if its bytes are still the cached ones, else None. As git does, a
    file whose stamp is the one recorded is not read again, unless it was changed so close to
    the time that build started that a later edit could have kept the same stamp (file times
    are coarser than the clock); other files are compared by SHA-1."""
    try:
        stamp = stamp_of(os.stat(path))
    except OSError:
        return None
    if stamp == entry[3] and max(stamp[1], stamp[2]) < started - RACY_NS:
        return stamp
    return stamp if _sha1_of(path) == entry[0] else None


def _sha1_of(path: str | Path) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.sha1(f.read()).hexdigest()
    except OSError:
        return None


def cache_header(onto: Ontology, graph_dir: Path) -> dict[str, str]:
    """What a cache depends on besides the files: a cache made with others is ignored."""
    return {"format": CACHE_FORMAT, "ekg": __version__, "ontology": onto.fingerprint,
            "graph": os.path.abspath(graph_dir), "cwd": os.getcwd()}


def read_cache(out_dir: Path, header: dict[str, str]
               ) -> tuple[dict[str, Entry], int, str, int, dict[str, Any] | None]:
    """The previous build's entries, where its GraphML edges start, the
    :func:`~ecosystem_kg.validate.universe_of` its entities were checked in, when it started and
    its summary; or nothing if they do not fit this build."""
    path = out_dir / CACHE_DIR / CACHE_FILE
    try:
        with open(path, "rb") as f:
            data = _CacheUnpickler(f).load()
        if data["header"] != header or set(data["stamps"]) != {*STREAMED, _BLOBS_PATH,
                                                               INDEX_NAME}:
            return {}, 0, "", 0, None
        for name, stamp in data["stamps"].items():
            if _stamp(out_dir / name) != stamp:  # changed since: the text may not be ours
                return {}, 0, "", 0, None
        entries: dict[str, Entry] = _CacheUnpickler(io.BytesIO(data["entries"])).load()
        summary = json.loads(data["summary"]) if data["summary"] is not None else None
        return (entries, int(data["edges_at"]), str(data["universe"]), int(data["started"]),
                summary)
    except Exception:  # noqa: BLE001 - a missing or unreadable cache means a full build
        return {}, 0, "", 0, None


_BLOBS_PATH = f"{CACHE_DIR}/{BLOBS}"


def write_cache(folder: Path, header: dict[str, str], entries: dict[str, Entry] | bytes,
                edges_at: int, universe: str, started: int,
                summary: dict[str, Any] | None = None) -> None:
    """``entries``: as a dict, or already pickled (:func:`pack`)."""
    if not isinstance(entries, bytes):
        entries = pickle.dumps(entries, PROTOCOL)
    stamps = {name: _stamp(folder / name) for name in (*STREAMED, _BLOBS_PATH, INDEX_NAME)}
    (folder / CACHE_DIR).mkdir(exist_ok=True)
    with open(folder / CACHE_DIR / CACHE_FILE, "wb") as f:
        pickle.dump({"header": header, "stamps": stamps, "entries": entries,
                     "edges_at": edges_at, "universe": universe, "started": started,
                     "summary": json.dumps(summary, sort_keys=True) if summary else None},
                    f, PROTOCOL)


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


# What the cache may hold. The output folder may come from elsewhere (a copied or downloaded
# build): its cache is read with these classes only, so it can never run code.
_CACHE_CLASSES = {("ecosystem_kg.load", n) for n in ("Entity", "Fact", "Relation", "Quantity")} | {
    ("ecosystem_kg.errors", "SourceLocation"), ("ecosystem_kg.errors", "Problem"),
    ("builtins", "tuple")}


def _tuple_new_only(obj: object, name: str) -> object:
    """``getattr`` as a cache may use it: only for ``tuple.__new__`` (SourceLocation)."""
    if obj is tuple and name == "__new__":
        return tuple.__new__
    raise pickle.UnpicklingError(f"getattr({obj!r}, {name!r}) is not allowed in the cache")


_FOUND: dict[tuple[str, str], Any] = {}  # the classes above, once looked up


class _CacheUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        found = _FOUND.get((module, name))
        if found is not None:
            return found
        if (module, name) in _CACHE_CLASSES:
            found = _FOUND[(module, name)] = super().find_class(module, name)
            return found
        if (module, name) == ("builtins", "getattr"):
            return _tuple_new_only
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in the build cache")


class CacheUnusable(Exception):
    """A cached entry could not be read back: build without the cache."""


def _load_cached(data: bytes) -> Any:
    try:
        return _CacheUnpickler(io.BytesIO(data)).load()
    except Exception as exc:
        raise CacheUnusable(str(exc)) from None


class IndexChild:
    """Writes the index in a forked process, as :class:`~ecosystem_kg.index.IndexWriter` would
    in this one: the main process names the unchanged files' entities, whose rows the child
    copies from the previous build's index, and sends the rows of the files parsed now. The
    child makes the tables and indexes while the main process checks the links."""

    BATCH = 2048

    @staticmethod
    def available() -> bool:
        import multiprocessing

        return "fork" in multiprocessing.get_all_start_methods()

    def __init__(self, path: Path, onto: Ontology) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        self.conn, child_conn = ctx.Pipe()
        self.proc: Any = ctx.Process(target=_index_child,
                                     args=(child_conn, self.conn, os.getpid(), path, onto),
                                     daemon=True)
        self.proc.start()
        child_conn.close()
        self.batch: list[bytes] = []
        self.stopped = False  # the child stopped early: :meth:`finish` says why

    def copy(self, previous: Path, ids: list[str]) -> None:
        """:meth:`IndexWriter.copy_from` in the child."""
        self._send(("copy", (previous, ids)))

    def _send(self, msg: object) -> None:
        if not self.stopped:
            try:
                self.conn.send(msg)
            except OSError:
                self.stopped = True

    def add(self, rows: bytes) -> None:
        """One entity's rows, pickled."""
        self.batch.append(rows)
        if len(self.batch) >= self.BATCH:
            self._send(self.batch)
            self.batch = []

    def prepare(self) -> None:
        """Every row is sent: the child makes the tables and indexes while this process goes
        on (:meth:`IndexWriter.prepare`)."""
        if self.batch:
            self._send(self.batch)
            self.batch = []
        self._send(("prepare", None))

    def finish(self, meta: dict[str, str]) -> None:
        """:meth:`IndexWriter.finish` in the child; raises what the child met."""
        if self.batch:
            self._send(self.batch)
            self.batch = []
        self._send(("finish", meta))
        try:
            error = self.conn.recv()  # the child's answer, or why it stopped
        except (EOFError, OSError):
            error = OSError("the process writing index.sqlite died")
        self.proc.join()
        self.conn.close()
        if error is not None:
            raise error

    def abandon(self) -> None:
        if self.proc.is_alive():
            self.proc.terminate()
        self.proc.join()
        self.conn.close()


def _index_child(conn: Any, parent_end: Any, parent: int, path: Path, onto: Ontology
                 ) -> None:
    parent_end.close()  # or the pipe would never report the parent gone
    error: BaseException | None = None
    try:
        writer = IndexWriter(path, onto)
        while True:
            while not conn.poll(0.5):  # a killed build's child must not linger (it holds
                if os.getppid() != parent:  # the output folder's lock)
                    writer.abandon()
                    os._exit(1)
            msg = conn.recv()
            if isinstance(msg, tuple):
                if msg[0] == "copy":
                    writer.copy_from(*msg[1])
                elif msg[0] == "prepare":
                    writer.prepare()
                else:
                    writer.finish(msg[1])
                    break
                continue
            for rows in msg:
                writer.add(pickle.loads(rows))
    except BaseException as exc:  # noqa: BLE001 - sent to the parent, which raises it
        error = exc
    try:
        try:
            conn.send(error)
        except (pickle.PicklingError, TypeError, AttributeError):  # an error that won't pickle
            conn.send(OSError(f"writing index.sqlite failed: {error!r}"))
    except OSError:  # the parent is gone: nobody to tell
        pass
    conn.close()


class _Writer:
    """Appends text bodies (separated by ``sep``) to a new file; copies unchanged bodies from
    the previous output with ``copy_file_range``, merging adjacent ones into one copy."""

    def __init__(self, path: Path, head: bytes, sep: bytes) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self.sep = sep
        self.buf: list[bytes] = [head]
        self.nbuf = len(head)
        self.pos = len(head)
        self.started = False
        self.run: tuple[int, int, int] | None = None  # source fd, start, end
        # told of each run copied (source fd, start, end): the part files free what is copied
        self.release: Callable[[int, int, int], None] | None = None
        # sources copy_file_range cannot copy from (on another file system, as the scratch
        # folder): copied by sendfile
        self.across: set[int] = set()

    def add(self, data: bytes) -> Span:
        self._flush_run()
        if self.started:
            self._put(self.sep)
        self.started = True
        start = self.pos
        self._put(data)
        return start, len(data)

    def copy(self, src: int, span: Span) -> Span:
        off, n = span
        if self.started:
            if self.run is not None and self.run[0] == src and self.run[2] + len(self.sep) == off:
                self.run = (src, self.run[1], off + n)
                start = self.pos + len(self.sep)
                self.pos = start + n
                return start, n
            self._flush_run()
            self._put(self.sep)
        self.started = True
        self._flush_buf()
        self.run = (src, off, off + n)
        start = self.pos
        self.pos += n
        return start, n

    def append_from(self, src: int, n: int) -> None:
        """Append the first ``n`` bytes of another file."""
        self._flush_run()
        self._flush_buf()
        self.run = (src, 0, n)
        self.pos += n
        self._flush_run()

    def close(self, tail: bytes) -> None:
        self._flush_run()
        self._put(tail)
        self._flush_buf()
        os.close(self.fd)
        self.fd = -1

    def abort(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def _put(self, data: bytes) -> None:
        if data:
            self.buf.append(data)
            self.nbuf += len(data)
            self.pos += len(data)
            if self.nbuf >= 1 << 20:
                self._flush_buf()

    def _flush_buf(self) -> None:
        if self.buf:
            view = memoryview(b"".join(self.buf))
            while view:
                view = view[os.write(self.fd, view):]
            self.buf, self.nbuf = [], 0

    def _flush_run(self) -> None:
        if self.run is None:
            return
        self._flush_buf()
        src, off, end = self.run
        self.run = None
        self._copy(src, off, end)
        if self.release is not None:
            self.release(src, off, end)

    def _copy(self, src: int, off: int, end: int) -> None:
        while off < end:
            n = 0
            if src not in self.across:
                try:
                    n = os.copy_file_range(src, self.fd, end - off, off)
                except (AttributeError, OSError):
                    self.across.add(src)
            if n <= 0 and src in self.across:
                try:  # still without passing through this process's memory
                    n = os.sendfile(self.fd, src, off, end - off)
                except OSError:
                    n = 0
            if n <= 0:  # not supported here: copy through memory
                data = os.pread(src, min(end - off, 1 << 24), off)
                if not data:
                    raise OSError(f"previous output ended early (offset {off})")
                view = memoryview(data)
                while view:
                    view = view[os.write(self.fd, view):]
                n = len(data)
            off += n


def stream_build(graph_dir: Path, onto: Ontology, paths: Sequence[str | Path], out_dir: Path,
                 tmp: Path, *, workers: int | None = None, use_cache: bool = True,
                 rels: list[str] | None = None, defer: bool = False,
                 while_parsing: Callable[[], object] | None = None,
                 keep_entities: bool = True, feed: Callable[[], Feed] | None = None
                 ) -> Streamed:
    """Load every file (cached, or parsed in parallel), check what each file decides alone
    (:func:`~ecosystem_kg.validate.validate_alone`) and write the RDF and GraphML outputs into
    ``tmp`` in id order. The checks across files come after; on problems ``tmp`` is thrown
    away.

    ``defer``: leave adding the index rows and closing the output files to
    :func:`finish_stream` (or :func:`abandon_stream`), so that whatever needs only the
    entities (the map) can start first; otherwise the rows are added here. The output files
    are closed by a thread of their own when no rows wait; :func:`finish_stream` (which the
    caller must call, or :func:`abandon_stream`) waits for it.

    ``while_parsing``: called once the worker processes have started (when they do), for work
    this process can do while it waits for them (such as imports the steps after need).

    ``keep_entities=False``: the caller needs the entities only to check the links across
    files and count the summary. A full build on worker processes then never unpickles them
    here: each worker sends a :data:`Digest` of each file and leaves the pickled entity in a
    part file (copied into the cache like the texts); the links are checked on the digests
    (then :attr:`Streamed.tallies` holds what the summary counts), and only when something
    is wrong are the entities read, to say what.

    ``feed``: with ``keep_entities=False``, makes the :class:`Feed` each entity is handed to,
    pickled, as it is read (:attr:`Streamed.feed`), when the build sends digests; it is told
    when the last is in.
    """
    st = Streamed(started=time.time_ns())
    stack = ExitStack()
    try:
        _stream(st, stack, graph_dir, onto, paths, out_dir, tmp, workers, use_cache, rels,
                defer, while_parsing, keep_entities, feed)
    except BaseException:
        if st.feed is not None:
            st.feed.cancel()
        _abandon_index(st, tmp, failed=True)
        stack.close()
        raise
    st.stack = stack
    if not st.pending:  # no index rows to add first: the outputs are finished (mostly copies
        import threading  # in the kernel) while this process goes on with the checks

        st.closing = threading.Thread(target=_close_aside, args=(st, tmp), daemon=True)
        st.closing.start()
    elif not defer:
        finish_stream(st, tmp)
    return st


def _close_aside(st: Streamed, tmp: Path) -> None:
    try:
        _close(st, tmp)
    except BaseException as exc:  # noqa: BLE001 - raised by finish_stream
        st.close_error = exc


def finish_stream(st: Streamed, tmp: Path) -> None:
    """Add the index rows and close the outputs that :func:`stream_build` left open."""
    if st.stack is None:
        return
    stack, st.stack = st.stack, None
    with stack:
        try:
            if st.closing is not None:
                st.closing.join()
                st.closing = None
                if st.close_error is not None:
                    raise st.close_error
            else:
                if isinstance(st.index, IndexWriter):
                    st.index.fill(map(pickle.loads, st.pending))
                st.pending = []
                _close(st, tmp)
        except BaseException:
            _abandon_index(st, tmp, failed=True)
            raise
        _abandon_index(st, tmp, failed=False)


def abandon_stream(st: Streamed, tmp: Path) -> None:
    """Throw away what :func:`stream_build` left open (the build stops)."""
    _abandon_index(st, tmp, failed=True)
    st.pending = []
    if st.closing is not None:
        st.closing.join()
        st.closing = None
    if st.stack is not None:
        stack, st.stack = st.stack, None
        stack.close()


def _close(st: Streamed, tmp: Path) -> None:
    writers = st.writers
    writers[0].close(b"")
    writers[1].close(b"")
    writers[2].close(JSONLD_TAIL.encode())
    writers[4].close(b"")
    writers[5].close(b"")
    st.edges_at = writers[3].pos
    part = os.open(tmp / EDGES_PART, os.O_RDONLY)
    try:
        writers[3].append_from(part, writers[4].pos)
        writers[3].close(GRAPHML_TAIL.encode())
    finally:
        os.close(part)
    os.unlink(tmp / EDGES_PART)


def _stream(st: Streamed, stack: ExitStack, graph_dir: Path, onto: Ontology,
            paths: Sequence[str | Path], out_dir: Path, tmp: Path, workers: int | None,
            use_cache: bool, rels: list[str] | None, defer: bool,
            while_parsing: Callable[[], object] | None, keep_entities: bool = True,
            feed: Callable[[], Feed] | None = None) -> None:
    if rels is None:
        rels = [Path(p).relative_to(graph_dir).as_posix() for p in paths]
    shown = display_paths(graph_dir, rels)
    # id order, assuming each id is its file's name (validation checks that; if an id is not,
    # the build notices below and compiles the usual way)
    stems = [os.path.splitext(r.rpartition("/")[2])[0] for r in rels]
    order = sorted(range(len(paths)), key=lambda i: (stems[i], rels[i]))
    header = cache_header(onto, graph_dir)
    old, old_edges_at, old_universe, old_started, st.summary = (
        read_cache(out_dir, header) if use_cache and out_dir.is_dir()
        else ({}, 0, "", 0, None))
    hits: dict[int, Entry] = {}
    for i in order if old else ():
        entry = old.get(shown[i])
        if entry is not None and entry[2] is not None and entry[4] is not None:
            stamp = _unchanged(paths[i], entry, old_started)
            if stamp is not None:
                hits[i] = (entry[0], entry[1], entry[2], stamp, entry[4])
    todo = [i for i in order if i not in hits]
    st.parsed = len(todo)
    same_files = bool(old) and len(old) == len(paths) and all(shown[i] in old for i in todo)
    workers = worker_count() if workers is None else workers
    parallel = workers > 1 and len(todo) >= parallel_min()
    digest = parallel and not keep_entities and not hits
    before: list[Entity | None] = []
    if old and todo and not digest:  # (a digest build keeps no entity to pair them with)
        before = _previous([old[shown[i]][1] for i in todo if shown[i] in old],
                           out_dir / _BLOBS_PATH)
    entities: list[Entity | None] = [None] * len(paths)
    present = [False] * len(paths)
    child: IndexChild | None = None
    writer: IndexWriter | None = None
    if ((hits or not defer) and workers > 1 and len(paths) >= parallel_min()
            and IndexChild.available()):
        # the index is written by a process of its own: on a rebuild from the previous index;
        # on a full build without a map, from the rows as they come (the map's process, when
        # there is one, keeps the second core busy after the files are read)
        st.index = child = IndexChild(tmp / INDEX_NAME, onto)
    else:
        st.index = writer = IndexWriter(tmp / INDEX_NAME, onto)
    if hits:  # the unchanged files' rows, from the previous index
        hit_ids = [hit[4][0] for hit in hits.values()]  # type: ignore[index]
        if child is not None:
            child.copy(out_dir / INDEX_NAME, hit_ids)
        else:
            assert writer is not None
            writer.copy_from(out_dir / INDEX_NAME, hit_ids)
    parts: _Parts | None = None
    digests: list[tuple[str, Links]] = []  # with digest: what the checks across files need,
    tallies: list[Tally] = []              # and the summary
    blob_at: dict[int, tuple[int, Span]] = {}  # position -> worker, span of its pickled entity
    unique = True
    with ExitStack() as pool_stack:
        results: Iterator[tuple[str, bytes, bytes, Texts | None, Stamp | None,
                                Placed | None, bytes]]
        if parallel:
            import multiprocessing

            parts = _Parts(*_scratch_folder(tmp, len(todo)))
            stack.callback(parts.close)  # after the outputs are closed (copies are lazy)
            if digest and feed is not None:  # (its process is not a copy of the workers')
                st.feed = feed()
            _SHARED.update(onto=onto, parts=str(parts.folder), digest=digest,
                           map=st.feed is not None)
            _before_fork(st.feed is not None)
            pool = pool_stack.enter_context(
                multiprocessing.get_context("fork").Pool(workers))
            tasks = [(os.fspath(paths[i]), shown[i], rels[i]) for i in todo]
            results = ((sha, blob, rblob, None, stamp, placed, part) for batch in pool.imap(
                _work_batch, [tasks[j:k] for j, k in _batches(len(tasks), workers)])
                for sha, blob, rblob, placed, stamp, part in batch)
            if while_parsing is not None and st.feed is None:
                while_parsing()
        else:
            results = ((*process_file(Path(paths[i]), shown[i], onto, rels[i]), None, b"")
                       for i in todo)
        srcs = [-1, -1, -1, -1, -1]
        old_blobs = -1
        if hits:
            for k, name in enumerate(STREAMED):
                srcs[k] = os.open(out_dir / name, os.O_RDONLY)
                stack.callback(os.close, srcs[k])
            srcs[4] = srcs[3]
            old_blobs = os.open(out_dir / _BLOBS_PATH, os.O_RDONLY)
            stack.callback(os.close, old_blobs)
        (tmp / CACHE_DIR).mkdir(exist_ok=True)
        st.writers = writers = [_Writer(tmp / STREAMED[0], b"", b""),
                   _Writer(tmp / STREAMED[1], TURTLE_HEAD.encode(), b""),
                   _Writer(tmp / STREAMED[2], jsonld_head().encode(), JSONLD_SEP.encode()),
                   _Writer(tmp / STREAMED[3], GRAPHML_HEAD.encode(), b""),
                   _Writer(tmp / EDGES_PART, b"", b""),
                   _Writer(tmp / _BLOBS_PATH, b"", b"")]
        for w in writers:
            stack.callback(w.abort)
        if parts is not None and parts.own:  # the texts' copies free their parts
            for w in writers[:PARTS - 1]:
                w.release = parts.release
        prev = ""
        kinds = st.kinds
        pairs: list[str] = []  # id and type of every entity, for the universe
        for i in order:
            hit = hits.get(i)
            kind: Kind | None
            if hit is not None:  # not unpickled here (see Streamed.entities)
                sha, bspan, spans, stamp, kind = hit
                assert kind is not None  # hits have one
                bspan = writers[5].copy(old_blobs, bspan)
                texts, placed = None, None
                ent, count, pinyin = None, kind[2], ()
            elif digest:
                sha, blob, rblob, texts, stamp, placed, part = next(results)
                assert placed is not None and parts is not None  # the entity's span is last
                blob_at[i] = (placed[0], placed[1][-1])
                bspan = writers[5].copy(parts.of(placed[0])[5], placed[1][-1])
                if st.feed is not None and part:
                    st.feed.add(part)
                if len(placed[1]) == 1:  # the file has problems: no texts
                    placed = None
                spans = None
                problems, count, ident, links, tallied = pickle.loads(blob)
                st.problems.extend(problems)
                ent, pinyin = None, ()
                kind = (ident[0], ident[1], count) if ident is not None else None
                if ident is not None:
                    unique = unique and ident[0] not in kinds
                    if links is not None and tallied is not None:
                        digests.append((ident[0], links))
                        tallies.append(tallied)
            else:
                sha, blob, rblob, texts, stamp, placed, _ = next(results)
                bspan = writers[5].add(blob)
                spans = None
                ent, problems, count, pinyin = pickle.loads(blob)
                st.problems.extend(problems)
                kind = (ent.id, ent.type, count) if ent is not None else None
            new_spans = None
            if kind is not None:
                entities[i] = ent
                present[i] = True
                kinds[kind[0]] = kind[1]
                pairs.append(kind[0] + "\t" + kind[1])
                st.rel_paths[shown[i]] = rels[i]
                if (st.complete and kind[0] > prev
                        and (texts is not None or placed is not None or spans is not None)):
                    prev = kind[0]
                    if placed is not None:  # in a worker's part files
                        assert parts is not None
                        src, sp = parts.of(placed[0]), placed[1]
                        new_spans = (writers[0].copy(src[0], sp[0]),
                                     writers[1].copy(src[1], sp[1]),
                                     writers[2].copy(src[2], sp[2]),
                                     writers[3].copy(src[3], sp[3]),
                                     writers[4].copy(src[4], sp[4]))
                    elif texts is not None:
                        new_spans = (writers[0].add(texts[0]), writers[1].add(texts[1]),
                                     writers[2].add(texts[2]), writers[3].add(texts[3]),
                                     writers[4].add(texts[4]))
                    else:
                        assert spans is not None
                        edges = (spans[4][0] + old_edges_at, spans[4][1])
                        new_spans = (writers[0].copy(srcs[0], spans[0]),
                                     writers[1].copy(srcs[1], spans[1]),
                                     writers[2].copy(srcs[2], spans[2]),
                                     writers[3].copy(srcs[3], spans[3]),
                                     writers[4].copy(srcs[4], edges))
                    if hit is not None:
                        pass  # its rows were copied from the previous index
                    elif child is not None:
                        child.add(rblob)
                    elif writer is not None:
                        if defer:  # held for finish_stream
                            st.pending.append(rblob)
                        else:  # written now: nothing held (at 100,000 entities, 0.4 GiB)
                            writer.add(pickle.loads(rblob))
                    st.pinyin.update(pinyin)
                    st.count += count
                else:
                    st.complete = False
            st.entries[shown[i]] = (sha, bspan, new_spans, stamp,
                                    kind if new_spans is not None else None)
        if st.feed is not None:
            st.feed.end()
        if child is not None and st.complete:
            child.prepare()  # beside the checks across files
        if digest:
            assert parts is not None
            if (st.complete and unique and not st.problems and len(tallies) == len(kinds)
                    and links_pass(digests, kinds, onto)):
                st.tallies = tallies
            else:  # something to say: read the entities, and check them the usual way
                for i, (pid, (off, n)) in blob_at.items():
                    ent, _, _, pinyin = pickle.loads(os.pread(parts.of(pid)[5], n, off))
                    entities[i] = ent
                    st.pinyin.update(pinyin)
    if parts is not None:  # the workers are gone: no part file is written or made any more
        parts.unlink()
    st.old_blobs = out_dir / _BLOBS_PATH
    st.universe = universe_of(pairs)
    # the same ids and types as when the cached files passed the checks across files: their
    # links need no check
    st.same_universe = old_universe == st.universe
    for i in range(len(paths)):
        if present[i]:
            hit = hits.get(i)
            if hit is not None:  # read from the previous blobs when asked for
                st.lazy[len(st.loaded)] = hit[1]
                if st.same_universe:
                    st.checked.append(len(st.loaded))
            st.loaded.append(entities[i])
    if same_files and len(before) == len(todo):
        changed = [(b, entities[i]) for b, i in zip(before, todo, strict=True)]
        if all(b is not None and e is not None for b, e in changed):
            st.changes = changed  # type: ignore[assignment]


def _previous(blobs: list[Span], path: Path) -> list[Entity | None]:
    """The entities of the changed files as the cache holds them (the map replaces their
    records), and the pinyin keys of their names: an edit that leaves the names alone needs
    no pinyin computed (nor pypinyin loaded, about 0.15 s)."""
    from .names import PINYIN_KEYS

    out: list[Entity | None] = []
    try:
        with open(path, "rb") as f:
            for off, n in blobs:
                f.seek(off)
                ent, _, _, pinyin = _load_cached(f.read(n))
                PINYIN_KEYS.update(pinyin)
                out.append(ent)
    except (OSError, CacheUnusable, ValueError, TypeError):  # the cache is read again below,
        return []                                         # and a damaged one is not used
    return out


def _abandon_index(st: Streamed, tmp: Path, *, failed: bool) -> None:
    """An index left incomplete is closed and removed (the build writes it the usual way, or
    stops)."""
    if st.index is not None and (failed or not st.complete):
        st.index.abandon()
        st.index = None
        (tmp / INDEX_NAME).unlink(missing_ok=True)


def pack(st: Streamed) -> None:
    """Pickle the cache's entries now (at 100,000 files, 0.5 s), while the index is being
    finished elsewhere: :func:`save` writes them."""
    entries: dict[str, Entry] = st.entries
    if not st.complete:
        entries = {k: (v[0], v[1], None, v[3], None) for k, v in st.entries.items()}
    st.packed = pickle.dumps(entries, PROTOCOL)


def save(folder: Path, onto: Ontology, graph_dir: Path, st: Streamed) -> None:
    """Write the cache of a build whose outputs are complete in ``folder``."""
    if st.packed is None:
        pack(st)
    assert st.packed is not None
    write_cache(folder, cache_header(onto, graph_dir), st.packed, st.edges_at, st.universe,
                st.started, st.summary)
    save_ontology(onto, folder / CACHE_DIR)
