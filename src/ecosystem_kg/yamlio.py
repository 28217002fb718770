"""Safe YAML reading that remembers where every value came from.

The file is composed into a node tree with libyaml's C parser when it is available (the
pure-Python parser otherwise), never constructed with arbitrary tags: only the plain YAML
types (mappings, sequences, strings, numbers, booleans, null, timestamps) are accepted, so
nothing a file says can run as code. Mappings become :class:`LMap` and sequences
:class:`LList`, which carry the location of the container and of each key and item.
Timestamps are kept as the text written (``2026-01-27``): dates are validated later at the
precision the author gave.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from .errors import Loc, Problem, SourceLocation, at

try:  # libyaml is about 7x faster than the pure-Python parser
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

MAX_FILE_BYTES = 1 << 20  # 1 MiB: entity files are small; anything larger is a mistake
MAX_DEPTH = 32  # entity files nest 4 levels deep; deeper structures are rejected early
# libyaml composes nodes recursively and crashes on nesting about 100,000 deep. Nesting needs a
# '[', '{' or '- ' per level (indentation alone cannot go deep within MAX_FILE_BYTES), so files
# with few of those are safe to compose; others are first scanned event by event.
DEEP_SCAN_OVER = 2000

_T = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_T + "str", _T + "int", _T + "float", _T + "bool", _T + "null", _T + "timestamp"}
_constructor = yaml.constructor.SafeConstructor()
_IMPLICIT = {k: tuple(v) for k, v in _Loader.yaml_implicit_resolvers.items()}


_IMPLICIT_GET = _IMPLICIT.get
_SCALAR_NODE, _SEQUENCE_NODE = yaml.ScalarNode, yaml.SequenceNode
_STR_TAG, _SEQ_TAG, _MAP_TAG = _T + "str", _T + "seq", _T + "map"


class _EntityLoader(_Loader):
    """The safe loader with PyYAML's tag resolution done in fewer steps: the parser asks for
    the tag of every node, and PyYAML's general resolver (path resolvers, wildcard resolvers)
    is a large part of reading an entity file. Same tags: the standard implicit resolvers,
    looked up by first character, and the default tags otherwise."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is _SCALAR_NODE:
            if implicit[0]:
                for tag, regexp in _IMPLICIT_GET(value[:1], ()):
                    if regexp.match(value):
                        return tag  # type: ignore[no-any-return]
            return _STR_TAG
        return _SEQ_TAG if kind is _SEQUENCE_NODE else _MAP_TAG

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass


# the shortcut holds only for PyYAML's standard set-up (no path or wildcard resolvers)
_COMPOSE_LOADER = (_Loader if _Loader.yaml_path_resolvers or None in _IMPLICIT
                   else _EntityLoader)


class LMap(dict[str, Any]):
    """A mapping with the locations of itself, its keys and its values."""

    loc: Loc
    key_locs: dict[str, Loc]
    val_locs: dict[str, Loc]

    def kloc(self, key: str) -> Loc:
        return self.key_locs.get(key, self.loc)

    def vloc(self, key: str) -> Loc:
        return self.val_locs.get(key, self.loc)


class LList(list[Any]):
    """A sequence with the locations of itself and of each item."""

    loc: Loc
    item_locs: list[Loc]

    def iloc(self, i: int) -> Loc:
        return self.item_locs[i] if i < len(self.item_locs) else self.loc


