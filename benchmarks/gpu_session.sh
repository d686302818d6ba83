#!/usr/bin/env bash
# One prepared GPU session that ends within 9 minutes on one H100/H200, by construction: every step
# runs under `timeout` with the smaller of its slot and the time left before the deadline (540 s
# from the start), so an estimate that is off cuts the tail, never the session. Steps, in order:
#
#   step        slot s  expected s  from
#   smoke          35      ~20      3 chains at once (single 2D both stages; packed 2D both stages;
#                                   packed 3D pretrain), 1 epoch of synthetic data, each process ~7 s
#                                   of start-up (CUDA, imports)
#   speed-2d       55      ~35      breastmnist, 4 epochs of fast, floor_bf16, reference, naive and
#                                   seed_pipeline.py (issue #24: 0.07-0.20 s/epoch, first epochs
#                                   <= 5 s of cuDNN autotuning; start-up and data ~10 s)
#   speed-3d       75      ~50      adrenalmnist3d, 3 epochs (fast 1.07, floor 0.98, reference 2.7,
#                                   seed_pipeline 1.9 s/epoch; first epochs 0.6-4.2 s)
#   tui            45      ~30      tui_overhead.py --repeats 3 --epochs 8 (demo preset, 6 runs)
#   packing-2d     50      ~35      packing_speed.py breastmnist K=4, 4 epochs (one, 4 processes, packed)
#   quality       255     ~250      tuned two-stage, 3 seeds packed, breastmnist and adrenalmnist3d as
#                                   two processes at once. ../shared/gpu-runs/2026-12-04-h200 (6
#                                   processes at once on one H200): breastmnist 76 + 64 s per seed,
#                                   adrenalmnist3d 157 + 93 s per seed (5 s/epoch); packing the 3 seeds
#                                   is the same GPU work as their 3 processes
#   leaderboard    10       ~5      damtui results over the quality runs
#   compile      rest      ~60?     breastmnist fast + torch.compile reduce-overhead (never measured:
#                                   the one step allowed to be cut)
# Slots: 35 + 55 + 75 + 45 + 50 + 255 + 10 = 525 s, with 15 s to spare for the header.
# Not here: packing in 3D (4 processes of the 3D model already reached 0.91x one process on an H200:
# the GPU is busy, nothing to pack into) and floor_fp32 (15 s of fp32 cuDNN autotuning).
#
# Usage on the GPU machine, after the line that `cat .device/INSTALL` prints (../shared/device/
# prepare.sh --with-torchio packs the wheels, the data and seed_pipeline.py into .device/):
#   bash benchmarks/gpu_session.sh "$OUT"
# --quick runs every step with tiny settings on whatever device there is, with slots four times as
# long and a 25-minute deadline (a 2-core CPU), to check the script end to end without a GPU:
#   DAMTUI_SEED_PIPELINE=PATH bash benchmarks/gpu_session.sh --quick /tmp/gpu-session
# OUT receives 8 files (the device tool brings back 8): session.log (steps, exit codes, times),
# bench.log (every command's output), performance.md (speed, packing and app tables), leaderboard.md,
# results_{breastmnist,adrenalmnist3d}.{md,json}. Runs go to a scratch folder (checkpoints are large).
set -u
quick=0
if [ "${1:-}" = "--quick" ]; then quick=1; shift; fi
out=${1:?usage: bash benchmarks/gpu_session.sh [--quick] OUT}
mkdir -p "$out" && out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.."
budget=${DAMTUI_SESSION_S:-540}
scale=1  # slots are seconds on the GPU; --quick on a 2-core CPU gets four times as long
[ $quick = 1 ] && { scale=4; budget=${DAMTUI_SESSION_S:-1500}; }
start=$SECONDS
runs=$(mktemp -d /tmp/damtui-session-XXXXXX)
export DAMTUI_RUNS=$runs/runs PYTHONUNBUFFERED=1
data=${DAMTUI_DATA:-../shared/data/medmnist}
seedp=${DAMTUI_SEED_PIPELINE:-.device/seed_pipeline.py}
[ -f "$seedp" ] || seedp=../shared/reference/seed_pipeline.py
py=python3
damtui="$py -m damtui.cli"

log() { echo "[$(date +%T) +$((SECONDS - start))s] $*" | tee -a "$out/session.log"; }

# A bash -c step that starts processes in the background ends them all when timeout stops it
# (else a chain `a && b` could start b after the deadline): TERM, 2 s to finish the batch, KILL.
guard='trap "trap \"\" TERM; kill -TERM 0; sleep 2; kill -KILL 0" TERM;'

# step NAME SLOT COMMAND...: run COMMAND (its output to bench.log) for at most SLOT seconds and never
# past the deadline; timeout signals the command's whole process group.
step() {
  local name=$1 slot=$(($2 * scale)); shift 2
  local left=$((budget - (SECONDS - start) - 5))
  local limit=$((slot < left ? slot : left))
  if [ "$limit" -lt 10 ]; then log "$name: skipped, ${left}s left before the deadline"; return 1; fi
  echo "===== $name: $*" >>"$out/bench.log"
  local t=$SECONDS rc=0
  timeout -k 3 "$limit" "$@" >>"$out/bench.log" 2>&1 || rc=$?
  log "$name: exit $rc in $((SECONDS - t))s (limit ${limit}s)"
  return $rc
}

