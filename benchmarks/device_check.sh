#!/bin/bash
# The accelerator figures on a lent GPU machine, about 5 minutes (benchmarks/device_check.py).
# Its image has JAX with CUDA, flax, optax, chex, orbax, scikit-learn, matplotlib, tqdm; gymnax
# and gymnasium travel as wheels, fetched here first (the device tool's notes):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux2014_x86_64 -d .whl \
#     gymnax==1.0.1 gymnasium==1.3.0 farama-notifications==0.0.6
# and the run carries .whl: bash benchmarks/device_check.sh "$OUT"
set -euo pipefail
out=${1:-benchmarks/results/device}
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
python3 -m pip install -q --no-deps --no-build-isolation --no-index -e .
export PYTHONUNBUFFERED=1
python3 -m benchmarks.device_check --out "$out"
