"""Hostile and broken inputs: bounded time and memory, previous build intact, and builds that
are killed at random points never leave a mixed output folder."""

from __future__ import annotations

import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ecosystem_kg import ValidationFailed, build

from .conftest import MINI

BAD = Path(__file__).resolve().parent / "bad_inputs"
CASES = sorted(p for p in BAD.iterdir() if p.is_dir())
TIME_LIMIT_S = 10.0  # per `ekg check` process, start-up included
MEMORY_LIMIT = 1 << 30  # address-space cap per process (1 GiB)
SRC = "id: src\ntype: Source\ntitle: T\n"


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_check(graph: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "ecosystem_kg", "check", "--graph", "."],
                       cwd=graph, capture_output=True, text=True, timeout=TIME_LIMIT_S * 3,
                       preexec_fn=_limited)
    return r, time.perf_counter() - t0


def test_corpus_has_at_least_40_cases() -> None:
    assert len(CASES) >= 40


def generated_cases(tmp: Path) -> dict[str, tuple[Path, str]]:
    """Cases too large to keep in the repository, with their exact expected message."""
    out: dict[str, tuple[Path, str]] = {}

    def case(name: str, content: bytes, expected: str) -> None:
        g = tmp / name
        (g / "sources").mkdir(parents=True)
        (g / "sources" / "src.yaml").write_text(SRC, encoding="utf-8")
        (g / "companies").mkdir()
        (g / "companies" / "x.yaml").write_bytes(content)
        out[name] = (g, expected)

    case("value-20mb", b"id: x\ntype: Company\nnote: " + b"a" * (20 << 20) + b"\n",
         "companies/x.yaml:1:1: file is 20,971,547 bytes; entity files are limited to 1,048,576 "
         "bytes: split or shorten it")
    depth = 200_000
    case("nesting-200k", b"id: x\nnote: " + b"[" * depth + b"]" * depth + b"\n",
         "companies/x.yaml:2:38: YAML nesting is too deep (over 32 levels)")
    laughs = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    laughs += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    case("billion-laughs", ("\n".join(["id: x", "type: Company", *laughs]) + "\n").encode(),
         "companies/x.yaml:3:5: YAML anchors and aliases are not supported in entity files; "
         "write the value out")
    case("control-chars", b"id: x\ntype: Company\nnote: a\x07b\n",
         "companies/x.yaml:3:8: character U+0007 is not allowed in YAML (control characters "
         "are not allowed); remove it")
    case("escaped-control-char", b'id: x\ntype: Company\nnote: "a\\u0007b"\n',
         "companies/x.yaml:3:7: control character U+0007 in text (written as an escape); "
         "remove it")
    case("escaped-control-char-key", b'id: x\ntype: Company\n"k\\x1b": 1\n',
         "companies/x.yaml:3:1: control character U+001B in text (written as an escape); "
         "remove it")
    return out


def test_generated_hostile_cases_are_bounded(tmp_path: Path) -> None:
    for name, (graph, expected) in generated_cases(tmp_path).items():
        r, seconds = run_check(graph)
        assert r.returncode == 1, (name, r.stderr[-500:])
        assert "Traceback" not in r.stderr, name
        first = r.stderr.split("\n1 problem")[0] if "\n1 problem" in r.stderr else r.stderr
        assert first.startswith(expected.splitlines()[0]), (name, r.stderr[:400])
        assert seconds < TIME_LIMIT_S, (name, seconds)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_corpus_case_through_the_cli_is_bounded(case: Path) -> None:
    r, seconds = run_check(case)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert r.stderr == (case / "expected.txt").read_text(encoding="utf-8")
    assert seconds < TIME_LIMIT_S


def test_corpus_leaves_the_previous_build_intact(tmp_path: Path) -> None:
    out = tmp_path / "build"
    build(MINI, out, html=False)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    for case in CASES:
        with pytest.raises(ValidationFailed):
            build(case, out, html=False)
        assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before, case.name


