"""The `c3rl` entry point: joins a multi-host run (`--distributed`) before anything starts
JAX's backend (importing gymnax does), then hands over to the command line in `cli`."""

import sys


def main() -> int:
    if "--distributed" in sys.argv[1:]:
        from c3rl_jax.runtime.agent_mesh import start_distributed

        start_distributed()
    from c3rl_jax.cli import main as cli_main

    return cli_main()
