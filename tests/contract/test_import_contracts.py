"""The dependency rule (docs/architecture.md) holds for the code, and its contracts catch a
wrong import: each case adds one to a scratch copy of the ``app`` package and expects
``lint-imports`` to name it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    # The scratch tree goes first on the path, ahead of the installed (editable) package.
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(tree / "pyproject.toml")],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _python_only(directory: str, names: list[str]) -> list[str]:
    here = Path(directory)
    return [
        n for n in names if n == "__pycache__" or not (n.endswith(".py") or (here / n).is_dir())
    ]


LAYERS = "Layers: a module imports only from its own layer or the layers below it"
PURE = "Pure modules import no I/O (database, HTTP, web framework)"
KERNEL = "The shared kernel imports no domain, flow, HTTP kit, router or page"

# module, the wrong import added to it, the contract it breaks, the import the report names
WRONG = [
    (
        "app/capacity/board.py",
        "from app.routers import placements",
        LAYERS,
        "app.capacity.board -> app.routers.placements",
    ),
    (
        "app/kpi/service.py",
        "from app.web import pagekit",
        LAYERS,
        "app.kpi.service -> app.web.pagekit",
    ),
    (
        "app/registry/service.py",
        "from app.placement import cases",
        LAYERS,
        "app.registry.service -> app.placement.cases",
    ),
    (
        "app/capacity/service.py",
        "from app.flows import search",
        LAYERS,
        "app.capacity.service -> app.flows.search",
    ),
    ("app/placement/states.py", "import sqlalchemy", PURE, "app.placement.states -> sqlalchemy"),
    ("app/kpi/formulas.py", "from app.db import Database", PURE, "app.kpi.formulas -> app.db"),
    ("app/triage/rules.py", "import httpx", PURE, "app.triage.rules -> httpx"),
    (
        "app/config.py",
        "from app.placement import states",
        KERNEL,
        "app.config -> app.placement.states",
    ),
]


def _add_import(module: Path, statement: str) -> None:
    """``statement`` at the end of the module (a module-level import like any other)."""
    text = module.read_text("utf-8")
    module.write_text(f"{text.rstrip()}\n\n{statement}  # noqa\n", "utf-8")


def _section(report: str, contract: str) -> str:
    """The part of the broken-contracts report under ``contract``'s heading."""
    broken = report[report.index("Broken contracts") :]
    start = broken.index(contract + "\n")
    headings = [broken.find(c + "\n", start + 1) for c in (LAYERS, PURE, KERNEL)]
    end = min([h for h in headings if h > start] or [len(broken)])
    return broken[start:end]


def test_the_code_keeps_every_contract() -> None:
    done = _lint(ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "Contracts: 3 kept, 0 broken." in done.stdout


def test_every_wrong_import_is_reported_under_its_contract(tmp_path: Path) -> None:
    """A scratch copy of the app package (its Python files) and the contracts, with one wrong
    import added to each of several modules: each is named under the contract it breaks."""
    shutil.copytree(ROOT / "app", tmp_path / "app", ignore=_python_only)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for module, statement, _, _ in WRONG:
        _add_import(tmp_path / module, statement)
    done = _lint(tmp_path)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    assert "Contracts: 0 kept, 3 broken." in done.stdout
    missing = [
        (contract, reported)
        for _, _, contract, reported in WRONG
        if reported not in _section(done.stdout, contract)
    ]
    assert missing == [], done.stdout[-6000:]
