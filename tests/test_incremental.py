"""Incremental builds: a rebuild reuses the previous build's cache and gives the same bytes as a
clean build, with worker processes or without."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from ecosystem_kg import incremental
from ecosystem_kg.errors import ValidationFailed
from ecosystem_kg.ontology import bundled_ontology_dir
from ecosystem_kg.pipeline import OUTPUTS, build, check
from ecosystem_kg.synth import synth

N = 300


@pytest.fixture(scope="module")
def synth_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    graph = tmp_path_factory.mktemp("synth") / "graph"
    synth(N, graph, seed=3)
    return graph


@pytest.fixture()
def graph(synth_source: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "graph"
    shutil.copytree(synth_source, dst)
    return dst


@pytest.fixture(params=["parallel", "serial"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    # 300 files: lower the threshold so that the worker processes are used too
    monkeypatch.setenv("EKG_PARALLEL_MIN", "50" if request.param == "parallel" else "100000")
    return str(request.param)


@pytest.fixture()
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Files parsed in this process (a rebuild of few files does not start workers)."""
    calls: list[str] = []
    real = incremental.process_file

    def counting(path: Path, *args: object) -> incremental.Result:
        calls.append(path.name)
        return real(path, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(incremental, "process_file", counting)
    return calls


def outputs(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in OUTPUTS if (folder / name).exists()}


def first(graph: Path, folder: str) -> Path:
    return sorted((graph / folder).glob("*.yaml"))[0]


def test_rebuild_after_editing_one_file_equals_a_clean_build(
        graph: Path, tmp_path: Path, mode: str, parsed: list[str]) -> None:
    out = tmp_path / "out"
    build(graph, out)
    assert (out / incremental.CACHE_DIR / incremental.CACHE_FILE).is_file()
    edited = first(graph, "companies")
    text = edited.read_text(encoding="utf-8")
    assert 'en: "Synthetic ' in text
    edited.write_text(text.replace('en: "Synthetic ', 'en: "Edited \\"quoted\\" \\u00e9 ', 1),
                      encoding="utf-8")
    parsed.clear()
    rep = build(graph, out)
    assert parsed == [edited.name]  # only the edited file was parsed again
    assert rep.entities == N
    clean = tmp_path / "clean"
    build(graph, clean)
    assert outputs(out) == outputs(clean)
    assert "Edited" in (out / "ecosystem.nt").read_text(encoding="utf-8")
    # and once more without changes: nothing parsed, same bytes
    parsed.clear()
    build(graph, out)
    assert parsed == []
    assert outputs(out) == outputs(clean)


@pytest.mark.parametrize("html", [True, False])
def test_worker_processes_write_the_same_files_as_one_process(
        graph: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, html: bool) -> None:
    # the workers' texts come through part files: none is left, and every file is the same
    # (but the cache's list of files, which records the outputs' modification times); without
    # a map, the index is written by a process of its own
    def files(folder: Path) -> dict[str, bytes]:
        return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
                if p.is_file() and p.name != incremental.CACHE_FILE}

    monkeypatch.setenv("EKG_PARALLEL_MIN", "100000")
    build(graph, tmp_path / "serial", html=html)
    monkeypatch.setenv("EKG_PARALLEL_MIN", "50")
    build(graph, tmp_path / "parallel", html=html)
    serial, parallel = files(tmp_path / "serial"), files(tmp_path / "parallel")
    assert not [name for name in parallel if incremental.PART_PREFIX in name]
    assert sorted(parallel) == sorted(serial)
    for name in serial:  # outputs, index, cache and map layout
        assert parallel[name] == serial[name], name


