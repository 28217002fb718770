"""Build cost against the cost of reading the files, at 1,000 to 100,000 entities.

For each size, a synthetic graph is written once (cached under ``--work``) and measured in one
run:

* floor: a fresh process that parses every YAML file with ``yaml.CSafeLoader`` and nothing else
  (the median of 3 runs up to 10,000 entities; every file is read once before, so the floor
  and the build read from the page cache, not the disk)
* build: ``ekg build`` into a fresh output folder, as a subprocess (the median of 3 up to
  10,000 entities); its ratio to the floor
* memory: peak RSS of the build (the largest single process, from ``wait4``; and the peak sum
  over the build's process tree, sampled every 20 ms, which counts pages shared after ``fork``
  twice); and the peak size of the worker's part files in the memory-backed scratch folder
  (``/dev/shm``), sampled with the tree: memory too, though no process's RSS shows it
* rebuild: ``ekg build`` into the same folder after one entity's description changed (median
  of 3 edits up to 10,000 entities); its ratio to the full build; the rebuilt outputs are
  compared byte for byte with a clean build of the edited folder
* queries: cold ``ekg find``, ``neighbors``, ``path`` and one ``sparql`` COUNT, against a cold
  ``python -c "import typer"``
* html: ``ekg render`` of the whole graph

Usage::

    python benchmarks/bench_scale.py                          # 1,000, 10,000 and 100,000
    python benchmarks/bench_scale.py --sizes 1000,10000 --markdown
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUTS = ("ecosystem.ttl", "ecosystem.nt", "ecosystem.jsonld", "ecosystem.graphml",
           "index.sqlite", "ecosystem.html", "summary.json")
FLOOR = """
import os, sys, time, yaml
t0 = time.perf_counter()
n = 0
for dirpath, dirnames, filenames in os.walk(sys.argv[1]):
    dirnames.sort()
    for name in sorted(filenames):
        if name.endswith((".yaml", ".yml")):
            with open(os.path.join(dirpath, name), "rb") as f:
                yaml.load(f.read(), Loader=yaml.CSafeLoader)
            n += 1
print(n, time.perf_counter() - t0)
"""
EDIT_FROM = 'en: "Synthetic '
EDIT_TO = 'en: "Edited synthetic '


def ekg(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("ekg")), *args]


@dataclass
class Run:
    seconds: float
    maxrss_mib: float  # largest single process
    tree_mib: float  # peak sum over the process tree (sampled)
    scratch_mib: float  # peak size of the part files in the scratch folder (sampled)
    stdout: str = ""


def _tree_rss_kib(pid: int) -> int:
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status", encoding="ascii", errors="replace") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children", encoding="ascii") as f:
                    todo.extend(int(c) for c in f.read().split())
        except (OSError, ValueError):
            continue
    return total


SCRATCH = Path("/dev/shm")  # where a build's part files go (ecosystem_kg.incremental.SCRATCH)


def _scratch_kib() -> int:
    total = 0
    for d in SCRATCH.glob("ekg-parts-*"):
        try:
            for f in os.scandir(d):
                total += f.stat().st_blocks // 2  # 512-byte blocks: what the files hold
        except OSError:
            continue
    return total


def run(cmd: list[str], *, check: bool = True) -> Run:
    """Run ``cmd``; wall time, peak RSS (wait4) and sampled peak RSS of its process tree."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = [0, 0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss_kib(proc.pid))
            peak[1] = max(peak[1], _scratch_kib())
            done.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    if sys.platform.startswith("linux"):
        sampler.start()
    out_chunks: list[bytes] = []
    err_chunks: list[bytes] = []
    readers = [threading.Thread(target=lambda s=s, b=b: b.append(s.read()), daemon=True)
               for s, b in ((proc.stdout, out_chunks), (proc.stderr, err_chunks))]
    for r in readers:
        r.start()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    done.set()
    for r in readers:
        r.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if sampler.is_alive():
        sampler.join()
    if check and proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{b''.join(err_chunks).decode()}")
    return Run(seconds, usage.ru_maxrss / 1024, peak[0] / 1024, peak[1] / 1024,
               b"".join(out_chunks).decode())


def median_time(cmd: list[str], runs: int) -> float:
    return statistics.median(run(cmd, check=False).seconds for _ in range(runs))


def synth_graph(n: int, work: Path) -> Path:
    folder = work / f"synth-{n}"
    graph = folder / "graph"
    if not (folder / ".complete").exists():
        shutil.rmtree(folder, ignore_errors=True)
        run(ekg("synth", "--entities", str(n), "--out", str(graph), "--seed", "1"))
        (folder / ".complete").touch()
    return graph


def same_outputs(a: Path, b: Path) -> bool:
    return all((a / name).read_bytes() == (b / name).read_bytes() for name in OUTPUTS
               if (a / name).exists() or (b / name).exists())


@dataclass
class Row:
    n: int
    floor: float = 0.0
    build: float = 0.0
    maxrss: float = 0.0
    tree: float = 0.0
    scratch: float = 0.0
    rebuild: float = 0.0
    identical: bool = False
    queries: dict[str, float] = field(default_factory=dict)
    typer: float = 0.0
    html: float = 0.0


def warm_page_cache(graph: Path) -> None:
    for dirpath, _, filenames in os.walk(graph):
        for name in filenames:
            with open(os.path.join(dirpath, name), "rb") as f:
                f.read()


