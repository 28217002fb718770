"""Load entity files: YAML -> :class:`Entity` objects that remember their source locations.

This stage checks the *shape* of each file (top-level mapping, known fields, field types); the
ontology-aware checks (types, relations, domains, ranges, references, units) are in
:mod:`ecosystem_kg.validate`. Loading one file depends on nothing but its bytes, so files can be
loaded in parallel and cached by content hash.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from operator import attrgetter
from pathlib import Path
from typing import Any, TypeVar

from .errors import Loc, Problem, SourceLocation
from .yamlio import MAX_FILE_BYTES, LList, LMap, YamlFileError, decode, load_yaml

ID_RE = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
ENTITY_FIELDS = ("id", "type", "name", "aliases", "description", "wikidata", "source", "note",
                 "attributes", "relations")
SOURCE_FIELDS = ("id", "type", "title", "title_en", "publisher", "publisher_en", "date",
                 "authors", "language", "url", "file", "note")
RELATION_FIELDS = ("rel", "to", "date", "start", "end", "source", "note", "role", "amount")
FACT_FIELDS = ("value", "unit", "date", "start", "end", "source", "note")
SOURCE_TYPE = "Source"


_C = TypeVar("_C", bound=type)


def _pickled_by_fields(cls: _C) -> _C:
    """Pickle instances as ``cls(*fields)``: one call each way, where a slotted dataclass's
    own state functions loop over its fields in Python (a build pickles every entity once,
    and a rebuild unpickles them all from the cache)."""
    names = [f.name for f in fields(cls)]
    assert len(names) > 1  # (attrgetter of one name gives the value, not a tuple)
    get = attrgetter(*names)

    def __reduce__(self: Any) -> tuple[type, tuple[Any, ...]]:
        return cls, get(self)

    cls.__reduce__ = __reduce__  # type: ignore[assignment,method-assign]
    return cls


@_pickled_by_fields
@dataclass(slots=True)
class Quantity:
    value: Any
    unit: str | None
    loc: Loc
    unit_loc: Loc | None = None


@dataclass(slots=True)
class Dated:
    """Fields shared by relations and attribute facts."""

    date: str | None = None
    start: str | None = None
    end: str | None = None
    sources: list[str] = field(default_factory=list)
    note: str | None = None
    date_locs: dict[str, Loc] = field(default_factory=dict)
    source_locs: list[Loc] = field(default_factory=list)


@_pickled_by_fields
@dataclass(slots=True)
class Fact(Dated):
    """One attribute value of an entity."""

    prop: str = ""
    value: Any = None
    unit: str | None = None
    loc: Loc = ("", 1, 1)
    value_loc: Loc = ("", 1, 1)
    unit_loc: Loc | None = None
    index: int = 0  # position among the entity's facts of this attribute (1-based)


@_pickled_by_fields
@dataclass(slots=True)
class Relation(Dated):
    """One relation statement, written in the file of its subject."""

    rel: str = ""
    target: str = ""
    role: str | None = None
    amount: Quantity | None = None
    loc: Loc = ("", 1, 1)
    rel_loc: Loc = ("", 1, 1)
    target_loc: Loc = ("", 1, 1)
    index: int = 0  # position among the entity's relations with the same rel and target


@_pickled_by_fields
@dataclass(slots=True)
class Entity:
    id: str
    type: str
    path: str
    name_zh: str = ""
    name_en: str = ""
    aliases: list[str] = field(default_factory=list)
    description: dict[str, str] = field(default_factory=dict)
    wikidata: str | None = None
    sources: list[str] = field(default_factory=list)
    note: str | None = None
    facts: list[Fact] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # source-only fields (title, ...)
    locs: dict[str, Loc] = field(default_factory=dict)  # field -> value location
    source_locs: list[Loc] = field(default_factory=list)

    @property
    def is_source(self) -> bool:
        return self.type == SOURCE_TYPE

    @property
    def label(self) -> str:
        return self.name_zh or self.name_en or self.id

    def loc(self, key: str) -> Loc:
        return self.locs.get(key) or self.locs["<file>"]


def display_path(path: Path, root: Path) -> str:
    """Path shown in messages: relative to the current directory when possible."""
    try:
        return os.path.relpath(path)
    except ValueError:  # pragma: no cover - different drive on Windows
        return str(path)


def iter_entity_files(graph_dir: Path) -> tuple[list[Path], list[Problem]]:
    """All ``*.yaml``/``*.yml`` files under the graph folder, sorted; plus problems with names."""
    paths, _, problems = entity_files(graph_dir)
    return paths, problems


def entity_files(graph_dir: Path) -> tuple[list[Path], list[str], list[Problem]]:
    """:func:`iter_entity_files`, with each file's path inside the graph folder
    ("companies/metax.yaml"). Hidden files and folders are skipped, folder links are not
    followed, and a file link must point inside the graph folder."""
    paths, rels, problems = entity_file_names(graph_dir)
    return [Path(p) for p in paths], rels, problems


def entity_file_names(graph_dir: Path) -> tuple[list[str], list[str], list[Problem]]:
    """:func:`entity_files` with the paths as text (what a build needs of them: a
    ``Path`` per file is a good part of listing 100,000 files)."""
    found: list[tuple[str, str]] = []
    problems: list[Problem] = []
    root = graph_dir.resolve()
    todo = [(os.fspath(graph_dir), "")]
    while todo:
        folder, rel = todo.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                if not entry.is_symlink():
                    todo.append((entry.path, rel + name + "/"))
                continue
            if not name.endswith((".yaml", ".yml")):
                continue
            p = entry.path
            if entry.is_symlink():
                target = Path(p).resolve()
                if not target.is_relative_to(root):
                    problems.append(Problem(SourceLocation(display_path(Path(p), graph_dir)),
                                            f"symbolic link points outside the graph folder "
                                            f"({target}); copy the file in instead", "symlink"))
                    continue
            found.append((rel + name, p))
    found.sort(key=lambda f: f[0])
    return [p for _, p in found], [r for r, _ in found], problems


def display_paths(graph_dir: Path, rels: list[str]) -> list[str]:
    """:func:`display_path` of each file of :func:`entity_files`. When the graph folder is in
    the current directory (the usual case), that is its path joined with the file's path
    inside it, with no per-file work on the whole path."""
    base, cwd = os.path.abspath(graph_dir), os.getcwd()
    if base == cwd:
        return [r.replace("/", os.sep) for r in rels]
    if base.startswith(cwd.rstrip(os.sep) + os.sep):
        head = base[len(cwd.rstrip(os.sep)) + 1:]
        return [os.path.join(head, r.replace("/", os.sep)) for r in rels]
    if not (cwd + os.sep).startswith(base.rstrip(os.sep) + os.sep):
        # elsewhere (not around the current directory): relpath of the folder, then the file
        try:
            head = os.path.relpath(base)
        except ValueError:  # pragma: no cover - different drive on Windows
            head = base
        return [os.path.join(head, r.replace("/", os.sep)) for r in rels]
    return [display_path(graph_dir / r, graph_dir) for r in rels]


def load_file(path: Path, shown: str | None = None) -> tuple[Entity | None, list[Problem]]:
    """Read one entity file. Returns the entity (None if unusable) and its shape problems."""
    file = shown or str(path)
    raw, problems = read_entity_file(path, file)
    if raw is None:
        return None, problems
    return parse_entity(raw, file, path.stem)


def entity_dates(e: Entity) -> set[str]:
    """Every date, start and end the entity's relations and facts carry."""
    return {x for d in [*e.relations, *e.facts] for x in (d.date, d.start, d.end) if x}


