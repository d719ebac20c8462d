#!/usr/bin/env bash
# Build the Bandai-Namco training dataset: extract the archive, then import every clip and its mirror.
# Usage: bash datasets/bandai-namco/prepare.sh [ARCHIVE] [OUT_DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
archive="${1:-../shared/datasets/bandai-namco-research-motiondataset-2.tar.xz}"
out="${2:-data/bandai-namco-2}"
raw="$(dirname "$out")/raw"
mkdir -p "$raw"
if [ ! -d "$raw/Bandai-Namco-Research-Motiondataset-2/data" ]; then
  echo "extracting $archive -> $raw"
  tar -xJf "$archive" -C "$raw"
fi
motionlcm data import-bvh "$raw/Bandai-Namco-Research-Motiondataset-2/data" \
  --rig "$here/rig.yaml" --captions "$here/captions.yaml" --mirror --seed 0 -o "$out" --force
motionlcm data check "$out"
