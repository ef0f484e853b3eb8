"""nanoagent_core never imports Textual (or the dashboard): checked in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

import pytest

CORE_MODULES = [
    "nanoagent_core",
    "nanoagent_core.cli",
    "nanoagent_core.demo",
    "nanoagent_core.loop",
    "nanoagent_core.worker",
    "nanoagent_core.stores",
]


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_module_imports_no_ui(module: str) -> None:
    probe = (
        f"import sys, {module}\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('textual', 'rich', 'nanoagent_tui'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"{module} pulled in {out}"


def test_console_script_without_dashboard_stays_headless() -> None:
    """`nanoagent list` must not pay for importing Textual."""
    probe = (
        "import sys\n"
        "from nanoagent_tui.cli import main\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] == 'textual')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""
