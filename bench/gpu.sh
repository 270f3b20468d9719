#!/usr/bin/env bash
# Every GPU check in one run, from the binaries bench/gpu-build.sh packed, on a machine with no
# Rust toolchain and no network; everything goes into one output folder.
#
#   bench/gpu.sh --out "$OUT"                                  # on the GPU machine (reads .gpu/)
#   bench/gpu.sh --device cpu --dir .gpu-cpu --tiny --out /tmp/gpu-dry   # dry run on a CPU
#
# (a) the same 20 training steps of lean32 on the CPU and on the device: losses within 1e-3
#     (relative); (b) the train_step benches (lean32, lean64, author32; batch 64 and 256; f32
#     and bf16) and the forward benches; (c) the PyTorch twin on the same device, for the
#     ratios; (d) a progressive run on the 128×128 images for --minutes, with its sample grid.
# About 7 minutes with --minutes 1.5. A dry run on the CPU that runs the GPU's code path:
#   AEGAN_GENERIC_OPS=1 bench/gpu.sh --device cpu --dir .gpu-cpu --tiny --out /tmp/gpu-dry
set -uo pipefail
cd "$(dirname "$0")/.."

device=cuda; dir=.gpu; out=gpu-out; tiny=0; minutes=1.5
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

# Every section runs under its own time limit, so that one that hangs or runs long leaves the
# later ones their time; the limits add up to under the 10 minutes a GPU call may take.
limited() { local seconds="$1"; shift; timeout --kill-after=5 "$seconds" "$@"; local rc=$?; [ "$rc" = 124 ] && say "timed out after ${seconds} s: $(basename "$1")"; return "$rc"; }

# (a) agreement with the CPU: lean32 without per-pixel noise is the check (the noise of a
# reconstruction is seeded by E(x)'s bits, so last-bit differences draw other noise); lean32
# with its noise and lean64 are shown for information.
steps=20; [ "$tiny" = 1 ] && steps=3
say "(a) $steps steps on the cpu and on $device"
agree() {  # agree NAME ARGS...: the same steps on both devices, the largest relative difference
  local name="$1"; shift
  limited 40 "$dir/device_check" --device cpu --steps "$steps" --json "$out/agree-reference-cpu-$name.json" "$@" >> "$log" 2>&1
  limited 40 "$dir/device_check" --device "$device" --steps "$steps" --json "$out/agree-$device-$name.json" "$@" >> "$log" 2>&1
  python3 - "$name" "$out/agree-reference-cpu-$name.json" "$out/agree-$device-$name.json" <<'PY' | tee -a "$out/agreement.txt" | tee -a "$log"
import json, sys
name = sys.argv[1]
try:
    a, b = (json.load(open(p)) for p in sys.argv[2:4])
except (OSError, ValueError) as e:
    print(f"{name}: no result ({e})"); sys.exit(0)
def flat(steps):
    out = []
    for s in steps:
        for phase in ("discriminator", "generator"):
            out += [(f"step {s['step']} {phase}.{k}", v) for k, v in s[phase].items()]
    return out
worst = max((abs(x - y) / max(abs(x), 1e-3), n) for (n, x), (_, y) in zip(flat(a), flat(b)))
verdict = ("PASS" if worst[0] <= 1e-3 else "FAIL") if name == "lean32" else "information"
print(f"{name}: largest relative difference {worst[0]:.2e} ({worst[1]}): {verdict} (limit 1e-3)")
PY
}
agree lean32
agree lean32-noise --pixel-noise
[ "$tiny" = 1 ] || agree lean64 --size 64

# (b) training-step benches; (c) the PyTorch twin on the same device; then (d); the forward
# benches last, as the least needed.
say "(b) train_step benches on $device"
export CARGO_TARGET_DIR="$out/target"   # criterion writes its results under it
if [ "$tiny" = 1 ]; then
  batches=4; step_args=(--warm-up-time 1 --measurement-time 2 lean32); forward_args=("${step_args[@]}")
else
  # 12 rows of about 6 s each (flat sampling: 10 samples); 36 forward rows of about 2 s.
  batches=64,256; step_args=(--warm-up-time 1 --measurement-time 4); forward_args=(--warm-up-time 0.5 --measurement-time 1)
fi
export AEGAN_BENCH_BATCHES="$batches" AEGAN_BENCH_PRECISION=f32,bf16
limited 200 "$dir/train_step" --bench "${step_args[@]}" >> "$log" 2>&1
say "(c) PyTorch twin on $device"
twin=()
if python3 -c 'import torch' 2>/dev/null; then
  for row in "lean 32" "lean 64" "author 32"; do
    set -- $row
    [ "$tiny" = 1 ] && [ "$1$2" != lean32 ] && continue
    batch_flags=(); for b in ${batches//,/ }; do batch_flags+=(--batch "$b"); done
    limited 60 python3 bench/torch_twin.py --preset "$1" --size "$2" --device "$device" "${batch_flags[@]}" --bf16 \
      --json > "$out/twin-$1$2.json" 2>> "$log" && twin+=("$out/twin-$1$2.json")
  done
else
  say "no PyTorch here: twin skipped"
fi
table() { python3 bench/table.py --criterion "$out/target/criterion" "${twin[@]}" > "$out/table.txt" 2>> "$log"; }
table

# (d) progressive growing on real 128×128 lesions for the minutes asked
say "(d) progressive run, $minutes minutes"
run_limit=$(python3 -c "print(int(float('$minutes') * 60 + 75))")
if [ "$tiny" = 1 ]; then
  limited "$run_limit" "$dir/ham10000" --device "$device" --size 32 --progressive --phase-images 64 --minutes "$minutes" \
    --no-progress --no-eval --out "$out/run" >> "$log" 2>&1
elif [ -d "$dir/ham128" ]; then
  limited "$run_limit" "$dir/ham10000" --device "$device" --data "$dir/ham128" --size 128 --progressive --minutes "$minutes" \
    --no-progress --eval-images 200 --out "$out/run" >> "$log" 2>&1
fi
[ -f "$out/run/samples.png" ] && cp "$out/run/samples.png" "$out/samples.png"

say "forward benches on $device"
limited 100 "$dir/forward" --bench "${forward_args[@]}" >> "$log" 2>&1
table
say "done: $(ls "$out" | tr '\n' ' ')"
