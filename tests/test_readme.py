"""The README's examples that need no files run as written, from outside the package."""

import ast
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_registers_a_mechanism_method_that_runs_end_to_end(tmp_path):
    block = next(b for b in _python_blocks() if "register_mechanism" in b)
    script = tmp_path / "example.py"
    script.write_text(block)
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    labels = ast.literal_eval(
        done.stdout.strip().splitlines()[-1]
    )  # the last rebuild's agent labels
    assert len(labels) == 6 and all(isinstance(label, int) for label in labels)
