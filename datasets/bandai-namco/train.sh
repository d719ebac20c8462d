#!/usr/bin/env bash
# Train the model shipped in checkpoints/ from the two Bandai-Namco archives, on CPU, with the project's
# commands. Usage: bash datasets/bandai-namco/train.sh [ARCHIVE_DIR]
# Times on the 2-core development machine are in checkpoints/README.md; every stage fits one working
# session. Every step resumes if interrupted: rerun the same line with --resume added.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"
bash "$here/prepare.sh" "${1:-../shared/datasets}" data/bandai-namco

motionlcm train vae --config configs/bandai-namco/vae.yaml -q          # stage 1: reconstruct
motionlcm train vae --config configs/bandai-namco/vae-robust.yaml -q   # stage 2: decode near-latents too
motionlcm train vae --config configs/bandai-namco/vae-smooth.yaml -q   # stage 3: no excess jerk
motionlcm train teacher --config configs/bandai-namco/teacher.yaml --vae runs/bn-vae-smooth/model -q
motionlcm train student --config configs/bandai-namco/student.yaml --teacher runs/bn-teacher/model -q
motionlcm train student --config configs/bandai-namco/student-trajectory.yaml -q   # + the trajectory term
motionlcm train evaluator --config configs/bandai-namco/evaluator.yaml -q

# half-precision copies in checkpoints/ (the student is the default model of `motionlcm generate`)
motionlcm convert half runs/bn-student-trajectory/model -o checkpoints/bandai-namco --force
motionlcm convert half runs/bn-teacher/model -o checkpoints/bandai-namco-teacher --force
rm -rf checkpoints/bandai-namco-evaluator && cp -r runs/bn-evaluator/model checkpoints/bandai-namco-evaluator

# the pelvis ControlNet of the shipped student, trained on (and installed into) the half-precision folder
motionlcm train control --config configs/bandai-namco/control-pelvis.yaml --install pelvis --force -q
# the six-joint + continuation controller: stage 1 from the pelvis controller (one joint per sample, and
# prefixes), stage 2 with several joints per sample; installed as control/all
motionlcm train control --config configs/bandai-namco/control-all.yaml --force -q
motionlcm train control --config configs/bandai-namco/control-all-2.yaml --install all --force -q

# re-pace (stop 28): distil the student again on guidance scales 2.5-5.5 instead of the official 6-16, which
# carried runs at twice their pace; then carry both controllers over to it (short fine-tunes)
motionlcm train student --config configs/bandai-namco/student-pace.yaml -q
motionlcm convert half runs/bn-student-pace/model -o checkpoints/bandai-namco --force
motionlcm train control --config configs/bandai-namco/control-pelvis-pace.yaml --install pelvis --force -q
motionlcm train control --config configs/bandai-namco/control-all-pace.yaml --install all --force -q
