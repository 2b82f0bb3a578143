"""`make bench`: every benchmark module in turn (`--quick` for a smoke-test suite)."""

import argparse
import importlib
import time

MODULES = (
    "cli",
    "scaling",
    "learning",
    "tasks",
    "anm_mm",
    "mechanisms",
    "compare",
    "heterogeneous",
    "exploration",
    "population_size",
    "transfer",
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    quick = parser.parse_args().quick
    for name in MODULES:
        print(f"\n== benchmarks.{name}{' (quick)' if quick else ''}", flush=True)
        start = time.perf_counter()
        importlib.import_module(f"benchmarks.{name}").main(quick=quick)
        print(f"== {name}: {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
