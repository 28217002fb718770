"""ecosystem-kg: a knowledge graph of the AI-chip and compute ecosystem.

Library entry points (the CLI is a thin layer over these)::

    from ecosystem_kg import build, check, compile_graph
    report = build(Path("graph"), Path("build"))
    index = open_index(Path("graph"), Path("build"))   # find, show, neighbors, path, rank, ...
    index.neighbors("沐曦")
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = [
    "Ambiguous",
    "BuildError",
    "EkgError",
    "NotFound",
    "Problem",
    "QueryError",
    "SourceLocation",
    "SparqlRefused",
    "ValidationFailed",
    "__version__",
    "build",
    "check",
    "compile_graph",
    "load_graph",
    "open_index",
]

from .errors import (
    Ambiguous,
    BuildError,
    EkgError,
    NotFound,
    Problem,
    QueryError,
    SourceLocation,
    SparqlRefused,
    ValidationFailed,
)


def __getattr__(name: str) -> Any:
    # The pipeline imports PyYAML and friends: load it only when asked for.
    if name in ("build", "check", "compile_graph", "load_graph"):
        from . import pipeline as _pipeline

        return getattr(_pipeline, name)
    if name == "open_index":
        from .query import open_index

        return open_index
    raise AttributeError(name)
