"""How fast the command line answers: `c3rl --help` and `c3rl train --help` (target < 1 s),
each the median of fresh processes, beside `python -c "import jax"` for scale.

    python -m benchmarks.cli [--quick] [--repeats 7]

Writes benchmarks/results/cli.json.
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import write_json

C3RL = str(Path(sys.executable).with_name("c3rl"))
COMMANDS = {
    "c3rl --help": [C3RL, "--help"],
    "c3rl train --help": [C3RL, "train", "--help"],
    "python -c 'import jax'": [sys.executable, "-c", "import jax"],
}


def seconds(argv: list[str], repeats: int) -> float:
    """Median wall time of `repeats` fresh processes running argv."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(quick: bool = False, repeats: int = 7) -> dict:
    figures = {name: seconds(argv, 3 if quick else repeats) for name, argv in COMMANDS.items()}
    for name, value in figures.items():
        print(f"{name:<24} {value:.2f} s", flush=True)
    write_json("cli_quick.json" if quick else "cli.json", {"median_seconds": figures})
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    main(args.quick, args.repeats)
