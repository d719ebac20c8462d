#!/usr/bin/env bash
# Train the model shipped in checkpoints/ from the Bandai-Namco archive, on CPU, with the project's commands.
# Usage: bash datasets/bandai-namco/train.sh [ARCHIVE]
# Times on the 2-core development machine are in checkpoints/README.md. Every step resumes with --resume
# if interrupted (rerun the same line with --resume added).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"
bash "$here/prepare.sh" "${1:-../shared/datasets/bandai-namco-research-motiondataset-2.tar.xz}" data/bandai-namco-2

motionlcm train vae --config configs/bandai-namco/vae.yaml -q
motionlcm train mld --config configs/bandai-namco/mld.yaml --vae runs/bn-vae/model -q
# continued from step 2,500 to 5,000 (the warm-up + cosine schedule is stretched to the new end)
rm -rf runs/bn-mld-long && cp -r runs/bn-mld runs/bn-mld-long
motionlcm train mld --config configs/bandai-namco/mld.yaml --vae runs/bn-vae/model -q --resume \
  output_dir=runs/bn-mld-long trainer.max_steps=5000 checkpoint.every_n_steps=500
motionlcm train lcm --config configs/bandai-namco/lcm.yaml --teacher runs/bn-mld-long/model -q \
  output_dir=runs/bn-lcm-long
motionlcm train evaluator --config configs/bandai-namco/evaluator.yaml -q

# half-precision copies in checkpoints/ (the student is the default model of `motionlcm generate`)
motionlcm convert half runs/bn-lcm-long/model -o checkpoints/bandai-namco --force
motionlcm convert half runs/bn-mld-long/model -o checkpoints/bandai-namco-teacher --force
rm -rf checkpoints/bandai-namco-evaluator && cp -r runs/bn-evaluator/model checkpoints/bandai-namco-evaluator
