"""The examples of README.md and docs/api.md run as written, in a fresh interpreter like a user's."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
API_DOC = README.parent / "docs" / "api.md"


def using_it_example() -> str:
    """The first python block under '## Using it'."""
    section = README.read_text().split("## Using it", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "README's 'Using it' section has no python example"
    return match.group(1)


def test_readme_example_runs_as_written(tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(using_it_example())
    env = dict(os.environ)
    root = str(README.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1] == "4096"
    assert lines[2].startswith("refused:") and "release them" in lines[2]
    assert "'class_size': 4096" in lines[3] and "'in_use': 0" in lines[3]
    assert lines[4].startswith("stale:")
    assert lines[5] == "499500.0 0"


def test_api_doc_numpy_example_runs_as_written(tmp_path: Path) -> None:
    from conftest import require_numpy

    require_numpy()
    section = API_DOC.read_text().split("## NumPy arrays from any allocator", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "docs/api.md's NumPy section has no python example"
    script = tmp_path / "numpy_example.py"
    script.write_text(match.group(1))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(README.parent), env.get("PYTHONPATH")]))
    command = [sys.executable, str(script)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "large" and lines[1] == "0 2"
    assert lines[2].startswith("refused:") and "2 NumPy array(s)" in lines[2]
