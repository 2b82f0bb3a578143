"""The persistent compilation cache: where it lives, and that a second run reuses it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from c3rl_jax import ConfigError, TrainConfig
from c3rl_jax.runtime.compile_cache import ENV_VAR, cache_dir


def test_cache_directory_follows_the_setting_and_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "mine"))
    assert cache_dir("auto") == tmp_path / "mine"
    monkeypatch.delenv(ENV_VAR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir("auto") == tmp_path / "xdg" / "c3rl_jax"
    assert cache_dir("off") is None
    assert cache_dir(str(tmp_path / "here")) == tmp_path / "here"
    with pytest.raises(ConfigError, match="compile_cache='' is invalid"):
        TrainConfig(compile_cache="").resolved()


RUN = """
import json, sys
from c3rl_jax import TrainConfig, train
from conftest import TINY
r = train(TrainConfig(**TINY, compile_cache=sys.argv[1]))
print(json.dumps(r.returns.tolist()))
"""


def test_a_second_run_compiles_from_the_cache_and_gives_the_same_returns(tmp_path):
    cache = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"  # every program, however quick

    def run():
        out = subprocess.run(
            [sys.executable, "-c", RUN, str(cache)], env=env, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout.strip().splitlines()[-1])

    first = run()
    entries = sorted(p.name for p in cache.iterdir())
    # the chunk's program and the agents' init, the run's first program (the cache must be
    # on before it: it took 2.3 s to compile at every pendulum run while it was not)
    assert any(name.startswith("jit_chunk-") for name in entries), entries
    assert any(name.startswith("jit__init_one-") for name in entries), entries
    assert run() == first
    assert sorted(p.name for p in cache.iterdir()) == entries  # all hits: nothing new written