def measure(n: int, work: Path, runs: int) -> Row:
    row = Row(n)
    graph = synth_graph(n, work)
    out = work / f"build-{n}"
    clean = work / f"clean-{n}"
    for p in (out, clean):
        shutil.rmtree(p, ignore_errors=True)
    py = sys.executable
    repeats = 3 if n <= 10_000 else 1  # medians where runs are short; variance is high here
    warm_page_cache(graph)  # the floor and the build both read from memory, not the disk
    row.floor = statistics.median(run([py, "-c", FLOOR, str(graph)]).seconds
                                  for _ in range(repeats))
    fulls = []
    for _ in range(repeats):  # each into a fresh folder: no cache to reuse
        shutil.rmtree(out, ignore_errors=True)
        fulls.append(run(ekg("build", "--graph", str(graph), "--out", str(out))))
    row.build = statistics.median(r.seconds for r in fulls)
    row.maxrss = max(r.maxrss_mib for r in fulls)
    row.tree = max(r.tree_mib for r in fulls)
    row.scratch = max(r.scratch_mib for r in fulls)

    edited = sorted((graph / "companies").glob("*.yaml"))[0]
    original = edited.read_bytes()
    text = original.decode("utf-8")
    if EDIT_FROM not in text:
        raise SystemExit(f"{edited}: no English description to edit")
    try:
        times = []
        for k in range(repeats):  # a different edit each time, so each rebuild has work
            edited.write_bytes(text.replace(EDIT_FROM, f"{EDIT_TO}{k} ", 1).encode("utf-8"))
            times.append(run(ekg("build", "--graph", str(graph), "--out", str(out))).seconds)
        row.rebuild = statistics.median(times)
        run(ekg("build", "--graph", str(graph), "--out", str(clean)))
        row.identical = same_outputs(out, clean)
    finally:
        edited.write_bytes(original)
    run(ekg("build", "--graph", str(graph), "--out", str(out)))  # fresh again for the queries

    a = edited.stem
    b = sorted((graph / "people").glob("*.yaml"))[0].stem
    g = ["--graph", str(graph), "--out", str(out)]
    row.typer = median_time([py, "-c", "import typer"], runs)
    row.queries = {
        "find": median_time(ekg("find", a, "--json", *g), runs),
        "neighbors": median_time(ekg("neighbors", a, "--json", *g), runs),
        "path": median_time(ekg("path", a, b, "--json", *g), runs),
        "sparql": median_time(ekg("sparql", "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }",
                                  "--json", *g), runs),
    }
    html_file = work / f"map-{n}.html"
    row.html = run(ekg("render", "-o", str(html_file), *g)).seconds
    html_file.unlink(missing_ok=True)
    shutil.rmtree(clean, ignore_errors=True)
    return row


def machine() -> str:
    return (f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"{platform.platform()}")


HEAD = ("entities", "floor s", "build s", "build/floor", "peak RSS MiB", "tree RSS MiB",
        "scratch MiB", "rebuild s", "rebuild/build", "identical", "import typer s", "find s",
        "neighbors s", "path s", "sparql s", "html s")


def cells(r: Row) -> list[str]:
    q = r.queries
    return [f"{r.n:,}", f"{r.floor:.2f}", f"{r.build:.2f}", f"{r.build / r.floor:.2f}x",
            f"{r.maxrss:.0f}", f"{r.tree:.0f}", f"{r.scratch:.0f}", f"{r.rebuild:.2f}",
            f"{r.rebuild / r.build:.2f}x", "yes" if r.identical else "NO", f"{r.typer:.3f}",
            f"{q['find']:.3f}", f"{q['neighbors']:.3f}", f"{q['path']:.3f}",
            f"{q['sparql']:.2f}", f"{r.html:.2f}"]


def table(rows: list[Row], markdown: bool) -> str:
    data = [list(HEAD)] + [cells(r) for r in rows]
    if markdown:
        lines = ["| " + " | ".join(data[0]) + " |",
                 "|" + "|".join("---:" for _ in HEAD) + "|"]
        lines += ["| " + " | ".join(c) + " |" for c in data[1:]]
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in data) for i in range(len(HEAD))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True))
                     for row in data)


def main() -> None:
    # Cold runs are new processes with the bytecode cache an installed package has: a
    # PYTHONDONTWRITEBYTECODE left in the environment would recompile ekg at every start.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,100000",
                    help="comma-separated entity counts (default 1000,10000,100000)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/ekg-bench"),
                    help="folder for the synthetic graphs (kept) and builds")
    ap.add_argument("--runs", type=int, default=3, help="cold runs per query (median)")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = ap.parse_args()
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in sizes:
        rows.append(measure(n, args.work, args.runs))
        print(f"measured {n:,} entities", file=sys.stderr, flush=True)
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    print(f"{stamp}; {machine()}")
    print(table(rows, args.markdown))
    if args.markdown:
        print("\nfloor: one process parsing every file with yaml.CSafeLoader; build: `ekg build` "
              "into a fresh folder (subprocess, wall time; floor, build and rebuild are medians "
              "of 3 up to 10,000 entities); peak RSS: largest process; tree "
              "RSS: sampled sum over the build's processes; scratch: peak of the part files in "
              f"/dev/shm; queries: median of {args.runs} cold runs.")


if __name__ == "__main__":
    main()