# what the build's summary needs of one entity: its type, how many relations and facts it has,
# its dates (sorted) and, for a source, its date
Tally = tuple[str, int, int, tuple[str, ...], str | None]


def tally(e: Entity) -> Tally:
    """What :func:`~ecosystem_kg.pipeline.summary` counts of one entity."""
    if e.is_source:
        return e.type, 0, 0, (), source_date(e)
    return e.type, len(e.relations), len(e.facts), tuple(sorted(entity_dates(e))), None


def source_date(e: Entity) -> str | None:
    """A source's date (None for other entities, or a source without one)."""
    return str(e.extra["date"]) if e.is_source and e.extra.get("date") else None


def latest_source_date(entities: Iterable[Entity]) -> str | None:
    """The latest date of the sources among ``entities``."""
    return max((d for e in entities if (d := source_date(e)) is not None), default=None)


def read_entity_file(path: Path, file: str) -> tuple[bytes | None, list[Problem]]:
    """The bytes of one entity file, or None and the problem that stopped the reading."""
    raw, problems, _ = read_stamped(path, file)
    return raw, problems


# what identifies a file's state without reading it: size, modification and change times (ns),
# inode (as git's index does)
Stamp = tuple[int, int, int, int]


def stamp_of(st: os.stat_result) -> Stamp:
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def read_stamped(path: str | Path, file: str) -> tuple[bytes | None, list[Problem], Stamp | None]:
    """:func:`read_entity_file`, and the file's stamp as it was before the reading."""
    try:  # (os.read, not a file object: a tenth of the time it takes to read an entity file)
        fd = os.open(path, os.O_RDONLY)
        try:
            st = os.fstat(fd)
            if st.st_size > MAX_FILE_BYTES:  # say so without reading it
                return None, [Problem(SourceLocation(file), f"file is {st.st_size:,} bytes; "
                                      f"entity files are limited to {MAX_FILE_BYTES:,} bytes: "
                                      "split or shorten it", "too-large")], None
            data = os.read(fd, st.st_size + 1)
            if len(data) != st.st_size:  # a short read, or the file changed: read to the end
                chunks = [data]
                while chunk := os.read(fd, 1 << 16):
                    chunks.append(chunk)
                data = b"".join(chunks)
            return data, [], stamp_of(st)
        finally:
            os.close(fd)
    except OSError as exc:
        return None, [Problem(SourceLocation(file), f"cannot read file: {exc.strerror}",
                              "io")], None


