#!/usr/bin/env bash
# Build the Bandai-Namco training dataset: extract both archives (dataset-1: 174 clips, 17 contents;
# dataset-2: 2,902 clips, 10 contents; same rig), then import every clip of both and its mirror in one go
# (splits stratified by content and style over the union).
# Usage: bash datasets/bandai-namco/prepare.sh [ARCHIVE_DIR] [OUT_DIR]
#   ARCHIVE_DIR holds bandai-namco-research-motiondataset-{1,2}.tar.xz (default ../shared/datasets)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
archives="${1:-../shared/datasets}"
out="${2:-data/bandai-namco}"
raw="$(dirname "$out")/raw"
mkdir -p "$raw"
for n in 1 2; do
  if [ ! -d "$raw/Bandai-Namco-Research-Motiondataset-$n/data" ]; then
    echo "extracting $archives/bandai-namco-research-motiondataset-$n.tar.xz -> $raw"
    tar -xJf "$archives/bandai-namco-research-motiondataset-$n.tar.xz" -C "$raw"
  fi
done
motionlcm data import-bvh "$raw" --rig "$here/rig.yaml" --captions "$here/captions.yaml" --mirror --seed 0 \
  -o "$out" --force
motionlcm data check "$out"
