"""The repository stands alone and its build is reproducible within known bounds."""

from __future__ import annotations

import os
import re
import subprocess
import tomllib

from tests.conftest import ROOT

# Files a clone does not have: the design notes outside the repository.
FOREIGN = re.compile(
    r"\.\./shared|\bshared/|\bDESIGN(\.md)?\s*§|\bDESIGN\.md|\bdomain\.md\b(?<!docs/domain\.md)"
    r"|\bdomain §|perf-notes|STYLE\.md|\bSTYLE §|\bUI\.md"
)
SEARCHED = ("app", "docs", "bench", "tests", "scripts", ".ci")
TOP_FILES = ("README.md", "Makefile", "Dockerfile", "pyproject.toml", "alembic.ini")
SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".ini", ".sh", ".lua", ".html", ".js", ".css"}


def _tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", *SEARCHED, *TOP_FILES],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    return [
        name
        for name in listed
        if (name in TOP_FILES or any(name.endswith(s) for s in SUFFIXES))
        and (ROOT / name).is_file()
        and name != "tests/contract/test_repo.py"
    ]


def test_nothing_refers_to_files_a_clone_does_not_have() -> None:
    hits = []
    files = _tracked_files()
    assert "app/cli.py" in files
    assert "README.md" in files
    for name in files:
        for number, line in enumerate((ROOT / name).read_text("utf-8").splitlines(), start=1):
            for match in FOREIGN.finditer(line):
                before = line[: match.start()]
                if before.endswith("docs/") or (name.startswith("docs/") and before.endswith("](")):
                    continue  # docs/domain.md is the repository's own (linked from docs/ as such)
                hits.append(f"{name}:{number}: {line.strip()[:120]}")
    assert hits == [], "\n".join(hits[:40]) + f"\n({len(hits)} references)"


def test_the_pattern_catches_what_it_should() -> None:
    for text in ("see ../shared/DESIGN.md", "domain.md §12.1", "(perf-notes.md §8)", "STYLE.md"):
        assert FOREIGN.search(text), text
    assert not FOREIGN.search("the rules: docs/domain.md")


def test_every_dependency_has_an_upper_bound() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements.extend(extra)
    unbounded = [r for r in requirements if "<" not in r]
    assert unbounded == []


def _make_dry_run(target: str) -> str:
    return subprocess.run(
        ["make", "-n", "--no-print-directory", target],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        # Under `make test` the parent's MAKEFLAGS would make this a sub-make that prints more.
        env={k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MAKELEVEL", "MFLAGS"}},
    ).stdout


def test_make_test_says_what_it_installs() -> None:
    notice = subprocess.run(
        ["make", "-s", "test-notice"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    for what in ("postgresql", "wrk", "JUISTEPLEK_TEST_POSTGRES_URL", "root"):
        assert what in notice
    first = _make_dry_run("test").splitlines()[0]
    assert first.startswith('echo "make test: installs'), first


def test_pure_coverage_starts_no_postgresql() -> None:
    [command] = [line for line in _make_dry_run("pure-coverage").splitlines() if "pytest" in line]
    assert command.startswith("JUISTEPLEK_TEST_BACKENDS=sqlite ")


def test_readme_names_the_test_database_setting() -> None:
    assert "JUISTEPLEK_TEST_POSTGRES_URL" in (ROOT / "README.md").read_text("utf-8")


def test_the_licence_is_the_one_declared() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["license"]
    assert declared == "EUPL-1.2"
    text = (ROOT / "LICENSE").read_text("utf-8")
    assert text.startswith("EUROPEAN UNION PUBLIC LICENCE v. 1.2")
    assert "Appendix" in text
    assert len(text) > 10_000
