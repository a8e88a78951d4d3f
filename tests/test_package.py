"""The public API: the lazy export map, the type checkers' view of it, sub-packages' `__all__`, the README."""

import ast
import importlib
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import keras_sage

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_INIT = ROOT / "keras_sage" / "__init__.py"


def type_checking_imports() -> dict[str, str]:
    """Name → module of the imports under `if TYPE_CHECKING:` in keras_sage/__init__.py."""
    tree = ast.parse(PACKAGE_INIT.read_text())
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
    )
    return {
        alias.name: statement.module
        for statement in block.body
        if isinstance(statement, ast.ImportFrom)
        for alias in statement.names
    }


def test_every_public_name_resolves():
    for name in keras_sage.__all__:
        assert getattr(keras_sage, name) is not None, name


def test_all_is_the_export_map():
    assert sorted(keras_sage.__all__) == sorted(["__version__", *keras_sage._EXPORTS])
    assert len(set(keras_sage.__all__)) == len(keras_sage.__all__)


def test_type_checkers_see_every_exported_name_from_its_module():
    assert type_checking_imports() == keras_sage._EXPORTS


@pytest.mark.parametrize("name", sorted(keras_sage._EXPORTS))
def test_each_export_is_in_its_sub_package_all(name):
    module = importlib.import_module(keras_sage._EXPORTS[name])
    assert name in module.__all__, (
        f"{name} is exported by keras_sage but not listed in {module.__name__}.__all__"
    )
    assert getattr(keras_sage, name) is getattr(module, name)


@pytest.mark.parametrize(
    "package",
    ["analysis", "datasets", "hypermodels", "rsa", "teachers", "tuners"],
)
def test_sub_package_all_names_resolve(package):
    module = importlib.import_module(f"keras_sage.{package}")
    for name in module.__all__:
        assert hasattr(module, name), f"keras_sage.{package}.__all__ lists {name}, which it does not define"


def test_every_keras_sage_name_in_the_readme_resolves():
    text = (ROOT / "README.md").read_text()
    names = sorted(set(re.findall(r"keras_sage(?:\.[A-Za-z_][A-Za-z0-9_]*)+", text)))
    assert "keras_sage.SageTuner" in names  # the pattern finds the README's names
    for dotted in names:
        parts = dotted.split(".")
        value = keras_sage
        for position, part in enumerate(parts[1:], start=2):
            if not hasattr(value, part):
                value = importlib.import_module(".".join(parts[:position]))
            else:
                value = getattr(value, part)
        assert value is not None, dotted


def test_unknown_name_raises_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        keras_sage.no_such_name  # noqa: B018


def test_the_old_scorer_name_warns_and_is_the_new_class():
    with pytest.warns(DeprecationWarning, match="TeacherGuidedScorer"):
        old = keras_sage.TeacherGuidedObjective
    assert old is keras_sage.TeacherGuidedScorer
    assert "TeacherGuidedObjective" not in keras_sage.__all__


def test_import_does_not_import_tensorflow():
    code = "import sys, keras_sage, keras_sage.contract; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_contract_imports_nothing_of_the_package_or_third_parties():
    tree = ast.parse((ROOT / "keras_sage" / "contract.py").read_text())
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    assert imported <= {"__future__", "re", "typing"}


def test_no_module_of_the_package_switches_the_matplotlib_backend():
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "keras_sage").rglob("*.py")
        if "matplotlib.use(" in path.read_text() or "import matplotlib.pyplot" in path.read_text()
    ]
    assert offenders == []


def test_deprecation_is_not_raised_by_the_new_names():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        assert keras_sage.TeacherGuidedScorer.__name__ == "TeacherGuidedScorer"
