"""The one list of error codes: every code casabook raises is in it, and every code in it is raised."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from casabook.errors import CODES, CasabookError, Mistakes, collect

SRC = Path(__file__).resolve().parents[1] / "src" / "casabook"
CODE_PATTERN = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


def _error_classes(trees: dict[Path, ast.Module]) -> set[str]:
    """CasabookError and every class in src/ derived from it (directly or through another)."""
    names = {"CasabookError"}
    grew = True
    while grew:
        grew = False
        for tree in trees.values():
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and node.name not in names and any(
                        isinstance(base, ast.Name) and base.id in names for base in node.bases):
                    names.add(node.name)
                    grew = True
    return names


def raised_codes() -> dict[str, list[str]]:
    """code -> where it is used: the first argument of an error class, or of YamlFile.error(code, key, message)."""
    trees = {path: ast.parse(path.read_text(encoding="utf-8")) for path in sorted(SRC.rglob("*.py"))}
    classes = _error_classes(trees)
    found: dict[str, list[str]] = {}
    for path, tree in trees.items():
        # An error class may name its own code: super().__init__("code", ...) in its body.
        for cls in ast.walk(tree):
            if isinstance(cls, ast.ClassDef) and cls.name in classes:
                for node in ast.walk(cls):
                    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                            and node.func.attr == "__init__" and isinstance(node.func.value, ast.Call)
                            and isinstance(node.func.value.func, ast.Name) and node.func.value.func.id == "super"
                            and node.args and isinstance(node.args[0], ast.Constant)):
                        found.setdefault(node.args[0].value, []).append(f"{path.relative_to(SRC)}:{node.lineno}")
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            is_class = (isinstance(func, ast.Name) and func.id in classes) or (
                isinstance(func, ast.Attribute) and func.attr in classes)
            is_doc_error = isinstance(func, ast.Attribute) and func.attr == "error" and len(node.args) == 3
            if not (is_class or is_doc_error):
                continue
            code = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "code"), None)
            where = f"{path.relative_to(SRC)}:{node.lineno}"
            if isinstance(code, ast.Constant) and isinstance(code.value, str):
                found.setdefault(code.value, []).append(where)
            elif path.name not in ("yamlfile.py", "errors.py"):
                # Only the forwarding helpers may pass a code they were given.
                found.setdefault(f"<not a literal: {ast.unparse(code) if code else 'none'}>", []).append(where)
    return found


def test_every_raised_code_is_listed():
    unlisted = {code: where for code, where in raised_codes().items() if code not in CODES}
    assert unlisted == {}, "add each to casabook.errors.CODES with its meaning"


def test_every_listed_code_is_raised():
    raised = raised_codes()
    assert [code for code in CODES if code not in raised] == [], "a listed code nothing raises: remove it"


@pytest.mark.parametrize("code", sorted(CODES))
def test_codes_are_stable_words_with_a_meaning(code: str):
    assert CODE_PATTERN.match(code)
    meaning = CODES[code]
    assert meaning and "\n" not in meaning and len(meaning) <= 100


def test_scan_finds_codes_where_they_are_raised():
    # The scan itself must see the loader's codes, a subclass's and a YamlFile.error's.
    raised = raised_codes()
    assert any(where.startswith("yamlfile.py") for where in raised["duplicate-key"])
    assert any(where.startswith("book/") for where in raised["book-failed"])  # BookBuildError
    assert any(where.startswith("model.py") for where in raised["schedule-overflow"])  # doc.error(...)
    assert any(where.startswith("errors.py") for where in raised["several-mistakes"])  # super().__init__(...)


def test_collect_one_is_itself_and_several_are_one_line_each():
    one = CasabookError("invalid", "missing required key", file="tracks/a.yml", key="title", line=1)
    two = CasabookError("notebook-missing", "'x.ipynb' does not exist", file="tracks/a.yml", key="notebooks[0].path",
                        line=9)
    assert collect([one]) is one
    both = collect([one, collect([two])])
    assert isinstance(both, Mistakes) and both.mistakes == [one, two] and both.exit_code == 2
    assert both.render().splitlines() == [one.render(), two.render()]
    assert collect([both, one]).mistakes == [one, two, one]
