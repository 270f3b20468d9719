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
# At most 535 s with --minutes 1.5 (every section has a time limit; the script refuses limits
# over 540 s). Exits non-zero, with one line saying why, when a binary is missing, when the
# device does not initialise, or when any section fails. A dry run on the CPU that runs the
# GPU's code path:
#   AEGAN_GENERIC_OPS=1 bench/gpu.sh --device cpu --dir .gpu-cpu --tiny --out /tmp/gpu-dry
# (where Python has no PyTorch it ends with "failed: twin: no PyTorch", everything else done)
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
# A check that cannot run is a failure, said in one line, never a quiet "no result".
fail() { echo "bench/gpu.sh: $*" | tee -a "$log" >&2; exit 1; }

for f in device_check ham10000 generate train_step forward; do
  [ -e "$dir/$f" ] || [ -e "$dir/$f.xz" ] ||
    fail "$dir/$f is missing: build the binaries first (bench/gpu-build.sh, or --cpu for a dry run)"
done
say "binaries of commit $(cat "$dir/COMMIT" 2>/dev/null || echo unknown) (git here: $(git rev-parse --short HEAD 2>/dev/null || echo none))"
for f in "$dir"/*.xz; do [ -e "$f" ] && xz -dkf "$f"; done
chmod +x "$dir"/device_check "$dir"/ham10000 "$dir"/generate "$dir"/train_step "$dir"/forward 2>/dev/null
# shellcheck disable=SC1091
[ -f "$dir/gpu-env.sh" ] && source "$dir/gpu-env.sh"
command -v nvidia-smi >/dev/null && nvidia-smi >> "$log" 2>&1

# Every section runs under its own time limit, so that one that hangs or runs long leaves the
# later ones their time. The limits (seconds) add up to under 540, so that one 600-second
# call ends with everything written.
probe_limit=25; agree_limit=20; steps_limit=140; twin_limit=30; forward_limit=70
run_limit=$(python3 -c "print(int(float('$minutes') * 60 + 40))")
budget=$((probe_limit + 4 * agree_limit + steps_limit + 3 * twin_limit + run_limit + forward_limit))
[ "$budget" -lt 540 ] || fail "the sections' time limits add up to $budget s (--minutes $minutes): more than 540"
say "time limits add up to $budget s"
limited() { local seconds="$1"; shift; timeout --kill-after=5 "$seconds" "$@"; local rc=$?; [ "$rc" = 124 ] && say "timed out after ${seconds} s: $(basename "$1")"; return "$rc"; }

# The device must work before anything is measured on it: one step, or the reason it failed.
if ! limited "$probe_limit" "$dir/device_check" --device "$device" --steps 1 --batch 2 --size 16 \
     --json "$out/probe-$device.json" > "$out/probe.txt" 2>&1; then
  fail "$device did not initialise: $(grep -v '^$' "$out/probe.txt" | tail -1)"
fi
failures=()

# (a) agreement with the CPU: lean32 with and without its per-pixel noise (a training step
# draws the noise's seeds from the trainer's stream, so both devices add the same noise).
steps=20; [ "$tiny" = 1 ] && steps=3
say "(a) $steps steps on the cpu and on $device"
agree() {  # agree NAME ARGS...: the same steps on both devices, the largest relative difference
  local name="$1"; shift
  limited "$agree_limit" "$dir/device_check" --device cpu --steps "$steps" --json "$out/agree-reference-cpu-$name.json" "$@" >> "$log" 2>&1
  limited "$agree_limit" "$dir/device_check" --device "$device" --steps "$steps" --json "$out/agree-$device-$name.json" "$@" >> "$log" 2>&1
  python3 - "$name" "$out/agree-reference-cpu-$name.json" "$out/agree-$device-$name.json" <<'PY' | tee -a "$out/agreement.txt" | tee -a "$log"
import json, sys
name = sys.argv[1]
try:
    a, b = (json.load(open(p)) for p in sys.argv[2:4])
except (OSError, ValueError) as e:
    print(f"{name}: no result ({e}): FAIL"); sys.exit(1)
def flat(steps):
    out = []
    for s in steps:
        for phase in ("discriminator", "generator"):
            out += [(f"step {s['step']} {phase}.{k}", v) for k, v in s[phase].items()]
    return out
worst = max((abs(x - y) / max(abs(x), 1e-3), n) for (n, x), (_, y) in zip(flat(a), flat(b)))
verdict = "PASS" if worst[0] <= 1e-3 else "FAIL"
print(f"{name}: largest relative difference {worst[0]:.2e} ({worst[1]}): {verdict} (limit 1e-3)")
sys.exit(0 if verdict == "PASS" else 1)
PY
  [ "${PIPESTATUS[0]}" = 0 ] || failures+=("agreement $name")
}
agree lean32
agree lean32-noise --pixel-noise

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
# The benches run on the device asked for, or refuse: never the CPU under the device's name.
export AEGAN_BENCH_DEVICE="$device" AEGAN_BENCH_BATCHES="$batches" AEGAN_BENCH_PRECISION=f32,bf16
limited "$steps_limit" "$dir/train_step" --bench "${step_args[@]}" >> "$log" 2>&1 || failures+=("train_step benches")
say "(c) PyTorch twin on $device"
twin=()
if python3 -c 'import torch' 2>/dev/null; then
  for row in "lean 32" "lean 64" "author 32"; do
    set -- $row
    [ "$tiny" = 1 ] && [ "$1$2" != lean32 ] && continue
    batch_flags=(); for b in ${batches//,/ }; do batch_flags+=(--batch "$b"); done
    limited "$twin_limit" python3 bench/torch_twin.py --preset "$1" --size "$2" --device "$device" "${batch_flags[@]}" --bf16 \
      --json > "$out/twin-$1$2.json" 2>> "$log" && twin+=("$out/twin-$1$2.json") || failures+=("twin $1$2")
  done
else
  say "no PyTorch here: twin skipped"
  failures+=("twin: no PyTorch")
fi
table() { python3 bench/table.py --criterion "$out/target/criterion" "${twin[@]}" > "$out/table.txt" 2>> "$log"; }
table

# (d) progressive growing on real 128×128 lesions for the minutes asked
say "(d) progressive run, $minutes minutes"
if [ "$tiny" = 1 ]; then
  limited "$run_limit" "$dir/ham10000" --device "$device" --size 32 --progressive --phase-images 64 --minutes "$minutes" \
    --no-progress --no-eval --out "$out/run" >> "$log" 2>&1 || failures+=("progressive run")
elif [ -d "$dir/ham128" ]; then
  limited "$run_limit" "$dir/ham10000" --device "$device" --data "$dir/ham128" --size 128 --progressive --minutes "$minutes" \
    --no-progress --eval-images 200 --out "$out/run" >> "$log" 2>&1 || failures+=("progressive run")
else
  failures+=("progressive run: $dir/ham128 missing")
fi
[ -f "$out/run/samples.png" ] && cp "$out/run/samples.png" "$out/samples.png"

say "forward benches on $device"
limited "$forward_limit" "$dir/forward" --bench "${forward_args[@]}" >> "$log" 2>&1 || failures+=("forward benches")
table
say "done: $(ls "$out" | tr '\n' ' ')"
[ "${#failures[@]}" = 0 ] || fail "failed: $(IFS=,; echo "${failures[*]}")"
