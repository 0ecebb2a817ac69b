"""The shape of the code: imports run one way, and none hides inside a function.

``foundation`` (errors, tables, migrations, the database engine) is below both;
``recipients`` (the list) uses only ``foundation``; ``newsletters`` (the
pipeline) may use both. The list's handover interface is for delivery alone.
A function-level import of the project's own code is how a cycle gets hidden,
so there is none.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("foundation", "recipients", "newsletters")
OWN = set(PACKAGES) | {"templates"}
# What each package may import from the project.
ALLOWED = {
    "foundation": {"foundation"},
    "recipients": {"foundation", "recipients"},
    "newsletters": {"foundation", "recipients", "newsletters", "templates"},
}


def _modules():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield package, path


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path):
    """``(imported module, line, at module level?)`` for every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    own = _module_name(path).split(".")
    package = own if path.name == "__init__.py" else own[:-1]
    function_nodes = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            function_nodes.update(id(child) for child in ast.walk(node) if child is not node)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                names = [".".join(base + ([node.module] if node.module else []))]
            else:
                names = [node.module or ""]
        else:
            continue
        for name in names:
            yield name, node.lineno, id(node) not in function_nodes


def test_imports_point_down_only():
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for package, path in _modules()
        for name, line, _top in _imports(path)
        if name.split(".")[0] in OWN and name.split(".")[0] not in ALLOWED[package]
    ]
    assert wrong == [], "imports pointing the wrong way:\n" + "\n".join(wrong)


def test_no_import_of_the_project_hides_inside_a_function():
    hidden = [
        f"{path.relative_to(ROOT)}:{line} imports {name} inside a function"
        for _package, path in _modules()
        for name, line, top in _imports(path)
        if not top and name.split(".")[0] in OWN
    ]
    assert hidden == [], "function-level imports of our own code:\n" + "\n".join(hidden)


def test_only_delivery_uses_the_lists_handover_interface():
    users = sorted(
        _module_name(path)
        for _package, path in _modules()
        if any(name == "recipients.handover" for name, _line, _top in _imports(path))
    )
    assert users and all(name.startswith("newsletters.delivery") for name in users), users


@pytest.mark.parametrize("where, source, check, expected", [
    ("recipients", "from newsletters.errors import X\n", test_imports_point_down_only,
     "recipients/bad.py:1 imports newsletters.errors"),
    ("foundation", "from ..recipients import store\n", test_imports_point_down_only,
     "foundation/bad.py:1 imports recipients"),
    ("newsletters", "def f():\n    from .build import x\n", test_no_import_of_the_project_hides_inside_a_function,
     "newsletters/bad.py:2 imports newsletters.build inside a function"),
])
def test_the_checks_above_catch_a_wrong_import(tmp_path, monkeypatch, where, source, check, expected):
    """The rules are only worth having if they see a violation: plant one and look."""
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / where / "bad.py").write_text(source)
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    with pytest.raises(AssertionError, match=expected.replace(".", r"\.")):
        check()
