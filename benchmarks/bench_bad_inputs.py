"""Time and memory of `ekg check` on every hostile input: the bounds tests/test_hostile.py
enforces (10 s, 1 GiB address space per process), measured.

Each case of tests/bad_inputs/ and the generated ones (20 MB value, 200,000-deep nesting,
billion laughs, ...) runs as its own `ekg check` process under the same RLIMIT_AS; wall time
and peak RSS come from ``os.wait4``. Prints the five slowest and the largest.

    python benchmarks/bench_bad_inputs.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.test_hostile import CASES, _limited, generated_cases  # noqa: E402


def main() -> None:
    rows: list[tuple[float, float, int, str]] = []
    with tempfile.TemporaryDirectory() as td:
        gen = generated_cases(Path(td))
        items = [(p.name, p / "graph" if (p / "graph").is_dir() else p) for p in CASES]
        items += [(name, graph) for name, (graph, _expected) in gen.items()]
        for name, graph in items:
            t0 = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-m", "ecosystem_kg", "check", "--graph",
                                     "."], cwd=graph, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, preexec_fn=_limited)
            _, status, usage = os.wait4(proc.pid, 0)
            rows.append((time.perf_counter() - t0, usage.ru_maxrss / 1024,
                         os.waitstatus_to_exitcode(status), name))
    rows.sort(reverse=True)
    print(f"{len(rows)} cases; exit codes {sorted({r[2] for r in rows})}")
    print("slowest:")
    for secs, mib, code, name in rows[:5]:
        print(f"  {secs:6.2f} s  {mib:6.0f} MiB  exit {code}  {name}")
    secs, mib, code, name = max(rows, key=lambda r: r[1])
    print(f"largest: {mib:.0f} MiB ({name}, {secs:.2f} s)")


if __name__ == "__main__":
    main()