if [ $quick = 1 ]; then
  dev=${DAMTUI_DEVICE:-$($py -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')}
  tiny=(--set width=2 --set batch_size=100)  # few, cheap steps
  smoke_set=("${tiny[@]}")
  speed2d=(--dataset breastmnist --data-root "$data" --epochs 2 --variants fast,floor_fp32,naive "${tiny[@]}")
  [ -f "$data/breastmnist.npz" ] || speed2d=(--dataset synthetic2d "${speed2d[@]:4}")
  speed3d=(--dataset synthetic3d --synthetic-train 64 --epochs 2 --variants fast,naive "${tiny[@]}")
  seed_epochs=1
  tui=(--repeats 1 --epochs 2 "${tiny[@]}")
  packing=(--dataset synthetic2d --k 2 --epochs 2 "${tiny[@]}")
  quality_sets=(synthetic2d synthetic3d)
  quality=(--preset demo --seeds 0 1 --set epochs=1 "${tiny[@]}")
else
  dev=cuda
  smoke_set=()
  speed2d=(--dataset breastmnist --data-root "$data" --epochs 4 --variants fast,floor_bf16,reference,naive)
  speed3d=(--dataset adrenalmnist3d --data-root "$data" --epochs 3 --variants fast,floor_bf16,reference,naive)
  seed_epochs=4
  tui=(--repeats 3 --epochs 8)
  packing=(--dataset breastmnist --data-root "$data" --k 4 --epochs 4)
  quality_sets=(breastmnist adrenalmnist3d)
  quality=(--preset tuned --seeds 0 1 2 --data-root "$data")
fi

log "gpu_session.sh $([ $quick = 1 ] && echo --quick) -> $out (deadline ${budget}s; runs in $runs)"
log "$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo 'no nvidia-smi')"
log "$($py -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available())')"

# 1. smoke: single and packed, both stages, 2D, and packed 3D
smoke() {
  local s=(--device "$dev" --set epochs=1 $SMOKE_SET)
  ($damtui train synthetic2d "${s[@]}" --name smoke-1 \
    && $damtui train synthetic2d --stage finetune --from smoke-1 "${s[@]}" --name smoke-1f) &
  local a=$!
  ($damtui train synthetic2d "${s[@]}" --seeds 0,1 --name smoke-p0,smoke-p1 \
    && $damtui train synthetic2d --stage finetune --from smoke-p0,smoke-p1 "${s[@]}" --seeds 0,1 \
       --name smoke-p0f,smoke-p1f) &
  local b=$!
  $damtui train synthetic3d "${s[@]}" --seeds 0,1 --name smoke-3p0,smoke-3p1 &
  local c=$!
  local rc=0
  wait $a || { echo "smoke: single 2D failed"; rc=1; }
  wait $b || { echo "smoke: packed 2D failed"; rc=2; }
  wait $c || { echo "smoke: packed 3D failed"; rc=2; }
  return $rc
}
export -f smoke
export dev damtui SMOKE_SET="${smoke_set[*]}"
pack=--pack
if ! step smoke 35 bash -c "$guard smoke"; then
  log "smoke failed (bench.log has why); quality runs seed by seed, not packed"
  pack=""
fi
$damtui runs list --runs-dir "$DAMTUI_RUNS" >>"$out/session.log" 2>&1

# 2. speed: damtui's variants, the bare loop and the plain DataLoader pipeline in the same call
step speed-2d 55 $py benchmarks/pipeline_speed.py "${speed2d[@]}" --device "$dev" \
  --seed-pipeline "$seedp" --seed-epochs $seed_epochs --out "$out/performance.md"
if [ $quick = 1 ]; then
  step speed-3d 75 $py benchmarks/pipeline_speed.py "${speed3d[@]}" --device "$dev" --out "$out/performance.md"
else
  step speed-3d 75 $py benchmarks/pipeline_speed.py "${speed3d[@]}" --device "$dev" \
    --seed-pipeline "$seedp" --seed-epochs $seed_epochs --out "$out/performance.md"
fi

# 3. the app's cost while it follows a run
echo -e "\n### tui_overhead.py ${tui[*]} --device $dev\n\n\`\`\`" >>"$out/performance.md"
step tui 45 bash -c "$py benchmarks/tui_overhead.py --device $dev ${tui[*]} | tee -a '$out/performance.md'"
echo '```' >>"$out/performance.md"

# 4. packing: one run, K processes, K seeds packed
step packing-2d 50 $py benchmarks/packing_speed.py "${packing[@]}" --device "$dev" --out "$out/performance.md"

# 5. quality: the tuned two-stage runs, 3 seeds (packed), two datasets as two processes
quality_runs() {
  local pids=() rc=0
  for flag in $QUALITY_SETS; do
    $py benchmarks/quality.py --datasets "$flag" $QUALITY_ARGS --device "$dev" $pack --runs-dir "$runs/quality" \
      --out "$out/results_$flag.md" --json "$out/results_$flag.json" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  return $rc
}
export -f quality_runs
export py pack runs out QUALITY_SETS="${quality_sets[*]}" QUALITY_ARGS="${quality[*]}"
step quality 255 bash -c "$guard quality_runs"
step leaderboard 10 $damtui results --runs-dir "$runs/quality" --md "$out/leaderboard.md"

# 6. the tail: torch.compile (reduce-overhead, CUDA graphs) against the fast path, if time is left
if [ $quick = 1 ]; then
  log "compile: skipped with --quick (inductor builds C++ for minutes on a CPU)"
else
  step compile 300 $py benchmarks/pipeline_speed.py --dataset breastmnist --data-root "$data" --device "$dev" \
    --epochs 4 --variants fast --compile --out "$out/performance.md"
fi
log "damtui --help: $($py -c 'import subprocess, sys, time; t = time.perf_counter(); subprocess.run([sys.executable, "-m", "damtui.cli", "--help"], capture_output=True); print(f"{time.perf_counter() - t:.3f} s")')"
log "done in $((SECONDS - start))s; files: $(cd "$out" && ls | tr '\n' ' ')"
rm -rf "$runs"
