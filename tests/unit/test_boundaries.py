"""The layering the architecture page promises, checked on the source: the write side never
imports the read side (the API process's composition root mounts both), and routes take
what they need as dependencies instead of reading `app.state`."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
API = ROOT / "services" / "invite_service" / "api"


def _imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


def test_the_write_side_never_imports_the_read_side():
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "services").rglob("*.py")
        if any(m == "projections" or m.startswith("projections.") for m in _imported_modules(path))
    ]
    assert not offenders


def test_the_read_side_never_imports_the_write_side():
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "projections").rglob("*.py")
        if any(m.startswith("services.invite_service") for m in _imported_modules(path))
    ]
    assert not offenders


def test_only_the_dependency_resolvers_and_the_factory_touch_app_state():
    allowed = {API / "deps.py", API / "app.py"}
    offenders = [str(p.relative_to(ROOT)) for p in API.rglob("*.py") if p not in allowed and "app.state" in p.read_text()]
    assert not offenders