def test_ontology_change_invalidates_the_cache(graph: Path, tmp_path: Path, mode: str,
                                               parsed: list[str]) -> None:
    onto = tmp_path / "ontology"
    shutil.copytree(bundled_ontology_dir(), onto)
    out = tmp_path / "out"
    build(graph, out, onto, html=False)
    ttl = onto / "ekg.ttl"
    text = ttl.read_text(encoding="utf-8")
    assert 'rdfs:label "Company"@en' in text
    ttl.write_text(text.replace('rdfs:label "Company"@en', 'rdfs:label "Firm"@en', 1),
                   encoding="utf-8")
    parsed.clear()
    build(graph, out, onto, html=False)
    if mode == "serial":
        assert len(parsed) == len(list(graph.rglob("*.yaml")))  # nothing reused
    con = sqlite3.connect(out / "index.sqlite")
    try:
        label = con.execute("SELECT label_en FROM class WHERE name = 'Company'").fetchone()[0]
    finally:
        con.close()
    assert label == "Firm"
    clean = tmp_path / "clean"
    build(graph, clean, onto, html=False)
    assert outputs(out) == outputs(clean)


def test_file_made_invalid_after_a_cached_build_gives_the_same_located_error(
        graph: Path, tmp_path: Path, mode: str) -> None:
    out = tmp_path / "out"
    build(graph, out, html=False)
    before = outputs(out)
    broken = first(graph, "companies")
    lines = broken.read_text(encoding="utf-8").splitlines()
    lines[3] = "  zh: [unclosed"  # inside the name mapping
    broken.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ValidationFailed) as cached:
        build(graph, out, html=False)
    with pytest.raises(ValidationFailed) as checked:
        check(graph)
    with pytest.raises(ValidationFailed) as fresh:
        build(graph, tmp_path / "fresh", html=False)
    assert cached.value.report() == checked.value.report() == fresh.value.report()
    assert broken.name in cached.value.report() and "YAML syntax error" in cached.value.report()
    assert outputs(out) == before  # the failed build changed nothing
    assert not (tmp_path / "fresh").exists()


