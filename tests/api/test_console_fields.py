"""The console reads the alert fields the wire sends: every property path the alert renderer
of ``api/static/console.js`` follows (``a.…`` on the alert, ``d.…`` on its detail) exists in
the alert's JSON Schema (the console read ``d.predicted`` and ``d.direction`` where the tracker
sends ``predicted_next`` and ``seen.direction``, so neither was ever shown).

A static check (no browser on this machine): the schema is what the tracker's tests validate
every published alert against, so a path found there is one the tracker produces.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest

from pak.wire.alert import stored_alert_json
from pak.wire.common import load_schema

CONSOLE = Path(__file__).resolve().parents[2] / "api" / "static" / "console.js"


def _function(src: str, name: str) -> str:
    """The text of ``function name(...) {...}`` (braces balanced)."""
    start = src.index(f"function {name}(")
    depth, i = 0, src.index("{", start)
    for j in range(i, len(src)):
        depth += {"{": 1, "}": -1}.get(src[j], 0)
        if depth == 0:
            return src[start : j + 1]
    raise AssertionError(f"{name} has no end")


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    doc, _, pointer = ref.partition("#")
    schema = load_schema(doc.removesuffix(".json")) if doc else load_schema("alert")
    for part in pointer.strip("/").split("/"):
        schema = schema[part]
    return _resolve(schema)


def _properties(node: dict[str, Any]) -> dict[str, Any] | None:
    node = _resolve(node)
    props = dict(node.get("properties", {}))
    for sub in node.get("allOf", []):
        props.update(_properties(sub) or {})
    return props or None


def _missing(root: dict[str, Any], path: list[str]) -> str | None:
    """The first component of ``path`` the schema does not have (None: all found). Walking
    stops at a node without properties (a string's or an array's own methods follow)."""
    node = root
    for i, name in enumerate(path):
        props = _properties(node)
        if props is None:
            return None
        if name not in props:
            return ".".join(path[: i + 1])
        node = props[name]
    return None


def _paths(body: str, var: str) -> set[tuple[str, ...]]:
    return {tuple(re.findall(r"\w+", m)) for m in
            re.findall(rf"(?<![\w.]){var}((?:\??\.\w+)+)", body)}


def test_the_alert_renderer_reads_fields_the_alert_has() -> None:
    src = CONSOLE.read_text("utf-8")
    body = "\n".join(_function(src, f) for f in ("renderAlertItem", "showAlert", "drawAlertOnMap"))
    alert = load_schema("alert")
    detail = alert["$defs"]["stolen_hit_detail"]
    a_paths, d_paths = _paths(body, "a"), _paths(body, "d")
    assert ("seen", "direction") in d_paths and ("alert_id",) in a_paths  # the scan finds them
    # the list and one alert (GET /alerts...) add what storage keeps: stored_alert_json's keys
    stored = set(re.findall(r'out\["(\w+)"\]', inspect.getsource(stored_alert_json)))
    assert "history" in stored
    missing = sorted(filter(None, [_missing(alert, list(p)) for p in a_paths
                                   if p[0] not in stored]))
    missing += sorted(f"detail.{m}" for m in filter(None, [_missing(detail, list(p))
                                                            for p in d_paths]))
    assert missing == []


@pytest.mark.parametrize("path", [["direction"], ["predicted"], ["seen", "heading"]])
def test_the_check_refuses_what_the_detail_lacks(path: list[str]) -> None:
    assert _missing(load_schema("alert")["$defs"]["stolen_hit_detail"], path) == ".".join(path)
