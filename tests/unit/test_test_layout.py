"""The test suite's own layout: shared code lives in tests/helpers/, and no test module imports another test
module (nor conftest.py, which holds fixtures only): a test module's names are its own."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _python_files() -> list[Path]:
    return sorted(p for p in TESTS.rglob("*.py") if "node_modules" not in p.parts)


def _is_test_module(name: str) -> bool:
    last = name.rsplit(".", 1)[-1]
    return last.startswith("test_") or last == "conftest"


def _imported_modules(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: ``from . import x`` / ``from .test_x import y``
                found += [f"{'.' * node.level}{node.module or ''}.{alias.name}" for alias in node.names]
            elif node.module:
                found.append(node.module)
                found += [f"{node.module}.{alias.name}" for alias in node.names]
    return found


def test_no_test_module_imports_another_test_module() -> None:
    offenders = [
        f"{path.relative_to(TESTS.parent)} imports {name}"
        for path in _python_files()
        for name in _imported_modules(path)
        if _is_test_module(name) and (name.startswith(("tests.", ".")) or name.count(".") == 0)
    ]
    assert offenders == [], "move the shared code into tests/helpers/:\n" + "\n".join(offenders)


def test_shared_test_code_lives_in_tests_helpers() -> None:
    stray = [
        str(path.relative_to(TESTS.parent))
        for path in _python_files()
        if not path.name.startswith("test_")
        and path.name != "conftest.py"
        and "helpers" not in path.relative_to(TESTS).parts[:1]
        and "data" not in path.relative_to(TESTS).parts[:1]  # tests/data: generators of the data files
    ]
    assert stray == [], f"helpers outside tests/helpers/: {stray}"
