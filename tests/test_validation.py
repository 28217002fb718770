"""Every kind of bad input gives located problems with exact messages; nothing runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecosystem_kg import ValidationFailed, check
from ecosystem_kg.errors import SourceLocation
from ecosystem_kg.load import parse_entity

from .conftest import MINI, run_ekg

BAD = Path(__file__).resolve().parent / "bad_inputs"
BROKEN = sorted(p for p in BAD.iterdir() if p.is_dir())


@pytest.mark.parametrize("case", BROKEN, ids=[p.name for p in BROKEN])
def test_broken_fixture_reports_exact_located_messages(case: Path, monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    monkeypatch.chdir(case)
    with pytest.raises(ValidationFailed) as info:
        check(Path("."))
    expected = (case / "expected.txt").read_text(encoding="utf-8")
    assert info.value.report() + "\n" == expected
    for problem in info.value.problems:
        assert isinstance(problem.location, SourceLocation)
        assert problem.location.line >= 1 and problem.location.col >= 1


@pytest.mark.parametrize("name", ["yaml-syntax", "python-tag", "duplicate-id", "dangling",
                                  "unknown-relation"])
def test_cli_check_exit_1_without_traceback(name: str) -> None:
    case = BAD / name
    r = run_ekg("check", "--graph", ".", cwd=case)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert r.stderr == (case / "expected.txt").read_text(encoding="utf-8")
    assert r.stdout == ""


def test_python_tag_is_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    raw = (f"id: x\ntype: !!python/object/apply:os.system ['touch {marker}']\n"
           "name: {zh: 甲, en: A}\n").encode()
    ent, problems = parse_entity(raw, "x.yaml", "x")
    assert ent is None or ent.type is None or not marker.exists()
    assert [str(p) for p in problems] == [
        "x.yaml:2:7: unsupported YAML tag '!!python/object/apply:os.system'; entity files hold "
        "plain data only (remove the tag)"]
    assert not marker.exists()


def test_billion_laughs_is_refused_quickly() -> None:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, 10):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 9)}]")
    raw = ("\n".join(lines) + "\n").encode()
    ent, problems = parse_entity(raw, "bomb.yaml", "bomb")
    assert ent is None
    assert problems and all("aliases are not supported" in p.message for p in problems)


def test_all_problems_are_collected_not_just_the_first(tmp_path: Path) -> None:
    g = tmp_path / "g"
    (g / "sources").mkdir(parents=True)
    (g / "sources" / "s.yaml").write_text("id: s\ntype: Source\ntitle: T\n", encoding="utf-8")
    (g / "companies").mkdir()
    (g / "companies" / "a.yaml").write_text(
        "id: a\ntype: Company\nname: {zh: 甲, en: A}\nsource: s\nrelations:\n"
        "  - {rel: listed_in, to: b, source: s}\n  - {rel: located_in, to: nowhere, source: t}\n",
        encoding="utf-8")
    with pytest.raises(ValidationFailed) as info:
        check(g)
    msgs = [p.message for p in info.value.problems]
    assert len(msgs) == 4, msgs
    assert any("unknown relation 'listed_in'" in m for m in msgs)
    assert any("unknown entity 'b'" in m for m in msgs)
    assert any("unknown entity 'nowhere'" in m for m in msgs)
    assert any("unknown source 't'" in m for m in msgs)


def test_mini_fixture_is_valid() -> None:
    loaded = check(MINI)
    assert loaded.problems == []
    assert {e.id for e in loaded.entities} >= {"metax", "biren", "news-a"}


def test_dates_keep_their_precision(tmp_path: Path) -> None:
    raw = ("id: a\ntype: Company\nname: {zh: 甲, en: A}\nrelations:\n"
           "  - {rel: located_in, to: b, date: 2026}\n  - {rel: located_in, to: b, date: 2026-01}\n"
           "  - {rel: located_in, to: b, date: 2026-01-27}\n").encode()
    ent, problems = parse_entity(raw, "a.yaml", "a")
    assert problems == [] and ent is not None
    assert [r.date for r in ent.relations] == ["2026", "2026-01", "2026-01-27"]
    assert [r.index for r in ent.relations] == [1, 2, 3]


LINK_CASES = ["dangling", "part-of-cycle", "range", "self-relation", "source-as-target",
              "unknown-source"]


@pytest.mark.parametrize("name", LINK_CASES)
def test_the_digest_check_finds_what_validate_links_finds(name: str) -> None:
    """A parallel build without the map checks the links on digests (``links_pass``); where
    the full check finds a problem across files, the digests fail too (and the entities are
    then read to say what), and a graph the full check passes passes."""
    from ecosystem_kg.pipeline import load_graph
    from ecosystem_kg.validate import links_of, links_pass, validate_links

    def digest_verdict(case: Path) -> tuple[bool, bool]:
        loaded = load_graph(case)
        kinds = {e.id: e.type for e in loaded.entities}
        links = [(e.id, links_of(e, loaded.ontology)) for e in loaded.entities]
        return (links_pass(links, kinds, loaded.ontology),
                not validate_links(loaded.entities, loaded.ontology))

    assert digest_verdict(BAD / name) == (False, False)
    assert digest_verdict(MINI) == (True, True)
    shipped = Path(__file__).resolve().parents[1] / "graph"
    assert digest_verdict(shipped) == (True, True)
