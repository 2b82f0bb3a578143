import sys

from c3rl_jax.cli import main

sys.exit(main())