def test_a_rebuild_checks_the_links_of_the_edited_file_only(
        graph: Path, tmp_path: Path, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from ecosystem_kg import validate

    out = tmp_path / "out"
    build(graph, out, html=False)
    seen: list[str] = []
    real = validate._check_links

    def counting(ent: object, *args: object) -> None:
        seen.append(ent.id)  # type: ignore[attr-defined]
        real(ent, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(validate, "_check_links", counting)
    edited = first(graph, "companies")
    edited.write_text(edited.read_text(encoding="utf-8").replace('en: "', 'en: "New ', 1),
                      encoding="utf-8")
    build(graph, out, html=False)
    assert seen == [edited.stem]  # the other files' ids and types are as they were
    seen.clear()
    build(graph, tmp_path / "clean", html=False)
    assert len(seen) == len(list(graph.rglob("*.yaml")))  # without a cache: every file


@pytest.mark.parametrize("change", ["type", "delete"])
def test_links_of_unchanged_files_are_checked_again_when_ids_or_types_change(
        graph: Path, tmp_path: Path, mode: str, change: str) -> None:
    out = tmp_path / "out"
    build(graph, out, html=False)
    target = graph / "organizations" / "hkex.yaml"
    users = [p.name for p in sorted((graph / "companies").glob("*.yaml"))
             if "to: hkex" in p.read_text(encoding="utf-8")]
    assert users
    if change == "type":  # the companies listed there now point to a university
        text = target.read_text(encoding="utf-8")
        target.write_text(text.replace("type: StockExchange", "type: University"),
                          encoding="utf-8")
    else:  # they point to nothing
        target.unlink()
    with pytest.raises(ValidationFailed) as cached:
        build(graph, out, html=False)
    with pytest.raises(ValidationFailed) as checked:
        check(graph)
    assert cached.value.report() == checked.value.report()
    for name in users:  # files the rebuild took from its cache
        assert name in cached.value.report()


def test_deleting_a_file_removes_its_entity(graph: Path, tmp_path: Path, mode: str) -> None:
    src = first(graph, "sources").stem
    extra = graph / "places" / "lonely-town.yaml"
    extra.write_text(f"id: lonely-town\ntype: Place\nname: {{zh: 孤城, en: Lonely Town}}\n"
                     f"source: {src}\n", encoding="utf-8")
    out = tmp_path / "out"
    build(graph, out, html=False)
    assert "lonely-town" in (out / "ecosystem.nt").read_text(encoding="utf-8")
    extra.unlink()
    rep = build(graph, out, html=False)
    assert rep.entities == N
    assert "lonely-town" not in (out / "ecosystem.nt").read_text(encoding="utf-8")
    clean = tmp_path / "clean"
    build(graph, clean, html=False)
    assert outputs(out) == outputs(clean)


def test_a_changed_output_is_not_trusted(graph: Path, tmp_path: Path, parsed: list[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EKG_PARALLEL_MIN", "100000")
    out = tmp_path / "out"
    build(graph, out, html=False)
    nt = out / "ecosystem.nt"
    nt.write_bytes(nt.read_bytes() + b"# appended by hand\n")
    parsed.clear()
    build(graph, out, html=False)
    assert len(parsed) > N  # the cache was ignored: every file parsed again
    clean = tmp_path / "clean"
    build(graph, clean, html=False)
    assert outputs(out) == outputs(clean)


BAD = Path(__file__).resolve().parent / "bad_inputs"


@pytest.mark.parametrize("workers", ["1", "2"])
def test_build_reports_the_same_problems_as_check(tmp_path: Path, workers: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # the build checks each file in the worker that parsed it, and the rest after: the union
    # is what `check` reports, for every case of the corpus, with workers or without
    monkeypatch.setenv("EKG_PARALLEL_MIN", "1" if workers == "2" else "100000")
    for case in sorted(p for p in BAD.iterdir() if p.is_dir()):
        with pytest.raises(ValidationFailed) as checked:
            check(case)
        with pytest.raises(ValidationFailed) as built:
            build(case, tmp_path / "out", html=False)
        assert built.value.report() == checked.value.report(), case.name


def test_a_damaged_cache_is_not_used(graph: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EKG_PARALLEL_MIN", "100000")
    out = tmp_path / "out"
    build(graph, out, html=False)
    blobs = out / incremental.CACHE_DIR / incremental.BLOBS
    stat = blobs.stat()
    blobs.write_bytes(b"\0" * stat.st_size)  # same size and time: only the bytes are wrong
    os.utime(blobs, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    build(graph, out, html=False)
    clean = tmp_path / "clean"
    build(graph, clean, html=False)
    assert outputs(out) == outputs(clean)


class _Payload:
    """Unpickling this runs a command: what a hostile build folder could carry."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def test_a_poisoned_cache_never_runs_code(graph: Path, tmp_path: Path, parsed: list[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A build folder copied from elsewhere may hold a crafted cache: it is read with the
    cache's own classes only, so the payload is refused and the build parses every file."""
    import pickle

    monkeypatch.setenv("EKG_PARALLEL_MIN", "100000")
    out = tmp_path / "out"
    build(graph, out, html=False)
    marker = tmp_path / "ran"
    cache = out / incremental.CACHE_DIR
    # 1. the index file itself
    index_file = cache / incremental.CACHE_FILE
    good = index_file.read_bytes()
    index_file.write_bytes(pickle.dumps(_Payload(marker)))
    parsed.clear()
    build(graph, out, html=False)
    assert not marker.exists()
    assert len(parsed) == len(list(graph.rglob("*.yaml")))  # no cache: a full build
    # 2. one entity's blob, the index left valid (same size and time, so it is trusted)
    entries = pickle.loads(index_file.read_bytes())["entries"]
    assert good and entries
    blobs = cache / incremental.BLOBS
    _sha, (off, n), _rows, _spans = next(iter(entries.values()))
    evil = pickle.dumps(_Payload(marker))
    data = bytearray(blobs.read_bytes())
    assert len(evil) <= n
    data[off:off + len(evil)] = evil
    stat = blobs.stat()
    blobs.write_bytes(bytes(data))
    os.utime(blobs, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    build(graph, out, html=False)
    assert not marker.exists()
    clean = tmp_path / "clean"
    build(graph, clean, html=False)
    assert outputs(out) == outputs(clean)


@pytest.mark.parametrize("blob", ["entity", "rows"])
def test_a_poisoned_cache_blob_never_runs_code_in_a_rebuild_on_two_cores(
        graph: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blob: str) -> None:
    """With worker processes, a rebuild's index is written by a process of its own from the
    cached rows: a crafted rows blob is refused there too, and the build starts again without
    the cache."""
    import pickle

    monkeypatch.setenv("EKG_PARALLEL_MIN", "50")
    out = tmp_path / "out"
    build(graph, out)
    marker = tmp_path / "ran"
    cache = out / incremental.CACHE_DIR
    entries = pickle.loads((cache / incremental.CACHE_FILE).read_bytes())["entries"]
    _sha, ent_span, rows_span, _spans = entries[sorted(entries)[len(entries) // 2]]
    off, n = ent_span if blob == "entity" else rows_span
    evil = pickle.dumps(_Payload(marker))
    assert len(evil) <= n
    blobs = cache / incremental.BLOBS
    data = bytearray(blobs.read_bytes())
    data[off:off + len(evil)] = evil
    stat = blobs.stat()
    blobs.write_bytes(bytes(data))
    os.utime(blobs, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    edited = sorted((graph / "companies").glob("*.yaml"))[0]  # one file to parse again
    edited.write_text(edited.read_text(encoding="utf-8") + "note: edited\n", encoding="utf-8")
    build(graph, out)
    assert not marker.exists()
    clean = tmp_path / "clean"
    build(graph, clean)
    assert outputs(out) == outputs(clean)


def test_the_map_layout_is_reused_while_nodes_and_links_stay(
        graph: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ecosystem_kg import render

    monkeypatch.setenv("EKG_PARALLEL_MIN", "100000")  # the map is drawn in this process
    laid: list[int] = []
    real = render._layout

    def counting(n: int, edges: list[tuple[int, int]], **kw: int) -> list[tuple[float, float]]:
        laid.append(n)
        return real(n, edges, **kw)

    monkeypatch.setattr(render, "_layout", counting)
    out = tmp_path / "out"
    build(graph, out)
    assert laid == [N]
    layout_file = out / incremental.CACHE_DIR / "layout.bin"
    assert layout_file.is_file()

    def clean_html() -> bytes:
        clean = tmp_path / "clean"
        shutil.rmtree(clean, ignore_errors=True)
        build(graph, clean)
        return (clean / "ecosystem.html").read_bytes()

    edited = first(graph, "companies")  # a description: same nodes and links
    edited.write_text(edited.read_text(encoding="utf-8").replace(
        'en: "Synthetic ', 'en: "Edited synthetic ', 1), encoding="utf-8")
    laid.clear()
    build(graph, out)
    assert laid == []
    assert b"Edited synthetic" in (out / "ecosystem.html").read_bytes()
    assert (out / "ecosystem.html").read_bytes() == clean_html()
    edited.write_text(edited.read_text(encoding="utf-8").replace(  # and again: still kept
        'en: "Edited synthetic ', 'en: "Edited twice, synthetic ', 1), encoding="utf-8")
    laid.clear()
    build(graph, out)
    assert laid == []
    assert (out / "ecosystem.html").read_bytes() == clean_html()

    text = edited.read_text(encoding="utf-8")  # a link removed: laid out again
    lines = text.splitlines(keepends=True)
    rel_lines = [i for i, line in enumerate(lines) if line.lstrip().startswith("- {rel:")]
    assert rel_lines
    del lines[rel_lines[-1]]
    edited.write_text("".join(lines), encoding="utf-8")
    laid.clear()
    build(graph, out)
    assert laid == [N]
    assert (out / "ecosystem.html").read_bytes() == clean_html()

    for junk in (b"", b"\x00" * 20 + b"\xff" * (16 * N),  # wrong key, NaN positions
                 layout_file.read_bytes()[:20] + b"\xff" * (16 * N)):
        (out / incremental.CACHE_DIR / "layout.bin").write_bytes(junk)
        laid.clear()
        build(graph, out)
        assert laid == [N]
        assert (out / "ecosystem.html").read_bytes() == clean_html()


@pytest.mark.parametrize("where", ["graph is cwd", "under cwd", "elsewhere", "around cwd"])
def test_paths_in_messages_are_the_same_by_the_quick_way(tmp_path: Path, where: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from ecosystem_kg.load import display_path, display_paths, entity_files

    graph = tmp_path / "proj" / "graph"
    (graph / "companies" / "deep").mkdir(parents=True)
    (graph / "places").mkdir()
    for rel in ("companies/a.yaml", "companies/deep/b.yaml", "places/c.yaml", "d.yaml"):
        (graph / rel).write_text("id: x\n", encoding="utf-8")
    cwd = {"graph is cwd": graph, "under cwd": tmp_path / "proj",
           "elsewhere": tmp_path / "other" / "dir", "around cwd": graph / "companies" / "deep"}
    cwd[where].mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(cwd[where])
    for g in (graph, Path(os.path.relpath(graph))):
        paths, rels, _ = entity_files(g)
        assert len(rels) == 4
        assert display_paths(g, rels) == [display_path(g / r, g) for r in rels]


def test_entities_come_back_from_the_cache_unchanged(graph: Path) -> None:
    import pickle

    loaded = check(graph)
    for ent in loaded.entities:
        blob = pickle.dumps(ent, incremental.PROTOCOL)
        back = incremental._load_cached(blob)  # the cache's restricted unpickler
        assert back == ent and type(back) is type(ent)
        assert [type(r) for r in back.relations] == [type(r) for r in ent.relations]


def test_a_rebuild_reads_the_ontology_from_the_previous_build(graph: Path,
                                                             tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "out"
    build(graph, out, html=False)
    cached = list((out / incremental.CACHE_DIR).glob("ontology-*.json"))
    assert len(cached) == 1
    code = ("import sys; from pathlib import Path; from ecosystem_kg.pipeline import build; "
            f"build(Path({str(graph)!r}), Path({str(out)!r}), html=False); "
            "print('rdflib' in sys.modules)")

    def rebuild() -> str:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True).stdout.strip()

    assert rebuild() == "False"  # the ontology came from the cache: no Turtle parsed
    clean = tmp_path / "clean"
    build(graph, clean, html=False)
    assert outputs(out) == outputs(clean)
    cached[0].write_text("{not json", encoding="utf-8")  # damaged: parsed again
    assert rebuild() == "True"
    assert outputs(out) == outputs(clean)


def test_an_edit_that_keeps_the_names_computes_no_pinyin(graph: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "out"
    build(graph, out, html=False)
    edited = first(graph, "companies")
    text = edited.read_text(encoding="utf-8")
    edited.write_text(text.replace('en: "Synthetic ', 'en: "Edited synthetic ', 1),
                      encoding="utf-8")
    assert edited.read_text(encoding="utf-8") != text and 'zh: "' in text
    code = ("import sys; from pathlib import Path; from ecosystem_kg.pipeline import build; "
            f"build(Path({str(graph)!r}), Path({str(out)!r}), html=False); "
            "print('pypinyin' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "False"  # the keys of its names came from the cache
    clean = tmp_path / "clean"
    build(graph, clean, html=False)
    assert outputs(out) == outputs(clean)