def parse_entity(raw: bytes, file: str, stem: str) -> tuple[Entity | None, list[Problem]]:
    try:
        text = decode(raw, file)
        doc = load_yaml(text, file)
    except YamlFileError as exc:
        return None, exc.problems
    problems: list[Problem] = []
    if not isinstance(doc, LMap):
        kind = "a list" if isinstance(doc, LList) else "a single value"
        return None, [Problem(SourceLocation(file), f"the file holds {kind}; an entity file "
                              "must be a mapping with id, type, name, ... (see the README)",
                              "shape")]
    return _entity_from_map(doc, file, stem, problems), problems


def _text(m: LMap, key: str, problems: list[Problem], *, required: bool = False,
          prefix: str = "") -> str | None:
    v = m.get(key)
    if v is None:
        if required:
            problems.append(Problem(m.loc, f"missing required field {prefix + key!r}",
                                    "missing"))
        return None
    if isinstance(v, bool) or isinstance(v, (LMap, LList)):
        problems.append(Problem(m.vloc(key), f"field {key!r} must be text", "shape"))
        return None
    s = str(v).strip()
    if not s and required:
        problems.append(Problem(m.vloc(key), f"field {key!r} is empty", "missing"))
        return None
    return s


# What the loops below do for every value, written out for the usual case and left to the
# helpers above otherwise (the same values and the same problems, in the same order):
# ``v.strip()`` of a ``str`` is ``str(v).strip()``, the same object when nothing is stripped.
# The maps and lists come from :func:`~ecosystem_kg.yamlio.load_yaml`, which gives every key
# of a map a value location and every item of a list a location, in their order.


def _str_list(m: LMap, key: str, problems: list[Problem]) -> tuple[list[str], list[Loc]]:
    v = m.get(key)
    if v is None:
        return [], []
    if isinstance(v, LList):
        if len(v.item_locs) == len(v):
            try:  # only text has strip() among YAML values: the usual list of text
                return [item.strip() for item in v], v.item_locs[:]
            except AttributeError:
                pass
        out, locs = [], []
        for i, item in enumerate(v):
            if item is None or isinstance(item, (LMap, LList, bool)):
                problems.append(Problem(v.iloc(i), f"items of {key!r} must be text", "shape"))
                continue
            out.append(str(item).strip())
            locs.append(v.iloc(i))
        return out, locs
    if isinstance(v, (LMap, bool)):
        problems.append(Problem(m.vloc(key), f"field {key!r} must be text or a list of text",
                                "shape"))
        return [], []
    return [str(v).strip()], [m.vloc(key)]


def _date(m: LMap, key: str) -> str | None:
    v = m.get(key)
    if v is None:
        return None
    return str(v).strip()


_KEY_SETS: dict[tuple[str, ...], frozenset[str]] = {}


def _unknown_fields(m: LMap, allowed: tuple[str, ...], what: str, problems: list[Problem]) -> None:
    known = _KEY_SETS.get(allowed)
    if known is None:
        known = _KEY_SETS[allowed] = frozenset(allowed)
    if m.keys() <= known:
        return
    from difflib import get_close_matches

    for key in m:
        if key not in allowed:
            hint = get_close_matches(key, allowed, n=1, cutoff=0.6)
            msg = f"unknown field {key!r} in {what}"
            msg += f"; did you mean {hint[0]!r}?" if hint else f"; allowed: {', '.join(allowed)}"
            problems.append(Problem(m.kloc(key), msg, "unknown-field"))


