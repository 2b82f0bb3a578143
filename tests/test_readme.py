"""The README's examples that need no files run as written, from outside the package."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def _run_block(marker: str, tmp_path) -> str:
    """The last line printed by the README's python block that contains `marker`."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    script = tmp_path / "example.py"
    script.write_text(next(b for b in blocks if marker in b))
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_the_readme_registers_a_mechanism_method_that_runs_end_to_end(tmp_path):
    labels = ast.literal_eval(_run_block("register_mechanism", tmp_path))  # last rebuild's
    assert len(labels) == 6 and all(isinstance(label, int) for label in labels)


def test_the_readme_registers_a_sharing_method_that_the_run_uses(tmp_path):
    p = np.array(ast.literal_eval(_run_block("register_sharing", tmp_path)))
    expected = 0.5 * np.eye(4) + 0.5 * np.roll(np.eye(4), 1, axis=1)
    np.testing.assert_allclose(p, expected)
