from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
MINI = FIXTURES / "mini" / "graph"
SHIPPED = ROOT / "graph"


def run_ekg(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real `ekg` entry point in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "ecosystem_kg", *args], cwd=cwd,
                          capture_output=True, text=True, env=full_env, timeout=timeout)


@pytest.fixture()
def mini(tmp_path: Path) -> Path:
    """A private copy of the mini fixture graph (tests may edit it)."""
    dst = tmp_path / "graph"
    shutil.copytree(MINI, dst)
    return dst


@pytest.fixture(scope="session")
def mini_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The mini graph built once (no HTML) for read-only query tests."""
    from ecosystem_kg import build

    base = tmp_path_factory.mktemp("mini")
    graph = base / "graph"
    shutil.copytree(MINI, graph)
    out = base / "build"
    build(graph, out, html=False)
    return graph, out