class YamlFileError(Exception):
    """A file could not be read as YAML; carries the located problems."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


def _loc(file: str, mark: Any) -> SourceLocation:
    return SourceLocation(file, mark.line + 1, mark.column + 1)


def _pos_of_offset(text: bytes, offset: int) -> tuple[int, int]:
    line = text.count(b"\n", 0, offset) + 1
    col = offset - (text.rfind(b"\n", 0, offset) + 1) + 1
    return line, col


def decode(raw: bytes, file: str) -> str:
    """Decode a file's bytes as UTF-8, or raise a located error saying what to do."""
    if not raw.strip():
        raise YamlFileError([Problem(SourceLocation(file), "file is empty; write one entity "
                                     "as a YAML mapping (see the README's data format)", "empty")])
    if len(raw) > MAX_FILE_BYTES:
        raise YamlFileError([Problem(SourceLocation(file), f"file is {len(raw):,} bytes; entity "
                                     f"files are limited to {MAX_FILE_BYTES:,} bytes: split "
                                     "or shorten it", "too-large")])
    if raw.startswith(b"\xef\xbb\xbf"):
        raise YamlFileError([Problem(SourceLocation(file), "file starts with a byte-order mark; "
                                     "save it as UTF-8 without BOM", "bom")])
    nul = raw.find(b"\x00")
    if nul >= 0:
        line, col = _pos_of_offset(raw, nul)
        raise YamlFileError([Problem(SourceLocation(file, line, col), "file contains NUL bytes "
                                     "and looks binary; entity files are UTF-8 text", "binary")])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _pos_of_offset(raw, exc.start)
        raise YamlFileError([Problem(SourceLocation(file, line, col),
                                     f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x}); "
                                     "re-save it as UTF-8", "encoding")]) from None


def load_yaml(text: str, file: str) -> Any:
    """Parse one YAML document into located plain values, or raise :class:`YamlFileError`."""
    if text.count("[") + text.count("{") + text.count("- ") > DEEP_SCAN_OVER:
        _check_depth(text, file)
    try:
        node = yaml.compose(text, Loader=_COMPOSE_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = _loc(file, mark) if mark is not None else SourceLocation(file)
        what = exc.problem or "invalid YAML"
        if "expected a single document" in str(exc):
            what = "several YAML documents in one file; keep one entity per file (remove '---')"
        elif exc.context:
            what = f"{exc.context}, {what}"
        msg = f"YAML syntax error: {what}"
        lines = text.splitlines()
        if 0 < loc.line <= len(lines) and lines[loc.line - 1][loc.col - 1:loc.col] == "\t":
            msg += " (a tab character; indent with spaces, not tabs)"
        raise YamlFileError([Problem(loc, msg, "yaml")]) from None
    except yaml.reader.ReaderError as exc:  # control characters and the like
        pos = exc.position
        line = text.count("\n", 0, pos) + 1
        col = pos - (text.rfind("\n", 0, pos) + 1) + 1
        ch = exc.character if isinstance(exc.character, str) else chr(exc.character)
        raise YamlFileError([Problem(SourceLocation(file, line, col),
                                     f"character U+{ord(ch):04X} is not allowed in YAML "
                                     f"({exc.reason}); remove it", "yaml")]) from None
    except yaml.YAMLError as exc:  # anything else the parser reports
        mark = getattr(exc, "problem_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        raise YamlFileError([Problem(SourceLocation(file, line, col),
                                     f"YAML error: {exc}", "yaml")]) from None
    except RecursionError:
        raise YamlFileError([Problem(SourceLocation(file), f"YAML nesting is too deep (over "
                                     f"{MAX_DEPTH} levels)", "depth")]) from None
    if node is None:
        raise YamlFileError([Problem(SourceLocation(file), "file holds no YAML value; write one "
                                     "entity as a YAML mapping", "empty")])
    problems: list[Problem] = []
    # An alias needs a '*' in the text, and a control character an escape (the reader refuses
    # raw ones): files without them skip those checks on every value.
    value = _convert(node, file, problems, set() if "*" in text else None, 0,
                     ctrl="\\" in text)
    if problems:
        raise YamlFileError(problems)
    return value


