"""Shared benchmark plumbing: where results go and how they are written."""

import json
import resource
import sys
from pathlib import Path

import jax

import c3rl_jax

RESULTS_DIR = Path(__file__).parent / "results"


def environment() -> dict:
    """What produced a figure: versions and the device JAX ran on."""
    return {
        "c3rl_jax": c3rl_jax.__version__,
        "jax": jax.__version__,
        "device": str(jax.devices()[0].device_kind),
        "python": sys.version.split()[0],
    }


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_json(name: str, payload: dict) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / name
    path.write_text(json.dumps({"environment": environment(), **payload}, indent=2))
    return path
