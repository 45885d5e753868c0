"""Imports run one way (DESIGN.md "Layers", docs/architecture.md): every ``import`` statement of
every module, at any depth (a function-level import counts too), read with ``ast``.

    pak <- gateway (drivers <- the rest) <- firmware_sim
    pak <- ingest <- tracker <- api
    benchmarks and tests sit on top and may import anything.

Besides the components, the edge and the centre keep each other's third-party code out: the
gateway never loads the server's database or web stack, and the centre never loads serial code.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMPONENTS = ("pak", "gateway", "firmware_sim", "ingest", "tracker", "api", "benchmarks")

#: component -> the components (top-level packages) its modules may import
ALLOWED: dict[str, frozenset[str]] = {
    "pak": frozenset({"pak"}),
    "gateway": frozenset({"pak", "gateway"}),
    "firmware_sim": frozenset({"pak", "gateway", "firmware_sim"}),
    "ingest": frozenset({"pak", "ingest"}),
    "tracker": frozenset({"pak", "ingest", "tracker"}),
    "api": frozenset({"pak", "ingest", "tracker", "api"}),
    "benchmarks": frozenset(COMPONENTS),
}
#: component -> third-party top-level modules it must never import
FORBIDDEN_LIBS: dict[str, frozenset[str]] = {
    # prometheus_client is in the gateway extras (pure Python, small): its metrics endpoint
    "gateway": frozenset({"psycopg", "psycopg_pool", "fastapi", "uvicorn"}),
    "ingest": frozenset({"serial"}),
    "tracker": frozenset({"serial"}),
    "api": frozenset({"serial"}),
}


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, dotted module) of every absolute import in one file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
    return out


def _modules(component: str) -> list[Path]:
    return sorted((ROOT / component).rglob("*.py"))


def violations(component: str) -> list[str]:
    bad: list[str] = []
    allowed = ALLOWED[component]
    libs = FORBIDDEN_LIBS.get(component, frozenset())
    for path in _modules(component):
        rel = path.relative_to(ROOT)
        parts = rel.with_suffix("").parts
        for line, module in _imports(path):
            top = module.split(".")[0]
            if top in COMPONENTS and top not in allowed:
                bad.append(f"{rel}:{line} imports {module}")
            elif top in libs:
                bad.append(f"{rel}:{line} loads {module}")
            elif (component == "gateway" and len(parts) > 2 and parts[1] == "drivers"
                  and top == "gateway" and not module.startswith("gateway.drivers")):
                bad.append(f"{rel}:{line} imports {module} (drivers import only pak and "
                           "drivers)")
            elif component == "firmware_sim" and top == "gateway" \
                    and not module.startswith("gateway.drivers"):
                bad.append(f"{rel}:{line} imports {module} (simulators use the drivers only)")
    return bad


@pytest.mark.parametrize("component", sorted(ALLOWED))
def test_imports_run_one_way(component: str) -> None:
    assert _modules(component), f"no modules found under {component}/"
    assert violations(component) == []


def test_the_check_sees_a_wrong_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The walk finds imports at any depth, so the test above can fail."""
    (tmp_path / "ingest").mkdir()
    (tmp_path / "ingest" / "bad.py").write_text(
        "import json\n\ndef f():\n    from tracker.storage import open_storage\n"
        "    import serial\n    return open_storage, serial, json\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path)
    assert violations("ingest") == ["ingest/bad.py:4 imports tracker.storage",
                                    "ingest/bad.py:5 loads serial"]
