import sys

from c3rl_jax.launch import main

sys.exit(main())
