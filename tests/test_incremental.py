"""Incremental builds: a rebuild reuses the previous build's cache and gives the same bytes as a
clean build, with worker processes or without."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from ecosystem_kg import incremental
from ecosystem_kg.errors import ValidationFailed
from ecosystem_kg.ontology import bundled_ontology_dir
from ecosystem_kg.pipeline import MAP_FILE, OUTPUTS, build, check
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


@pytest.mark.parametrize(("html", "scratch"), [(True, True), (False, True), (False, False)])
def test_worker_processes_write_the_same_files_as_one_process(
        graph: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, html: bool,
        scratch: bool) -> None:
    # the workers' texts come through part files (in a scratch folder of their own, each run
    # freed once copied out; or, without one, in the build's folder): none is left, and every
    # file is the same (but the cache's list of files, which records the outputs'
    # modification times); without a map, the index is written by a process of its own
    def files(folder: Path) -> dict[str, bytes]:
        return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
                if p.is_file() and p.name not in (incremental.CACHE_FILE, MAP_FILE)}

    room = tmp_path / "scratch"
    if scratch:
        room.mkdir()
    monkeypatch.setattr(incremental, "SCRATCH", room)
    freed: list[tuple[int, bool]] = []
    punch = incremental.punch_hole

    def counting_punch(fd: int, off: int, n: int) -> bool:
        done = punch(fd, off, n)
        freed.append((n, done))
        return done

    monkeypatch.setattr(incremental, "punch_hole", counting_punch)
    monkeypatch.setenv("EKG_PARALLEL_MIN", "100000")
    build(graph, tmp_path / "serial", html=html)
    assert not freed
    monkeypatch.setenv("EKG_PARALLEL_MIN", "50")
    build(graph, tmp_path / "parallel", html=html)
    serial, parallel = files(tmp_path / "serial"), files(tmp_path / "parallel")
    assert not [name for name in parallel if incremental.PART_PREFIX in name]
    if scratch:  # every text run copied was freed; the folder is gone
        assert freed and all(done for _, done in freed)
        texts = sum(len(parallel[name]) for name in ("ecosystem.nt", "ecosystem.ttl",
                                                     "ecosystem.jsonld", "ecosystem.graphml"))
        assert texts * 0.9 < sum(n for n, _ in freed) < texts
        assert not list(room.iterdir())
    else:
        assert not freed
    assert sorted(parallel) == sorted(serial)
    for name in serial:  # outputs, index, cache and map layout
        assert parallel[name] == serial[name], name
    import pickle

    def entries(folder: Path) -> dict[str, Any]:  # where each file's texts and entity lie
        data = pickle.loads((folder / incremental.CACHE_DIR / incremental.CACHE_FILE)
                            .read_bytes())
        return {k: v[:3] + v[4:] for k, v in pickle.loads(data["entries"]).items()}

    assert entries(tmp_path / "parallel") == entries(tmp_path / "serial")


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
    from ecosystem_kg import incremental

    real_pass = incremental.links_pass

    def counting_pass(links: Any, *args: Any) -> bool:  # a parallel build without the map
        links = list(links)                            # checks the workers' digests
        seen.extend(eid for eid, _ in links)
        return real_pass(links, *args)

    monkeypatch.setattr(incremental, "links_pass", counting_pass)
    build(graph, tmp_path / "clean", html=False)
    assert sorted(seen) == sorted(p.stem for p in graph.rglob("*.yaml"))  # no cache: every file


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
    # 1b. the entries inside a valid index (kept pickled on their own)
    data = pickle.loads(index_file.read_bytes())
    entries = pickle.loads(data["entries"])
    index_file.write_bytes(pickle.dumps({**data, "entries": pickle.dumps(_Payload(marker))}))
    parsed.clear()
    build(graph, out, html=False)
    assert not marker.exists()
    assert len(parsed) == len(list(graph.rglob("*.yaml")))
    # 2. one entity's blob, the index left valid (same size and time, so it is trusted)
    entries = pickle.loads(pickle.loads(index_file.read_bytes())["entries"])
    assert good and entries
    blobs = cache / incremental.BLOBS
    _sha, (off, n), *_ = next(iter(entries.values()))
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


def test_a_poisoned_cache_blob_never_runs_code_in_a_rebuild_on_two_cores(
        graph: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rebuild reads the unchanged files' entities from the cache only when the edit needs
    them: a crafted blob is carried along unread while it is not needed, and refused once it
    is read (the build then starts again without the cache)."""
    import pickle
    import re

    monkeypatch.setenv("EKG_PARALLEL_MIN", "50")
    out = tmp_path / "out"
    build(graph, out)
    marker = tmp_path / "ran"
    cache = out / incremental.CACHE_DIR
    entries = pickle.loads(pickle.loads((cache / incremental.CACHE_FILE).read_bytes())["entries"])
    _sha, (off, n), *_ = entries[sorted(entries)[len(entries) // 2]]
    evil = pickle.dumps(_Payload(marker))
    assert len(evil) <= n
    blobs = cache / incremental.BLOBS
    data = bytearray(blobs.read_bytes())
    data[off:off + len(evil)] = evil
    stat = blobs.stat()
    blobs.write_bytes(bytes(data))
    os.utime(blobs, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    clean = tmp_path / "clean"
    edited = next(p for p in sorted((graph / "companies").glob("*.yaml"))
                  if 'date: "' in p.read_text(encoding="utf-8"))
    edited.write_text(edited.read_text(encoding="utf-8") + "note: edited\n", encoding="utf-8")
    build(graph, out)  # an edit of one entity alone: the others are not read
    assert not marker.exists()
    build(graph, clean)
    assert outputs(out) == outputs(clean)
    assert evil in (out / incremental.CACHE_DIR / incremental.BLOBS).read_bytes()
    text = edited.read_text(encoding="utf-8")  # a relation removed: the map is drawn again,
    edited.write_text(re.sub(r"\n  - \{rel:[^\n]*", "", text, count=1),  # from every entity
                      encoding="utf-8")
    build(graph, out)
    assert not marker.exists()
    shutil.rmtree(clean)
    build(graph, clean)
    assert outputs(out) == outputs(clean)
    assert evil not in (out / incremental.CACHE_DIR / incremental.BLOBS).read_bytes()


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
        (out / incremental.CACHE_DIR / MAP_FILE).unlink()  # or the page is kept as it is
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
            "print('pyoxigraph' in sys.modules)")

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


# A rebuild after an edit: the map's records, the file stamps and the index rows


EDITS = {  # edit -> whether the map is made by replacing the edited entity's records
    "description": (lambda t: t.replace('en: "Synthetic ', 'en: "Edited, synthetic ', 1), True),
    "name with markup": (lambda t: t.replace('  en: "', '  en: "<b>&\\"x\\"</b> ', 1), True),
    "relation note": (lambda t: t.replace("{rel: ", '{note: "a <note>", rel: ', 1), True),
    "new date": (lambda t: re.sub(r'date: "[^"]*"', 'date: "1999-01-01"', t, count=1), True),
    "latest date": (lambda t: re.sub(r'date: "[^"]*"', 'date: "2099-12"', t, count=1), True),
    "relation removed": (lambda t: re.sub(r"\n  - \{rel:[^\n]*", "", t, count=1), False),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_an_edit_replaces_the_entitys_records_in_the_map_when_that_is_all_it_changes(
        graph: Path, tmp_path: Path, mode: str, monkeypatch: pytest.MonkeyPatch,
        edit: str) -> None:
    from ecosystem_kg import render

    spliced: list[bool] = []
    real = render.splice_map

    def recording(*args: object) -> object:
        out = real(*args)  # type: ignore[arg-type]
        spliced.append(out is not None)
        return out

    monkeypatch.setattr(render, "splice_map", recording)
    out = tmp_path / "out"
    build(graph, out)
    assert spliced == []
    change, expected = EDITS[edit]
    edited = next(p for p in sorted((graph / "companies").glob("*.yaml"))
                  if 'date: "' in p.read_text(encoding="utf-8"))
    text = edited.read_text(encoding="utf-8")
    assert change(text) != text
    edited.write_text(change(text), encoding="utf-8")
    build(graph, out)
    assert spliced == [expected]
    clean = tmp_path / "clean"
    build(graph, clean)
    assert outputs(out) == outputs(clean)
    for _ in range(2):  # and again, from the page made that way
        edited.write_text(edited.read_text(encoding="utf-8").replace(
            'zh: "', 'zh: "改', 1), encoding="utf-8")
        spliced.clear()
        build(graph, out)
        assert spliced == [True]
        shutil.rmtree(clean)
        build(graph, clean)
        assert outputs(out) == outputs(clean)


@pytest.mark.parametrize("damage", ["page edited", "record", "offsets"])
def test_a_map_that_does_not_match_its_records_is_drawn_again(
        graph: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str) -> None:
    """The page is replaced record by record only while it is the page the records describe:
    the same size and time as when it was written, and the edited entity's records as the
    entity was (a damage the size and time hide elsewhere in the page is not looked for, as
    in the other outputs)."""
    monkeypatch.setenv("EKG_PARALLEL_MIN", "50")
    out = tmp_path / "out"
    build(graph, out)
    edited = first(graph, "companies")
    page = out / "ecosystem.html"
    target = page if damage != "offsets" else out / incremental.CACHE_DIR / MAP_FILE
    data = bytearray(target.read_bytes())
    if damage == "offsets":  # every one shifted
        at = data.index(b"\n", len(b"ekg-map-1\n")) + 1
        n = json.loads(data[len(b"ekg-map-1\n"):at])["n"]
        for k in range(at, at + 48 * n, 8):
            data[k:k + 8] = (int.from_bytes(data[k:k + 8], "little") + 3).to_bytes(8, "little")
    else:  # a letter of the edited entity's record, or of another one's
        name = edited.stem if damage == "record" else first(graph, "people").stem
        at = data.index(f'"id":"{name}"'.encode())
        data[at + 6:at + 7] = b"X" if data[at + 6:at + 7] != b"X" else b"Y"
    stat = target.stat()
    target.write_bytes(bytes(data))
    if damage != "page edited":
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    edited.write_text(edited.read_text(encoding="utf-8").replace(
        'en: "Synthetic ', 'en: "Edited, synthetic ', 1), encoding="utf-8")
    build(graph, out)
    clean = tmp_path / "clean"
    build(graph, clean)
    assert outputs(out) == outputs(clean)


def test_files_are_known_unchanged_by_their_stamps_and_an_edit_that_keeps_size_and_time_is_seen(
        graph: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parsed: list[str]) -> None:
    monkeypatch.setenv("EKG_PARALLEL_MIN", "100000")
    hashed: list[Path] = []
    real = incremental._sha1_of

    def counting(path: Path) -> str | None:
        hashed.append(path)
        return real(path)

    monkeypatch.setattr(incremental, "_sha1_of", counting)
    out = tmp_path / "out"
    build(graph, out)
    build(graph, out)  # files changed just before the build started are read to be sure
    assert len(hashed) == len(list(graph.rglob("*.yaml")))
    monkeypatch.setattr(incremental, "RACY_NS", 0)  # as if they had been changed long before
    hashed.clear()
    parsed.clear()
    build(graph, out)
    assert hashed == [] and parsed == []
    edited = first(graph, "companies")  # the same size and modification time
    before = edited.stat()
    text = edited.read_text(encoding="utf-8")
    swapped = text.replace("Synthetic", "Synthetik", 1)
    assert swapped != text and len(swapped) == len(text)
    edited.write_text(swapped, encoding="utf-8")
    os.utime(edited, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert edited.stat().st_mtime_ns == before.st_mtime_ns
    build(graph, out)
    assert parsed == [edited.name]  # its change time moved: read, and parsed again
    assert b"Synthetik" in (out / "ecosystem.ttl").read_bytes()


def test_an_index_changed_since_the_build_is_not_copied_from(
        graph: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parsed: list[str]) -> None:
    monkeypatch.setenv("EKG_PARALLEL_MIN", "50")
    out = tmp_path / "out"
    build(graph, out)
    con = sqlite3.connect(out / "index.sqlite")
    con.execute("UPDATE entity SET name_en = 'tampered'")
    con.commit()
    con.close()
    edited = first(graph, "companies")
    edited.write_text(edited.read_text(encoding="utf-8") + "note: edited\n", encoding="utf-8")
    parsed.clear()
    build(graph, out)
    clean = tmp_path / "clean"
    build(graph, clean)
    assert outputs(out) == outputs(clean)
    assert b"tampered" not in (out / "index.sqlite").read_bytes()


def test_scratch_folders_of_killed_builds_are_swept(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead = tmp_path / f"{incremental.SCRATCH_PREFIX}{gone.stdout.strip()}-x1"
    alive = tmp_path / f"{incremental.SCRATCH_PREFIX}{os.getpid()}-x2"
    other = tmp_path / "unrelated"
    for d in (dead, alive, other):
        d.mkdir()
        (d / "part").write_bytes(b"x" * 10)
    monkeypatch.setattr(incremental, "SCRATCH", tmp_path)
    folder, own = incremental._scratch_folder(tmp_path / "build")
    assert own and folder.parent == tmp_path and folder.name.startswith(
        f"{incremental.SCRATCH_PREFIX}{os.getpid()}-")
    assert not dead.exists() and alive.exists() and other.exists()
    monkeypatch.setattr(incremental, "SCRATCH", tmp_path / "missing")
    assert incremental._scratch_folder(tmp_path / "build") == (tmp_path / "build", False)
    # too little room for the parts of this many files: the build's folder instead
    monkeypatch.setattr(incremental, "SCRATCH", tmp_path)
    room = incremental._free_bytes(tmp_path)
    many = room // incremental.SCRATCH_PER_FILE + 1
    assert incremental._scratch_folder(tmp_path / "build", many) == (tmp_path / "build", False)


def test_punch_hole_frees_what_was_copied(tmp_path: Path) -> None:
    path = tmp_path / "part"
    path.write_bytes(b"x" * (1 << 20))
    fd = os.open(path, os.O_RDWR)
    try:
        before = os.fstat(fd).st_blocks
        if not incremental.punch_hole(fd, 0, 1 << 19):
            pytest.skip("this file system cannot punch holes")
        assert os.fstat(fd).st_blocks < before
        assert os.fstat(fd).st_size == 1 << 20  # the size is kept: later offsets hold
        assert os.pread(fd, 4, 0) == b"\0" * 4 and os.pread(fd, 4, 1 << 19) == b"xxxx"
    finally:
        os.close(fd)


def test_a_full_build_on_two_cores_makes_the_map_while_the_files_are_read(
        graph: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # each entity is handed to the map's process as it is read; the page is the one drawn
    # from the whole graph at once, and a failed check or a failure in that process stops the
    # build with the previous one left as it was and no process left behind
    import multiprocessing

    from ecosystem_kg import pipeline, render
    from ecosystem_kg.errors import BuildError

    made: list[object] = []
    real = pipeline._MapFeed

    def counting(*args: Any) -> Any:
        made.append(real(*args))
        return made[-1]

    monkeypatch.setattr(pipeline, "_MapFeed", counting)
    monkeypatch.setenv("EKG_PARALLEL_MIN", "100000")
    build(graph, tmp_path / "serial")
    assert not made
    monkeypatch.setenv("EKG_PARALLEL_MIN", "50")
    out = tmp_path / "out"
    build(graph, out)
    assert len(made) == 1
    page = (out / "ecosystem.html").read_bytes()
    assert page == (tmp_path / "serial" / "ecosystem.html").read_bytes()
    before = outputs(out)

    edited = first(graph, "companies")
    text = edited.read_text(encoding="utf-8")
    target = re.search(r"to: ([a-z0-9-]+)", text)
    assert target is not None
    edited.write_text(text.replace(f"to: {target.group(1)}", "to: no-such-entity", 1),
                      encoding="utf-8")
    shutil.rmtree(out / incremental.CACHE_DIR)  # a full build again, not an edit
    with pytest.raises(ValidationFailed) as failed:
        build(graph, out)
    assert len(made) == 2
    assert "no-such-entity" in failed.value.report()
    assert outputs(out) == before
    assert not multiprocessing.active_children()

    edited.write_text(text, encoding="utf-8")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(render.MapData, "payload", broken)  # in the map's process too
    with pytest.raises((BuildError, OSError), match="No space left"):
        build(graph, out)
    assert len(made) == 3
    assert outputs(out) == before
    assert not multiprocessing.active_children()

    def dies(*args: Any, **kwargs: Any) -> None:
        os._exit(1)

    monkeypatch.setattr(render.MapData, "add_part", dies)  # the map's process dies at once
    with pytest.raises(BuildError, match="died"):
        build(graph, out)
    assert len(made) == 4
    assert outputs(out) == before
    assert not multiprocessing.active_children()