_NAME_FIELDS = ("zh", "en")
_DESCRIPTION_FIELDS = ("en", "zh")
_AMOUNT_FIELDS = ("value", "unit")
_ENTITY_KEYS = frozenset(ENTITY_FIELDS)
_RELATION_KEYS = frozenset(RELATION_FIELDS)
_FACT_KEYS = frozenset(FACT_FIELDS)
_NAME_KEYS = frozenset(_NAME_FIELDS)
_DESCRIPTION_KEYS = frozenset(_DESCRIPTION_FIELDS)


DatedFields = tuple[str | None, str | None, str | None, list[str], str | None, dict[str, Loc],
                    list[Loc]]


def _dated_fields(m: LMap, problems: list[Problem]) -> DatedFields:
    """The :class:`Dated` fields of a relation or fact written as the mapping ``m``, in the
    order of the dataclass."""
    get = m.get
    date = start = end = None
    date_locs: dict[str, Loc] = {}
    v = get("date")
    if v is not None:
        date = v.strip() if type(v) is str else str(v).strip()
        date_locs["date"] = m.val_locs.get("date", m.loc)
    v = get("start")
    if v is not None:
        start = v.strip() if type(v) is str else str(v).strip()
        date_locs["start"] = m.val_locs.get("start", m.loc)
    v = get("end")
    if v is not None:
        end = v.strip() if type(v) is str else str(v).strip()
        date_locs["end"] = m.val_locs.get("end", m.loc)
    sources, source_locs = _str_list(m, "source", problems)
    v = get("note")
    note = (None if v is None else v.strip() if type(v) is str
            else _text(m, "note", problems))
    return date, start, end, sources, note, date_locs, source_locs


def _entity_from_map(m: LMap, file: str, stem: str, problems: list[Problem]) -> Entity | None:
    get = m.get
    v = get("id")
    eid = s if type(v) is str and (s := v.strip()) else _text(m, "id", problems, required=True)
    v = get("type")
    etype = (s if type(v) is str and (s := v.strip())
             else _text(m, "type", problems, required=True))
    if eid is None or etype is None:
        return None
    locs: dict[str, Loc] = {"<file>": (file, 1, 1)}
    locs.update(m.val_locs)  # m.vloc(k) for k in m
    if etype == SOURCE_TYPE:
        ent = Entity(id=eid, type=etype, path=file, locs=locs)
        _unknown_fields(m, SOURCE_FIELDS, "a source", problems)
        title = _text(m, "title", problems, required=True)
        ent.name_zh = ent.name_en = title or eid
        for key in ("title", "title_en", "publisher", "publisher_en", "language", "url", "file",
                    "note"):
            val = _text(m, key, problems)
            if val is not None:
                ent.extra[key] = val
        ent.name_en = ent.extra.get("title_en", ent.name_en)
        d = _date(m, "date")
        if d is not None:
            ent.extra["date"] = d
        ent.extra["authors"] = _str_list(m, "authors", problems)[0]
        ent.note = ent.extra.get("note")
        return ent

    if not m.keys() <= _ENTITY_KEYS:
        _unknown_fields(m, ENTITY_FIELDS, "an entity", problems)
    name = get("name")
    name_zh = name_en = ""
    if isinstance(name, LMap):
        if not name.keys() <= _NAME_KEYS:
            _unknown_fields(name, _NAME_FIELDS, "'name'", problems)
        v = name.get("zh")
        name_zh = (s if type(v) is str and (s := v.strip())
                   else _text(name, "zh", problems, required=True, prefix="name.") or "")
        v = name.get("en")
        name_en = (s if type(v) is str and (s := v.strip())
                   else _text(name, "en", problems, required=True, prefix="name.") or "")
        locs["name.zh"] = name.vloc("zh")
        locs["name.en"] = name.vloc("en")
    elif name is None:
        problems.append(Problem(m.loc, "missing required field 'name' (with zh and en)",
                                "missing"))
    else:
        problems.append(Problem(m.vloc("name"), "field 'name' must be a mapping with zh and en",
                                "shape"))
    aliases = _str_list(m, "aliases", problems)[0]
    description: dict[str, str] = {}
    desc = get("description")
    if isinstance(desc, LMap):
        if not desc.keys() <= _DESCRIPTION_KEYS:
            _unknown_fields(desc, _DESCRIPTION_FIELDS, "'description'", problems)
        for lang in _DESCRIPTION_FIELDS:
            v = desc.get(lang)
            t = v.strip() if type(v) is str else _text(desc, lang, problems)
            if t:
                description[lang] = t
    elif desc is not None:
        t = _text(m, "description", problems)
        if t:
            description["zh" if _has_cjk(t) else "en"] = t
    v = get("wikidata")
    wikidata = (None if v is None else v.strip() if type(v) is str
                else _text(m, "wikidata", problems))
    sources, source_locs = _str_list(m, "source", problems)
    v = get("note")
    note = None if v is None else v.strip() if type(v) is str else _text(m, "note", problems)

    facts: list[Fact] = []
    attrs = get("attributes")
    if isinstance(attrs, LMap):
        for prop in attrs:
            _facts(attrs, prop, facts, problems)
    elif attrs is not None:
        problems.append(Problem(m.vloc("attributes"), "'attributes' must be a mapping of "
                                "attribute name to value(s)", "shape"))

    relations: list[Relation] = []
    rels = get("relations")
    if isinstance(rels, LList):
        counter: dict[tuple[str, str], int] = {}
        item_locs = rels.item_locs
        n_locs = len(item_locs)
        for i, item in enumerate(rels):
            loc = item_locs[i] if i < n_locs else rels.loc
            if not isinstance(item, LMap):
                problems.append(Problem(loc, "each relation must be a mapping with 'rel' and "
                                        "'to'", "shape"))
                continue
            if not item.keys() <= _RELATION_KEYS:
                _unknown_fields(item, RELATION_FIELDS, "a relation", problems)
            iget = item.get
            v = iget("rel")
            rel = (s if type(v) is str and (s := v.strip())
                   else _text(item, "rel", problems, required=True))
            v = iget("to")
            to = (s if type(v) is str and (s := v.strip())
                  else _text(item, "to", problems, required=True))
            if rel is None or to is None:
                continue
            val_locs = item.val_locs
            iloc = item.loc
            date, start, end, rsources, rnote, date_locs, rsource_locs = (
                _dated_fields(item, problems))
            v = iget("role")
            role = (None if v is None else v.strip() if type(v) is str
                    else _text(item, "role", problems))
            amount = None
            amt = iget("amount")
            if isinstance(amt, LMap):
                _unknown_fields(amt, _AMOUNT_FIELDS, "'amount'", problems)
                amount = Quantity(amt.get("value"), _text(amt, "unit", problems),
                                  amt.vloc("value"), amt.vloc("unit") if "unit" in amt
                                  else None)
            elif amt is not None:
                problems.append(Problem(item.vloc("amount"), "'amount' must be a mapping with "
                                        "value and unit", "shape"))
            pair = (rel, to)
            index = counter[pair] = counter.get(pair, 0) + 1
            relations.append(Relation(date, start, end, rsources, rnote, date_locs,
                                      rsource_locs, rel, to, role, amount, loc,
                                      val_locs.get("rel", iloc), val_locs.get("to", iloc),
                                      index))
    elif rels is not None:
        problems.append(Problem(m.vloc("relations"), "'relations' must be a list of mappings "
                                "(- rel: ..., to: ...)", "shape"))
    return Entity(eid, etype, file, name_zh, name_en, aliases, description, wikidata, sources,
                  note, facts, relations, {}, locs, source_locs)


