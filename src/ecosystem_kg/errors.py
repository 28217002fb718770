"""Exceptions and located problems.

Exception tree::

    EkgError                    base class; the CLI prints it and exits 1
    ├── ValidationFailed        one or more located Problems in the graph folder
    ├── BuildError              writing outputs failed (the previous build is left as it was)
    ├── QueryError              a query could not be answered
    │   ├── NotFound            no entity matches the name given
    │   └── Ambiguous           several entities match the name given
    ├── SparqlRefused           a SPARQL query asks for something the sandbox forbids
    └── RemoteError             a SPARQL endpoint or store could not be reached or said no
"""

from __future__ import annotations

from dataclasses import dataclass, field


class SourceLocation(tuple[str, int, int]):
    """A place in a file: 1-based line and column.

    An immutable ``(file, line, col)`` tuple (ordered and hashed as one, and equal to the plain
    tuple :data:`Loc` that loaded entities keep), with named fields: every
    :class:`Problem` carries one.
    """

    __slots__ = ()

    def __new__(cls, file: str, line: int = 1, col: int = 1) -> SourceLocation:
        return tuple.__new__(cls, (file, line, col))

    @property
    def file(self) -> str:
        return self[0]

    @property
    def line(self) -> int:
        return self[1]

    @property
    def col(self) -> int:
        return self[2]

    def __str__(self) -> str:
        return f"{self[0]}:{self[1]}:{self[2]}"

    def __repr__(self) -> str:
        return f"SourceLocation(file={self[0]!r}, line={self[1]!r}, col={self[2]!r})"

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        # unpickled by tuple.__new__ itself, without a Python-level call
        return tuple.__new__, (SourceLocation, tuple(self))


# A location as entities keep it: a plain ``(file, line, col)`` tuple. A loaded graph holds one
# for nearly every value; plain tuples are made, pickled and unpickled by the interpreter
# without a call into Python (a subclass such as SourceLocation costs one per location, and a
# build pickles every entity). A Problem turns its location into a SourceLocation.
Loc = tuple[str, int, int]


def at(loc: Loc) -> str:
    """A location as messages show it: ``file:line:col``."""
    return f"{loc[0]}:{loc[1]}:{loc[2]}"


@dataclass(frozen=True, order=True, init=False)
class Problem:
    """One validation problem, located in a file."""

    location: SourceLocation
    message: str
    code: str = field(default="invalid", compare=False)

    def __init__(self, location: Loc, message: str, code: str = "invalid") -> None:
        if type(location) is not SourceLocation:
            location = SourceLocation(*location)
        object.__setattr__(self, "location", location)
        object.__setattr__(self, "message", message)
        object.__setattr__(self, "code", code)

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class EkgError(Exception):
    """Base class of every error ecosystem-kg raises on purpose."""

    exit_code = 1


class ValidationFailed(EkgError):
    """The graph folder has problems; each one is located."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__(f"{len(self.problems)} problem(s) found")

    def report(self) -> str:
        lines = [str(p) for p in self.problems]
        n = len(self.problems)
        lines.append(f"{n} problem{'s' if n != 1 else ''} found; nothing was written.")
        return "\n".join(lines)


class BuildError(EkgError):
    """Outputs could not be written."""


class QueryError(EkgError):
    """A query could not be answered."""


class NotFound(QueryError):
    """No entity matches the name given."""

    def __init__(self, text: str, suggestions: list[tuple[str, str]]) -> None:
        self.text = text
        self.suggestions = suggestions
        msg = f"no entity matches {text!r}"
        if suggestions:
            msg += "; did you mean: " + ", ".join(f"{name} ({eid})" for eid, name in suggestions)
        super().__init__(msg)


class Ambiguous(QueryError):
    """Several entities match the name given."""

    def __init__(self, text: str, candidates: list[tuple[str, str]]) -> None:
        self.text = text
        self.candidates = candidates
        super().__init__(
            f"{text!r} is ambiguous; use one of these ids: "
            + ", ".join(f"{eid} ({name})" for eid, name in candidates)
        )


class SparqlRefused(EkgError):
    """The SPARQL query uses a feature the read-only sandbox refuses."""


class RemoteError(EkgError):
    """A remote SPARQL endpoint or graph store failed."""
