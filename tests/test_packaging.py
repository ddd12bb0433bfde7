"""Packaging: the licence and metadata, and an sdist that holds what its tests need.

The sdist is built for real (``python -m build --sdist --no-isolation``, the
setuptools of the test venv); ``scripts/check_sdist.sh`` goes further and runs
the whole suite from an unpacked sdist in a fresh venv (README, "Packaging").
"""

from __future__ import annotations

import email.parser
import subprocess
import sys
import tarfile
from importlib import metadata
from pathlib import Path

import pytest

from tests.support import ROOT

NEEDED = [
    "LICENSE", "README.md", "Makefile", "config.yaml", "pyproject.toml", ".ci/run",
    "tests/__init__.py", "tests/conftest.py", "tests/support.py",
    "tests/emulator/__init__.py", "tests/emulator/app.py", "tests/emulator/fixtures.py",
    "systemd/mediasaged.service", "systemd/mediasaged.socket", "systemd/config.yaml",
    "docs/DESIGN.md", "docs/PERFORMANCE.md",
]


@pytest.fixture(scope="module")
def sdist(tmp_path_factory) -> tarfile.TarFile:
    out = tmp_path_factory.mktemp("sdist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    (archive,) = out.glob("*.tar.gz")
    with tarfile.open(archive) as tar:
        yield tar


def _members(tar: tarfile.TarFile) -> set[str]:
    return {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}


def test_sdist_holds_the_tests_units_docs_and_config(sdist):
    members = _members(sdist)
    missing = [name for name in NEEDED if name not in members]
    assert not missing, missing
    # every test module and every data file under tests/ that git tracks
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files", "tests", "systemd", "docs"],
                             capture_output=True, text=True)
    if tracked.returncode == 0 and tracked.stdout.strip():
        absent = [name for name in tracked.stdout.split() if name not in members]
        assert not absent, absent


def test_sdist_holds_no_databases_sockets_or_bytecode(sdist):
    bad = [name for name in _members(sdist)
           if name.endswith((".db", ".db-wal", ".db-shm", ".sock", ".pyc")) or "/.venv" in name
           or name.startswith(".venv")]
    assert not bad, bad


def test_sdist_metadata_names_the_licence_and_python_versions(sdist):
    (pkg_info,) = [m for m in sdist.getmembers() if m.name.count("/") == 1 and m.name.endswith("/PKG-INFO")]
    meta = email.parser.Parser().parsestr(sdist.extractfile(pkg_info).read().decode())
    assert meta["License-Expression"] == "MIT"
    assert "LICENSE" in meta.get_all("License-File")
    classifiers = meta.get_all("Classifier")
    for version in ("3.11", "3.12", "3.13"):
        assert f"Programming Language :: Python :: {version}" in classifiers


def test_installed_metadata_bounds_the_majors_of_jsonrpcserver_and_plexapi():
    requires = metadata.requires("mediasage-cache") or []
    by_name = {r.split(";")[0].split("<")[0].split(">")[0].split("=")[0].strip().lower(): r for r in requires}
    assert "<6" in by_name["jsonrpcserver"], by_name["jsonrpcserver"]
    assert "<5" in by_name["plexapi"], by_name["plexapi"]


def test_licence_file_is_mit():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in text
