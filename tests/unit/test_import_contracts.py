"""The import contracts in pyproject.toml (checked by `lint-imports`) keep up with the code: the
forbidden contract starts from every audience module that the stream, ingest, read API and
console handlers import. (grimp counts an import inside a function as its module's: the contract
holds even for what a cold start never runs.)"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

PACKAGE_ROOT = ROOT / "layers" / "audience"
LIGHT_HANDLERS = ("stream", "ingest", "profiles_api", "console")  # what never loads the ML layer
FORBIDDEN_NAME = "Scoring functions never load the ML libraries"


def contract(name: str) -> dict[str, Any]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts: list[dict[str, Any]] = config["tool"]["importlinter"]["contracts"]
    [found] = [c for c in contracts if c["name"] == name]
    return found


def source_file(module: str) -> Path | None:
    """The file of an audience module or package, None when there is no such module."""
    path = PACKAGE_ROOT.joinpath(*module.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def audience_imports(path: Path) -> set[str]:
    """The audience modules ``path`` imports, anywhere in it: ``from audience.api import models``
    names the module ``audience.api.models``; ``from audience.api.edge import responses`` names
    ``audience.api.edge``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "audience"}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "audience":
            module = str(node.module)
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                found.add(submodule if source_file(submodule) else module)
    return found


def covered(module: str, sources: list[str]) -> bool:
    # import-linter takes each source as a package (as_packages defaults to true).
    return any(module == source or module.startswith(f"{source}.") for source in sources)


@pytest.mark.parametrize("handler", LIGHT_HANDLERS)
def test_every_audience_module_a_light_handler_imports_is_a_source_of_the_forbidden_contract(handler: str) -> None:
    app = ROOT / "functions" / handler / "app.py"
    sources = contract(FORBIDDEN_NAME)["source_modules"]

    imported = audience_imports(app)

    assert all(source_file(module) for module in imported), f"{app} imports a module that does not exist"
    missing = sorted(module for module in imported if not covered(module, sources))
    assert not missing, f"add to the forbidden contract's source_modules in pyproject.toml: {missing}"


def test_the_forbidden_contract_forbids_the_ml_libraries_counting_external_packages() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    forbidden = contract(FORBIDDEN_NAME)

    assert config["include_external_packages"] is True
    assert set(forbidden["forbidden_modules"]) >= {"numpy", "scipy", "sklearn", "pandas", "joblib"}
    assert all(source_file(module) for module in forbidden["source_modules"])