def _check_depth(text: str, file: str, loader: Any = None) -> None:
    depth = 0
    try:
        for event in yaml.parse(text, Loader=loader or _Loader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise YamlFileError([Problem(_loc(file, event.start_mark), "YAML nesting is "
                                                 f"too deep (over {MAX_DEPTH} levels)", "depth")])
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError as exc:
        if loader is None and "nesting depth" in str(exc):
            # libyaml's own nesting limit fired before our event reached MAX_DEPTH (it reads
            # ahead): find the place with the pure-Python parser, which stops at MAX_DEPTH.
            _check_depth(text, file, yaml.SafeLoader)
        return  # the composer reports syntax errors with their location


_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")


_STR = _T + "str"
_Scalar = yaml.ScalarNode


def _convert(node: Any, file: str, problems: list[Problem], seen: set[int] | None, depth: int,
             loc: Loc | None = None, *, ctrl: bool = True) -> Any:
    """Located plain values of a node tree. ``seen`` tracks nodes met (aliases), None when
    the text has none; ``ctrl``: check text values for control characters."""
    if loc is None:
        mark = node.start_mark
        loc = (file, mark.line + 1, mark.column + 1)
    if seen is not None:
        if id(node) in seen:
            problems.append(Problem(loc, "YAML anchors and aliases are not supported in entity "
                                    "files; write the value out", "alias"))
            return None
        seen.add(id(node))
    if depth > MAX_DEPTH:
        problems.append(Problem(loc, f"YAML nesting is too deep (over {MAX_DEPTH} levels)",
                                "depth"))
        return None
    if isinstance(node, yaml.ScalarNode):
        tag = node.tag
        if tag not in _SCALAR_TAGS:
            problems.append(Problem(loc, f"unsupported YAML tag {_short_tag(tag)!r}; entity "
                                    "files hold plain data only (remove the tag)", "tag"))
            return None
        if tag == _STR or tag == _T + "timestamp":
            if ctrl:
                bad = _CONTROL_RE.search(node.value)
                if bad:
                    problems.append(Problem(loc, f"control character U+{ord(bad.group()):04X} "
                                            "in text (written as an escape); remove it",
                                            "control"))
                    return None
            return node.value
        try:
            return _constructor.construct_object(node, deep=False)
        except (ValueError, yaml.YAMLError):
            return node.value
    # plain text values need no call of their own (nor a depth check, below the limit)
    plain = seen is None and not ctrl and depth < MAX_DEPTH
    if isinstance(node, yaml.SequenceNode):
        if node.tag != _T + "seq":
            problems.append(Problem(loc, f"unsupported YAML tag {_short_tag(node.tag)!r}; "
                                    "entity files hold plain data only (remove the tag)", "tag"))
            return None
        out = LList()
        out.loc = loc
        item_locs: list[Loc] = []
        out.item_locs = item_locs
        for item in node.value:
            mark = item.start_mark
            iloc = (file, mark.line + 1, mark.column + 1)
            item_locs.append(iloc)
            if plain and item.tag == _STR and type(item) is _Scalar:
                out.append(item.value)
            else:
                out.append(_convert(item, file, problems, seen, depth + 1, iloc, ctrl=ctrl))
        return out
    if isinstance(node, yaml.MappingNode):
        if node.tag != _T + "map":
            problems.append(Problem(loc, f"unsupported YAML tag {_short_tag(node.tag)!r}; "
                                    "entity files hold plain data only (remove the tag)", "tag"))
            return None
        m = LMap()
        m.loc = loc
        key_locs: dict[str, Loc] = {}
        val_locs: dict[str, Loc] = {}
        m.key_locs = key_locs
        m.val_locs = val_locs
        for knode, vnode in node.value:
            mark = knode.start_mark
            kloc = (file, mark.line + 1, mark.column + 1)
            if plain and knode.tag == _STR and type(knode) is _Scalar:
                key = knode.value
            else:
                if knode.tag == _T + "merge":
                    problems.append(Problem(kloc, "YAML merge keys ('<<') are not supported "
                                            "in entity files; write the keys out", "alias"))
                    continue
                if not isinstance(knode, yaml.ScalarNode):
                    problems.append(Problem(kloc, "mapping keys must be plain text", "shape"))
                    continue
                key = _convert(knode, file, problems, seen, depth + 1, kloc, ctrl=ctrl)
                key = knode.value if key is None else str(key)
            if key in key_locs:
                first = key_locs[key]
                problems.append(Problem(kloc, f"duplicate key {key!r}; first defined at "
                                        f"{at(first)} (keep one)", "duplicate-key"))
                continue
            key_locs[key] = kloc
            mark = vnode.start_mark
            val_locs[key] = vloc = (file, mark.line + 1, mark.column + 1)
            if plain and vnode.tag == _STR and type(vnode) is _Scalar:
                m[key] = vnode.value
            else:
                m[key] = _convert(vnode, file, problems, seen, depth + 1, vloc, ctrl=ctrl)
        return m
    problems.append(Problem(loc, "unsupported YAML node", "shape"))  # pragma: no cover
    return None


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_T):] if tag.startswith(_T) else tag
