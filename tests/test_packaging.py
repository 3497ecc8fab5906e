"""Packaging: the version ``qnxsim --version`` reports, and a source distribution that
carries its own test suite (tests, examples, benchmarks) and runs it."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import pytest

from qnxsim.__main__ import main

ROOT = Path(__file__).resolve().parent.parent
#: Directories the sdist carries whole (MANIFEST.in), and single files it must hold.
SHIPPED_DIRS = ("tests", "examples", "benchmarks")
SHIPPED_FILES = (
    "pyproject.toml",
    "README.md",
    "LICENSE",
    "CHANGELOG.md",
    "MANIFEST.in",
    "Makefile",
    "qnxsim/__init__.py",
    "qnxsim/py.typed",
    "tests/conftest.py",
    "tests/support.py",
    "examples/tutorial.ipynb",
    "benchmarks/bench.py",
    "benchmarks/check_ratios.py",
)


def project_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as f:
        version: str = tomllib.load(f)["project"]["version"]
    return version


def is_build_junk(path: str) -> bool:
    parts = path.split("/")
    return "__pycache__" in parts or ".hypothesis" in parts or path.endswith((".pyc", ".pyo"))


def project_files(dirs: tuple[str, ...]) -> set[str]:
    """The files under ``dirs`` that the project holds: git's list in a checkout, else (an
    unpacked sdist) the files on disk without caches."""
    try:
        done = subprocess.run(
            ["git", "ls-files", "-z", "--", *dirs],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except OSError:  # no git
        done = None
    if done is not None and done.returncode == 0:
        return {name for name in done.stdout.split("\0") if name}
    return {
        p.relative_to(ROOT).as_posix()
        for d in dirs
        for p in (ROOT / d).rglob("*")
        if p.is_file() and not is_build_junk(p.relative_to(ROOT).as_posix())
    }


# -- qnxsim --version ------------------------------------------------------------------------


def test_version_option_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    installed = importlib.metadata.version("qnxsim")
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"qnxsim {installed}\n"
    assert installed == project_version(), "the installed metadata is stale: reinstall"


def test_python_dash_m_qnxsim_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "qnxsim", "--version"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"qnxsim {importlib.metadata.version('qnxsim')}\n"


def test_version_without_installed_metadata_says_so(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == "qnxsim (not installed: no package metadata)\n"


# -- the source distribution -----------------------------------------------------------------


#: What a copy of the tree for building leaves out: version control, environments, caches
#: and the products of earlier builds (a stale ``*.egg-info`` would feed its old file list
#: into the new sdist).
NOT_SOURCE = (
    ".git",
    ".venv",
    "*.egg-info",
    "build",
    "dist",
    "__pycache__",
    "*.pyc",
    ".*cache",
    ".hypothesis",
)
#: The PEP 517 hook that ``python -m build --sdist`` calls.
BUILD_SDIST = (
    "import sys; from setuptools import build_meta; print(build_meta.build_sdist(sys.argv[1]))"
)


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist of a clean copy of this tree, built by the installed setuptools through the
    hook ``python -m build --sdist`` uses (nothing is downloaded)."""
    pytest.importorskip("setuptools", minversion="77.0.3")
    src = tmp_path_factory.mktemp("src") / "qnxsim"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    out = tmp_path_factory.mktemp("sdist")
    done = subprocess.run(
        [sys.executable, "-c", BUILD_SDIST, str(out)],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr.lower(), done.stderr  # setuptools has nothing to say
    return out / done.stdout.split()[-1]


def test_sdist_carries_the_tests_examples_and_benchmarks(sdist: Path) -> None:
    with tarfile.open(sdist) as tar:
        top = f"qnxsim-{project_version()}/"
        names = {n.removeprefix(top) for n in tar.getnames()}
    assert [f for f in SHIPPED_FILES if f not in names] == []
    assert sorted(project_files(SHIPPED_DIRS) - names) == []  # MANIFEST.in misses a kind
    assert sorted(n for n in names if is_build_junk(n)) == []


def test_sdist_test_suite_runs_from_the_unpacked_sdist(sdist: Path, tmp_path: Path) -> None:
    """Unpacked, the sdist's own tests import its own qnxsim and pass (a quick sample)."""
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp_path, filter="data")
    root = tmp_path / f"qnxsim-{project_version()}"
    env = {**os.environ, "PYTHONPATH": str(root)}
    where = subprocess.run(
        [sys.executable, "-c", "import qnxsim; print(qnxsim.__file__)"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert Path(where.stdout.strip()).is_relative_to(root), where.stdout
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",  # -q comes from pyproject's addopts
            "-p",
            "no:cacheprovider",
            "tests/test_intervals.py",
            "tests/test_examples.py",
            "-k",
            "deepcopy or refuses or readme_example",
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert re.search(r"\b[1-9][0-9]* passed\b", done.stdout), done.stdout[-3000:]