def _big_graph(root: Path, n: int) -> Path:
    g = root / "graph"
    for folder in ("sources", "places", "companies"):
        (g / folder).mkdir(parents=True)
    (g / "sources" / "src.yaml").write_text(SRC, encoding="utf-8")
    (g / "places" / "city.yaml").write_text(
        "id: city\ntype: Place\nname: {zh: 城, en: City}\nsource: src\n", encoding="utf-8")
    for i in range(n):
        (g / "companies" / f"c{i}.yaml").write_text(
            f"id: c{i}\ntype: Company\nname: {{zh: 公司{i}, en: Company {i}}}\nsource: src\n"
            f"relations:\n  - {{rel: located_in, to: city, date: 2026-01, source: src}}\n"
            f"  - {{rel: partner_of, to: c{(i * 7 + 1) % n}, source: src}}\n",
            encoding="utf-8")
    return g


@pytest.mark.slow
def test_builds_killed_at_random_points_never_leave_a_mixed_folder(tmp_path: Path) -> None:
    graph = _big_graph(tmp_path, 1500)
    out = tmp_path / "build"
    build(graph, out, html=False)
    old = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    # the next build will differ: one more partner
    p = graph / "companies" / "c0.yaml"
    p.write_text(p.read_text(encoding="utf-8") + "  - {rel: partner_of, to: c5, source: src}\n",
                 encoding="utf-8")
    ref = tmp_path / "ref"
    build(graph, ref, html=False)
    new = {q.name: q.read_bytes() for q in ref.iterdir() if q.is_file()}
    assert new != old
    rng = random.Random(7)
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "ecosystem_kg", "build", "--graph", str(graph),
                        "--out", str(tmp_path / "timing"), "--no-html"], capture_output=True)
    full = time.perf_counter() - t0
    assert r.returncode == 0
    kinds = set()
    for _ in range(8):
        proc = subprocess.Popen([sys.executable, "-m", "ecosystem_kg", "build", "--graph",
                                 str(graph), "--out", str(out), "--no-html"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, full))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if out.exists():
            state = {q.name: q.read_bytes() for q in out.iterdir() if q.is_file()}
            assert state in (old, new), "mixed or partial output folder"
            kinds.add("old" if state == old else "new")
        else:
            kinds.add("aside")
        # the next build recovers without manual clean-up
        build(graph, out, html=False)
        assert {q.name: q.read_bytes() for q in out.iterdir() if q.is_file()} == new
        leftovers = [q.name for q in tmp_path.iterdir() if q.name.startswith(".build.")
                     and not q.name.endswith(".lock")]
        assert leftovers == []
        # restore the old state for the next round
        shutil.rmtree(out)
        out.mkdir()
        for name, data in old.items():
            (out / name).write_bytes(data)
    assert kinds  # at least one kill landed


@pytest.mark.slow
def test_every_output_is_deterministic_across_seeds_and_file_orders(tmp_path: Path) -> None:
    # the same files, created in the opposite order
    rev = tmp_path / "reversed"
    files = sorted(p for p in MINI.rglob("*.yaml"))
    for p in reversed(files):
        dst = rev / p.relative_to(MINI)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(p.read_bytes())
    outs = []
    for i, (graph, seed) in enumerate(((MINI, "0"), (rev, "12345"))):
        out = tmp_path / f"out{i}"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        r = subprocess.run([sys.executable, "-m", "ecosystem_kg", "build", "--graph", str(graph),
                            "--out", str(out)], capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stderr
        csv_dir = tmp_path / f"csv{i}"
        r = subprocess.run([sys.executable, "-m", "ecosystem_kg", "export", "--format", "csv",
                            "-o", str(csv_dir), "--graph", str(graph), "--out", str(out)],
                           capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stderr
        outs.append((out, csv_dir))
    (a, ca), (b, cb) = outs
    names = sorted(p.name for p in a.iterdir() if p.is_file())
    assert {"ecosystem.ttl", "ecosystem.nt", "ecosystem.jsonld", "ecosystem.graphml",
            "index.sqlite", "ecosystem.html"} <= set(names)
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    for name in ("nodes.csv", "edges.csv"):
        assert (ca / name).read_bytes() == (cb / name).read_bytes(), name