def _facts(attrs: LMap, prop: str, facts: list[Fact], problems: list[Problem]) -> None:
    v = attrs[prop]
    items: list[tuple[Any, Loc]]
    if isinstance(v, LList):
        items = [(x, v.iloc(i)) for i, x in enumerate(v)]
    else:
        items = [(v, attrs.vloc(prop))]
    for n, (item, loc) in enumerate(items, 1):
        floc = attrs.kloc(prop) if not isinstance(v, LList) else loc
        if isinstance(item, LMap):
            if not item.keys() <= _FACT_KEYS:
                _unknown_fields(item, FACT_FIELDS, f"attribute {prop!r}", problems)
            value = item.get("value")
            if value is None:
                problems.append(Problem(item.loc, f"attribute {prop!r} has no 'value'",
                                        "missing"))
                continue
            val_locs = item.val_locs
            u = item.get("unit")
            unit = None if u is None else u.strip() if type(u) is str else _text(item, "unit",
                                                                                 problems)
            unit_loc = val_locs.get("unit", item.loc) if "unit" in item else None
            date, start, end, sources, note, date_locs, source_locs = (
                _dated_fields(item, problems))
            facts.append(Fact(date, start, end, sources, note, date_locs, source_locs, prop,
                              value, unit, floc, val_locs.get("value", item.loc), unit_loc, n))
        elif isinstance(item, LList) or item is None:
            problems.append(Problem(loc, f"attribute {prop!r} must be a value or a mapping "
                                    "with value, unit, date, source", "shape"))
            continue
        else:
            facts.append(Fact(prop=prop, value=item, loc=floc, value_loc=loc, index=n))


_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def _has_cjk(s: str) -> bool:
    return bool(_CJK.search(s))
