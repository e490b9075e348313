"""The wheel holds the whole program: every module and every file of the shipped model.

The tests that run `copilot-repl` use the installed copy from outside the checkout, so a file missing
from the wheel fails them too; this test names what is missing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

from conftest import CHECKOUT

# folder in the checkout -> where it installs
SHIPPED = {"copilot_repl": "copilot_repl", "plugins": "copilot_repl_plugins", "paras/default": "copilot_repl/default_model"}


def test_the_wheel_holds_every_module_and_the_default_model(tmp_path):
    # A copy without earlier build output: setuptools would otherwise reuse build/lib and stale egg-info.
    source = tmp_path / "source"
    build_output = shutil.ignore_patterns(".git", ".venv*", "build", "*.egg-info", "__pycache__", "optimizer.pt")

    def skip(folder: str, names: list[str]) -> set[str]:  # of paras/, only the shipped model
        own = {name for name in names if name != "default"} if folder == str(CHECKOUT / "paras") else set()
        return set(build_output(folder, names)) | own

    shutil.copytree(CHECKOUT, source, ignore=skip)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(source)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = tmp_path.glob("copilot_repl-*.whl")
    packed = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        f"{package}/{path.relative_to(CHECKOUT / folder).as_posix()}"
        for folder, package in SHIPPED.items()
        for path in (CHECKOUT / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.name != "optimizer.pt"
    }
    assert any(name.startswith("copilot_repl/repl/") for name in expected)
    assert any(name.startswith("copilot_repl/default_model/") for name in expected)
    assert "copilot_repl_plugins/bpe.py" in expected
    assert sorted(expected - packed) == []
