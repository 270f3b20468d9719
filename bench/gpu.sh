#!/usr/bin/env bash
# Every GPU check in one run, from the binaries bench/gpu-build.sh packed, on a machine with no
# Rust toolchain and no network; everything goes into one output folder.
#
#   bench/gpu.sh --out "$OUT"                                  # on the GPU machine (reads .gpu/)
#   bench/gpu.sh --device cpu --dir .gpu-cpu --tiny --out /tmp/gpu-dry   # dry run on a CPU
#
# (a) the same 20 training steps of lean32 on the CPU and on the device: losses within 1e-3
#     (relative); (b) the train_step benches (lean32, lean64, author32; batch 64 and 256; f32
#     and bf16) and the forward benches; (c) the PyTorch twin on the same device, for the ratios; (d) a progressive
#     run on the 128×128 images for the minutes left, with its sample grid.
set -uo pipefail
cd "$(dirname "$0")/.."

device=cuda; dir=.gpu; out=gpu-out; tiny=0; minutes=3
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --tiny) tiny=1; shift ;;
    --minutes) minutes="$2"; shift 2 ;;
    *) echo "bench/gpu.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
log="$out/gpu.log"
say() { echo "== $*" | tee -a "$log"; }

for f in "$dir"/*.xz; do [ -e "$f" ] && xz -dkf "$f"; done
chmod +x "$dir"/device_check "$dir"/ham10000 "$dir"/generate "$dir"/train_step "$dir"/forward 2>/dev/null
# shellcheck disable=SC1091
[ -f "$dir/gpu-env.sh" ] && source "$dir/gpu-env.sh"
command -v nvidia-smi >/dev/null && nvidia-smi >> "$log" 2>&1

# (a) agreement with the CPU
steps=20; [ "$tiny" = 1 ] && steps=3
say "(a) $steps steps of lean32 on the cpu and on $device"
"$dir/device_check" --device cpu --steps "$steps" --json "$out/agree-cpu.json" >> "$log" 2>&1
"$dir/device_check" --device "$device" --steps "$steps" --json "$out/agree-$device.json" >> "$log" 2>&1
python3 - "$out/agree-cpu.json" "$out/agree-$device.json" <<'PY' | tee "$out/agreement.txt" | tee -a "$log"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
def flat(steps):
    out = []
    for s in steps:
        for phase in ("discriminator", "generator"):
            out += [(f"step {s['step']} {phase}.{k}", v) for k, v in s[phase].items()]
    return out
worst = max((abs(x - y) / max(abs(x), 1e-3), name) for (name, x), (_, y) in zip(flat(a), flat(b)))
print(f"largest relative difference {worst[0]:.2e} ({worst[1]}): {'PASS' if worst[0] <= 1e-3 else 'FAIL'} (limit 1e-3)")
PY

# (b) benches; (c) the PyTorch twin on the same device
say "(b) benches on $device"
export CARGO_TARGET_DIR="$out/target"   # criterion writes its results under it
if [ "$tiny" = 1 ]; then
  batches=4; step_args=(--warm-up-time 1 --measurement-time 2 lean32); forward_args=("${step_args[@]}")
else
  # About 1 minute of training steps and 2.5 of forward passes (36 rows).
  batches=64,256; step_args=(--warm-up-time 2 --measurement-time 8); forward_args=(--warm-up-time 1 --measurement-time 3)
fi
AEGAN_BENCH_BATCHES="$batches" AEGAN_BENCH_PRECISION=f32,bf16 "$dir/train_step" --bench "${step_args[@]}" >> "$log" 2>&1
"$dir/forward" --bench "${forward_args[@]}" >> "$log" 2>&1
say "(c) PyTorch twin on $device"
twin=()
if python3 -c 'import torch' 2>/dev/null; then
  for row in "lean 32" "lean 64" "author 32"; do
    set -- $row
    [ "$tiny" = 1 ] && [ "$1$2" != lean32 ] && continue
    batch_flags=(); for b in ${batches//,/ }; do batch_flags+=(--batch "$b"); done
    python3 bench/torch_twin.py --preset "$1" --size "$2" --device "$device" "${batch_flags[@]}" --bf16 \
      --json > "$out/twin-$1$2.json" 2>> "$log" && twin+=("$out/twin-$1$2.json")
  done
  python3 bench/table.py --criterion "$out/target/criterion" "${twin[@]}" > "$out/table.txt" 2>> "$log"
else
  say "no PyTorch here: twin skipped"
fi

# (d) progressive growing on real 128×128 lesions for the minutes asked
say "(d) progressive run, $minutes minutes"
if [ "$tiny" = 1 ]; then
  "$dir/ham10000" --device "$device" --size 32 --progressive --phase-images 64 --minutes "$minutes" \
    --no-progress --no-eval --out "$out/run" >> "$log" 2>&1
elif [ -d "$dir/ham128" ]; then
  "$dir/ham10000" --device "$device" --data "$dir/ham128" --size 128 --progressive --minutes "$minutes" \
    --no-progress --out "$out/run" >> "$log" 2>&1
fi
[ -f "$out/run/samples.png" ] && cp "$out/run/samples.png" "$out/samples.png"
say "done: $(ls "$out" | tr '\n' ' ')"
