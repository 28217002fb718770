"""Plain-text tables and views for people (the JSON views are the query results as they are)."""

from __future__ import annotations

import unicodedata
from typing import Any


def width(text: str) -> int:
    """Terminal columns: East Asian wide and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, n: int) -> str:
    return text + " " * max(0, n - width(text))


def _get(row: dict[str, Any], path: str) -> str:
    cur: Any = row
    for part in path.split("."):
        if isinstance(cur, dict):
            cur = cur.get(part)
        else:
            cur = None
    if cur is None:
        return ""
    if isinstance(cur, float):
        return f"{cur:g}"
    if isinstance(cur, dict):
        return " ".join(str(v) for v in cur.values() if v is not None)
    return " ".join(str(cur).split())


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    cells = [[_get(r, c) for c in columns] for r in rows]
    heads = [c.replace(".", " ") for c in columns]
    widths = [max([width(h)] + [width(row[i]) for row in cells]) for i, h in enumerate(heads)]
    lines = ["  ".join(_pad(h, w) for h, w in zip(heads, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in cells:
        lines.append("  ".join(_pad(c, w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _src(sources: list[dict[str, Any]]) -> str:
    """Source ids in a statement's line; the entity's source list gives their titles."""
    return ", ".join(s["id"] for s in sources)


def _bib(s: dict[str, Any]) -> str:
    parts = [s.get("publisher") or "", str(s.get("date") or "n.d.")]
    title = s.get("title") or ""
    return f"  {s['id']}: {title} ({', '.join(p for p in parts if p)})"


def _qty(a: dict[str, Any]) -> str:
    v = a.get("value")
    unit = a.get("unit")
    return f"{v} {unit}" if unit else str(v)


def show_text(d: dict[str, Any]) -> str:
    name = d["name"]
    out = [f"{name['zh']}  {name['en']}  [{d['type']}]  id: {d['id']}"]
    if d["aliases"]:
        out.append("aliases: " + ", ".join(d["aliases"]))
    for lang, text in d["description"].items():
        out.append(f"{lang}: {text}")
    if d.get("wikidata"):
        out.append(f"wikidata: {d['wikidata']}")
    if d["attributes"]:
        out.append("")
        out.append("attributes:")
        for a in d["attributes"]:
            when = a.get("date") or a.get("start") or ""
            note = f"  ({a['note']})" if a.get("note") else ""
            out.append(f"  {a['attribute']}: {_qty(a)}  {when}{note}".rstrip())
            if a["sources"]:
                out.append(f"      source: {_src(a['sources'])}")
    if d["relations"]:
        out.append("")
        out.append("relations:")
        for r in d["relations"]:
            arrow = "->" if r["direction"] == "out" else "<-"
            other = f"{r['name']['zh'] or r['name']['en']} ({r['id']})"
            extra = " ".join(x for x in [
                r.get("date") or "", f"role: {r['role']}" if r.get("role") else "",
                _qty(r["amount"]) if r.get("amount") else ""] if x)
            out.append(f"  {arrow} {r['rel']} {other}  {extra}".rstrip())
            if r.get("note"):
                out.append(f"      note: {r['note']}")
            if r["sources"]:
                out.append(f"      source: {_src(r['sources'])}")
    cited: dict[str, dict[str, Any]] = {}
    for group in [d["sources"]] + [x["sources"] for x in d["attributes"] + d["relations"]]:
        for s in group:
            cited.setdefault(s["id"], s)
    if cited:
        out.append("")
        out.append("sources:")
        out.extend(_bib(s) for _, s in sorted(cited.items()))
    if d.get("file"):
        out.append("")
        out.append(f"file: {d['file']}")
    return "\n".join(out)


def path_text(d: dict[str, Any]) -> str:
    if not d["found"]:
        return "no path"
    nodes = d.get("nodes", {})

    def nm(i: str) -> str:
        n = nodes.get(i, {}).get("name", {})
        return f"{n.get('zh') or n.get('en') or i} ({i})"

    paths = d.get("paths") or [d["steps"]]
    out = []
    for k, steps in enumerate(paths, 1):
        if len(paths) > 1:
            out.append(f"path {k}:")
        if not steps:
            out.append("  (same entity)")
        for s in steps:
            if s["direction"] == "out":
                out.append(f"  {nm(s['from'])} --{s['rel']}--> {nm(s['to'])}")
            else:
                out.append(f"  {nm(s['from'])} <--{s['rel']}-- {nm(s['to'])}")
    out.append(f"{d['hops']} hop(s)")
    return "\n".join(out)


def stats_text(d: dict[str, Any]) -> str:
    out = [f"entities {d['entities']}, relations {d['relations']} ({d['dated_relations']} "
           f"dated), attribute facts {d['attribute_facts']}, sources {d['sources']}, "
           f"triples {d['triples']}, data as of {d['data_date']}", "", "by type:"]
    out += [f"  {t:<26}{n:>6}" for t, n in sorted(d["by_type"].items(), key=lambda kv: -kv[1])]
    out += ["", "by relation:"]
    out += [f"  {r:<26}{n:>6}" for r, n in sorted(d["by_relation"].items(),
                                                    key=lambda kv: -kv[1])]
    return "\n".join(out)


def _short(ref: dict[str, Any] | None) -> str:
    if not ref:
        return ""
    name = ref.get("name") or {}
    return str(name.get("zh") or name.get("en") or ref.get("id", ""))


def timeline_text(rows: list[dict[str, Any]]) -> str:
    """One line per dated statement: date, subject, relation, object or value with its unit."""
    out = []
    for r in rows:
        when = r["date"] + (f"..{r['end']}" if r.get("end") else "")
        what = _short(r["object"]) if r.get("object") else _qty(r)
        if r.get("amount"):
            what += f" ({_qty(r['amount'])})"
        out.append({"date": when, "subject": _short(r["subject"]), "rel": r["rel"],
                    "object": what})
    return table(out, ["date", "subject", "rel", "object"])
