"""The wheel a user installs holds every file the packages read at run time.

The dashboard's styles live in ``.tcss`` files next to their screens (``CSS_PATH``): a wheel
without them installs fine and then fails the moment the dashboard opens. Build the real wheel
with the project's build backend (``uv build``) and compare its file list with the source tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("nanoagent_core", "nanoagent_tui")


def source_files() -> set[str]:
    """Every file of the packages in the source tree, as a wheel names it."""
    found: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                found.add(path.relative_to(ROOT).as_posix())
    return found


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "uv is needed to build the wheel (the README's test command runs under uv)"
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [uv, "build", "--wheel", "--quiet", "--out-dir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = out.glob("nanoagent-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_the_wheel_holds_every_file_of_the_packages(wheel_names: set[str]) -> None:
    expected = source_files()
    assert any(name.endswith(".tcss") for name in expected)  # the check below covers styles
    missing = sorted(expected - wheel_names)
    assert not missing, f"files the wheel leaves out: {missing}"


def test_every_stylesheet_a_screen_names_is_in_the_wheel(wheel_names: set[str]) -> None:
    named: list[str] = []
    for module in (ROOT / "nanoagent_tui").rglob("*.py"):
        if 'CSS_PATH = Path(__file__).with_name("' in module.read_text():
            text = module.read_text()
            start = text.index('with_name("') + len('with_name("')
            sheet = text[start : text.index('"', start)]
            named.append((module.parent / sheet).relative_to(ROOT).as_posix())
    assert len(named) >= 5, named  # app, runs, detail, new run, error at least
    missing = [sheet for sheet in named if sheet not in wheel_names]
    assert not missing, f"stylesheets named by CSS_PATH but not in the wheel: {missing}"


def test_the_wheel_holds_no_tests_or_caches(wheel_names: set[str]) -> None:
    stray = sorted(
        name for name in wheel_names if name.startswith("tests/") or "__pycache__" in name
    )
    assert not stray, stray
