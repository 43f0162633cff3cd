"""tests/README.md's table from a module to its tests: every module of ``src/lstmkit`` has a
row (by its path, or by its folder's; a package's ``__init__.py`` only when it defines
functions or classes, not when it only re-exports), and every test file the table names
exists.

Oracle: the file trees themselves."""

import ast
import re
from pathlib import Path

TESTS = Path(__file__).parent
SOURCE = TESTS.parent / "src" / "lstmkit"


def table() -> list[tuple[list[str], list[str]]]:
    """The rows of the table: (module paths or folders, test files)."""
    text = (TESTS / "README.md").read_text("utf-8")
    section = text.split("## From a module to its tests", 1)[1]
    rows = []
    for line in section.splitlines():
        cells = line.split("|")
        if len(cells) != 4 or not cells[1].strip().startswith("`"):
            continue
        rows.append(tuple(re.findall(r"`([^`]+)`", cell) for cell in cells[1:3]))
    return rows


def defines_code(path: Path) -> bool:
    tree = ast.parse(path.read_text("utf-8"))
    return any(isinstance(node, ast.FunctionDef | ast.ClassDef) for node in tree.body)


def test_every_module_has_a_row():
    named = {name for modules, _ in table() for name in modules}
    missing = []
    for path in sorted(SOURCE.rglob("*.py")):
        relative = path.relative_to(SOURCE).as_posix()
        if relative in named or (path.name == "__init__.py" and not defines_code(path)):
            continue
        if not any(relative.startswith(name) for name in named if name.endswith("/")):
            missing.append(relative)
    assert missing == [], f"modules without a row in tests/README.md: {missing}"


def test_every_named_test_file_and_module_exists():
    rows = table()
    assert len(rows) > 30
    for modules, tests in rows:
        assert tests, f"a row without tests: {modules}"
        for name in modules:
            assert (SOURCE / name).exists(), name
        for name in tests:
            assert (TESTS / name).is_file(), name
