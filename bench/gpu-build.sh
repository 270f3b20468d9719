#!/usr/bin/env bash
# Builds what bench/gpu.sh runs and packs it into one git-ignored folder that travels to a GPU
# machine (which has no Rust toolchain and no network): the examples device_check, ham10000
# and generate, the train_step and forward benches, compressed, the GPU environment script and
# a subset of the 128×128 HAM10000 images.
#
#   bench/gpu-build.sh            # CUDA build into target-cuda/, packed into .gpu/ (15-30 min clean)
#   bench/gpu-build.sh --cpu      # CPU build, packed into .gpu-cpu/ (for a dry run of gpu.sh here)
#
# Needs ../shared/device (CUDA toolkit recipe) for the CUDA build and ../shared/data for the images.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=cuda
if [ "${1:-}" = "--cpu" ]; then mode=cpu; fi
if [ "$mode" = cuda ]; then
  dest=.gpu; features=(--features cuda); export CARGO_TARGET_DIR=target-cuda
  # shellcheck disable=SC1091
  source ../shared/device/env.sh
else
  dest=.gpu-cpu; features=(); export CARGO_TARGET_DIR=target
fi
mkdir -p "$dest"

for example in device_check ham10000 generate; do
  cargo build --release "${features[@]}" --example "$example"
  cp "$CARGO_TARGET_DIR/release/examples/$example" "$dest/$example"
done
for bench in train_step forward; do
  path=$(cargo bench "${features[@]}" --bench "$bench" --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == sys.argv[1]:
        print(m["executable"])' "$bench" | tail -1)
  cp "$path" "$dest/$bench"
done

if [ "$mode" = cuda ]; then
  for f in device_check ham10000 generate train_step forward; do
    strip "$dest/$f" && xz -9f "$dest/$f"
  done
  cp ../shared/device/gpu-env.sh "$dest/"
fi

# The 128×128 images: a subset, so that the folder stays well under the 64 MiB a run carries.
images=../shared/data/ham10000/128
if [ -d "$images" ]; then
  mkdir -p "$dest/ham128"
  find "$images" -maxdepth 1 -name '*.jpg' | sort | sed -n '1,2500p' | xargs -I{} cp {} "$dest/ham128/"
fi
# Which code the binaries are: bench/gpu.sh prints it first, so a GPU call never runs stale
# binaries unawares.
commit=$(git rev-parse --short HEAD)
[ -n "$(git status --porcelain --untracked-files=no)" ] && commit="$commit with uncommitted changes"
echo "$commit" > "$dest/COMMIT"
du -sh "$dest"
echo "packed $dest from commit $commit"
