"""Cold-start figures of the query CLI, against the cost of importing typer.

Each command runs in a fresh process, several times; the median is reported. The baselines,
measured in the same run and venv:

* ``python -c "import typer"``
* a minimal typer app with one command

Usage::

    python benchmarks/bench_cli.py                 # the shipped graph and a 10,000-entity one
    python benchmarks/bench_cli.py --sizes 1000 --runs 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MINIMAL_APP = """
import typer
app = typer.Typer()
@app.command()
def hello(name: str) -> None:
    print(name)
app()
"""


def timed(cmd: list[str], runs: int, cwd: Path | None = None) -> float:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        r = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           text=True)
        samples.append(time.perf_counter() - t0)
        if r.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(cmd)} failed: {r.stderr}")
    return statistics.median(samples)


def ekg_cmd(*args: str) -> list[str]:
    exe = Path(sys.executable).with_name("ekg")
    return [str(exe), *args]


def bench_graph(label: str, graph: Path, out: Path, runs: int, base: dict[str, float],
                names: tuple[str, str]) -> None:
    t0 = time.perf_counter()
    subprocess.run(ekg_cmd("build", "--graph", str(graph), "--out", str(out), "--no-html"),
                   check=True, stdout=subprocess.DEVNULL)
    build_s = time.perf_counter() - t0
    g = ["--graph", str(graph), "--out", str(out)]
    a, b = names
    cmds = {
        f"neighbors {a} --json": ekg_cmd("neighbors", a, "--json", *g),
        f"find {a} --json": ekg_cmd("find", a, "--json", *g),
        f"show {a} --json": ekg_cmd("show", a, "--json", *g),
        f"path {a} {b} --json": ekg_cmd("path", a, b, "--json", *g),
        "sparql (count by type)": ekg_cmd(
            "sparql", "SELECT ?t (COUNT(?s) AS ?n) WHERE { ?s a ?t } GROUP BY ?t", "--json", *g),
    }
    print(f"\n## {label}: build {build_s:.2f} s (no HTML)")
    print(f"{'command':<34}{'median s':>10}{'x import typer':>16}{'x minimal app':>15}")
    for name, cmd in cmds.items():
        t = timed(cmd, runs)
        print(f"{name:<34}{t:>10.3f}{t / base['import typer']:>16.2f}"
              f"{t / base['minimal typer app']:>15.2f}")


def main() -> None:
    # Cold runs are new processes with the bytecode cache an installed package has: a
    # PYTHONDONTWRITEBYTECODE left in the environment would recompile ekg at every start.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[10_000],
                    help="synthetic graph sizes (entities) besides the shipped graph")
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        app = tmp / "minimal_app.py"
        app.write_text(MINIMAL_APP, encoding="utf-8")
        base = {"import typer": timed([py, "-c", "import typer"], args.runs),
                "minimal typer app": timed([py, str(app), "x"], args.runs)}
        print(f"python {sys.version.split()[0]} on {os.cpu_count()} cores; median of "
              f"{args.runs} cold runs")
        for k, v in base.items():
            print(f"baseline {k:<20}{v:.3f} s")
        bench_graph("shipped graph", ROOT / "graph", tmp / "shipped", args.runs, base,
                    ("沐曦", "hkex"))
        for n in args.sizes:
            from ecosystem_kg.synth import synth

            folder = tmp / f"synth-{n}" / "graph"
            synth(n, folder, seed=1)
            bench_graph(f"synthetic graph, {n:,} entities", folder, tmp / f"synth-{n}" / "build",
                        args.runs, base, pick_names(folder))


def pick_names(folder: Path) -> tuple[str, str]:
    """Two entity ids of a synthetic graph: the first company and the first person."""
    comp = sorted((folder / "companies").glob("*.yaml"))[0].stem
    people = sorted((folder / "people").glob("*.yaml"))
    return comp, people[0].stem if people else comp


if __name__ == "__main__":
    main()
