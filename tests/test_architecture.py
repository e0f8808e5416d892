"""The layering the docs promise, checked on the code's imports: the engine core imports no
task environment and no ``prm``; the diagram in docs/architecture.md is the code's; every
entry point is a Hydra app or says why not."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_drawer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("architecture", ROOT / "docs" / "architecture.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DRAWER = load_drawer()
SEARCH_FILES = sorted((ROOT / "search").rglob("*.py"))


@pytest.mark.parametrize("path", SEARCH_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_search_never_imports_prm_and_the_core_no_environment(path: Path) -> None:
    imported = DRAWER.imported_modules(path)
    assert not {m for m in imported if m.split(".")[0] == "prm"}, "search must not import prm"
    if "envs" not in path.relative_to(ROOT).parts:
        environment = {m for m in imported if m.startswith("search.envs")}
        assert not environment, f"the engine core imports a task environment: {environment}"


def test_the_drawer_sees_function_level_imports(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from search.envs.arith import world\n    import prm.train\n")
    assert DRAWER.imported_modules(source) >= {"search.envs.arith", "prm.train"}


def test_architecture_diagram_is_up_to_date() -> None:
    text = DRAWER.DOC.read_text(encoding="utf-8")
    assert DRAWER.render(text) == text, "fix: python docs/architecture.py"
    assert "env_arith" in text and "core_strategies --> core_seams" in text


ENTRY_POINTS = sorted(
    path
    for package in ("search", "prm")
    for path in (ROOT / package).rglob("*.py")
    if re.search(r'^if __name__ == "__main__":', path.read_text(), re.MULTILINE)
)


@pytest.mark.parametrize("path", ENTRY_POINTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_entry_point_is_a_hydra_app_or_says_why(path: Path) -> None:
    text = path.read_text()
    assert "hydra.main(" in text or "not Hydra:" in text


def test_entry_points_are_found() -> None:
    names = {str(p.relative_to(ROOT)) for p in ENTRY_POINTS}
    assert {"search/__main__.py", "search/envs/arith/train_policy.py", "prm/sample.py"} <= names


def readme_layout() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return text.split("## Layout", 1)[1].split("```", 2)[1]


@pytest.mark.parametrize("package", ["search", "prm"])
def test_readme_layout_names_every_module_and_subpackage(package: str) -> None:
    layout = readme_layout().lower()
    missing = []
    for path in sorted((ROOT / package).iterdir()):
        if path.name.startswith(("_", ".")) and path.name != "__main__.py":
            continue
        if path.is_dir() and (path / "__init__.py").exists():
            subpackage = f"{package}/{path.name}/"
            named = subpackage in layout or f"{path.name}/" in layout or path.name in layout
            missing += [] if named else [subpackage]
        elif path.suffix == ".py" and path.stem not in layout:
            missing.append(str(path.relative_to(ROOT)))
    assert not missing, f"README's Layout does not name {missing}; fix: add them to it"
