"""The README's examples are true: its entity file validates, its Python runs, its commands
exist."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from ecosystem_kg import ValidationFailed, check

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, re.S)


def test_the_example_entity_file_validates_beside_the_shipped_data(tmp_path: Path) -> None:
    example = _blocks("yaml")[0]
    eid = re.search(r"^id: (\S+)", example, re.M)
    assert eid is not None
    graph = tmp_path / "graph"
    shutil.copytree(ROOT / "graph", graph)
    target = graph / "investors" / f"{eid.group(1)}.yaml"
    target.write_text(example, encoding="utf-8")
    loaded = check(graph, ROOT / "ontology")
    ent = next(e for e in loaded.entities if e.id == eid.group(1))
    assert {r.rel for r in ent.relations} == {"invested_in", "located_in"}
    assert {f.prop for f in ent.facts} == {"founded", "funding_total", "website"}
    # and a mistake in it is caught with its place in the file
    target.write_text(example.replace("rel: invested_in", "rel: invested"), encoding="utf-8")
    with pytest.raises(ValidationFailed) as err:
        check(graph, ROOT / "ontology")
    line = next(i for i, t in enumerate(example.splitlines(), 1) if "rel: invested_in" in t)
    assert [p.location.line for p in err.value.problems] == [line]
    assert "did you mean 'invested_in'" in err.value.problems[0].message


def test_the_example_source_file_has_the_fields_the_loader_knows(tmp_path: Path) -> None:
    src = _blocks("yaml")[1]
    graph = tmp_path / "graph"
    shutil.copytree(ROOT / "graph", graph)
    sid = re.search(r"^id: (\S+)", src, re.M)
    assert sid is not None
    (graph / "sources" / f"{sid.group(1)}.yaml").write_text(src, encoding="utf-8")
    check(graph, ROOT / "ontology")


def test_the_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(ROOT / "graph", tmp_path / "graph")
    monkeypatch.chdir(tmp_path)
    scope: dict[str, object] = {}
    exec(_blocks("python")[0], scope)  # noqa: S102 - our own README
    assert (tmp_path / "build" / "index.sqlite").is_file()
    assert len(scope["g"]) == len(scope["compiled"].triples)  # type: ignore[attr-defined,arg-type]


def test_the_two_set_up_commands_are_the_ones_ci_runs() -> None:
    setup = README.split("## Set up", 1)[1].split("\n## ", 1)[0]
    commands = _blocks("console")
    shown = [c.strip() for c in commands if c.strip() in setup]
    assert shown == [
        "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/ekg build",
        "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && "
        ".venv/bin/python -m pytest",
    ]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert shown[1] in ci
