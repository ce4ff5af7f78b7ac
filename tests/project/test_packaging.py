"""A newcomer's first screen is the demo: building the package prints no setuptools warnings."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_building_the_package_prints_no_deprecation_warning(tmp_path):
    source = tmp_path / "src"  # a copy: building in place would leave build/ in the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(
        REPO / "daemon",
        source / "daemon",
        ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"),
    )
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(tmp_path / "w"), "."],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = built.stdout + built.stderr
    assert built.returncode == 0, output[-3000:]
    (wheel,) = (tmp_path / "w").glob("invoice_mailer-*.whl")
    with zipfile.ZipFile(wheel) as contents:  # the provider presets travel with the code
        assert "invoice_mailer/config/providers.yaml" in contents.namelist()
    for warning in ("BuildBackendWarning", "SetuptoolsDeprecationWarning", "is deprecated"):
        assert warning not in output, output[output.find(warning) - 500 :][:1500]
