"""The machinery of a run that is not the method: devices and the agent mesh, checkpoints,
the compilation cache, divergence guards, clean stops, memory estimates, saved results and
per-episode metrics. Empty of imports, so that `c3rl_jax.runtime.results` loads without JAX.
"""
