#!/usr/bin/env bash
# One prepared GPU session (at most about 13 minutes on one H100/H200): a CUDA smoke test, the honest
# two-stage quality runs (breastmnist and adrenalmnist3d, 3 seeds, tuned presets; the two datasets
# train as two concurrent processes on the one GPU), the packing benchmark, then the pipeline speed
# benchmark. Sections are ordered by what is still unmeasured; cut the tail if the budget is short.
# Usage on the GPU machine, after the install line of .device/INSTALL:
#   bash benchmarks/gpu_session.sh "$OUT"
set -u
out=${1:-/tmp/damtui-gpu}
mkdir -p "$out"
data=${DAMTUI_DATA:-../shared/data/medmnist}
export DAMTUI_RUNS=/tmp/damtui-runs
log() { echo "[$(date +%T)] $*" | tee -a "$out/session.log"; }

log "$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader)"
log "$(python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)')"

# 1. smoke: both dimensions, both stages, fast pipeline on CUDA
pipe=""
if timeout 60 python3 -m damtui.cli train synthetic3d --device cuda --set epochs=1 >>"$out/session.log" 2>&1 \
   && timeout 40 python3 -m damtui.cli train synthetic3d --stage finetune --from latest --device cuda --set epochs=1 >>"$out/session.log" 2>&1; then
  log "smoke ok (fast pipeline)"
else
  log "smoke FAILED on the fast pipeline; quality runs fall back to the reference pipeline"
  pipe="--set pipeline=reference"
fi

# 2. quality: two concurrent processes on one GPU, separate run folders
log "quality start"
timeout 290 python3 benchmarks/quality.py --datasets breastmnist --preset tuned --seeds 0 1 2 \
  --data-root "$data" --device cuda $pipe --out "$out/results_breastmnist.md" --json "$out/results_breastmnist.json" \
  >>"$out/quality.log" 2>&1 &
p1=$!
timeout 290 python3 benchmarks/quality.py --datasets adrenalmnist3d --preset tuned --seeds 0 1 2 \
  --data-root "$data" --device cuda $pipe --out "$out/results_adrenalmnist3d.md" --json "$out/results_adrenalmnist3d.json" \
  >>"$out/quality.log" 2>&1 &
p2=$!
wait $p1; log "breastmnist quality exit $?"
wait $p2; log "adrenalmnist3d quality exit $?"
python3 -m damtui.cli results --md "$out/leaderboard.md" >>"$out/session.log" 2>&1; log "leaderboard exit $?"

# 3. packing (issue #7): one run vs 4 processes vs 4 seeds packed in one process, 2D and 3D
log "packing start"
timeout 100 python3 benchmarks/packing_speed.py --dataset breastmnist --data-root "$data" --device cuda --k 4 \
  --epochs 4 --out "$out/packing.md" >>"$out/packing.log" 2>&1; log "breast packing exit $?"
timeout 150 python3 benchmarks/packing_speed.py --dataset adrenalmnist3d --data-root "$data" --device cuda --k 4 \
  --epochs 3 --out "$out/packing.md" >>"$out/packing.log" 2>&1; log "adrenal packing exit $?"

# 4. speed: reference vs fast vs floor, one dataset at a time on an otherwise idle GPU
log "speed start"
timeout 50 python3 benchmarks/pipeline_speed.py --dataset breastmnist --data-root "$data" --device cuda --epochs 5 \
  --out "$out/performance.md" >>"$out/speed.log" 2>&1; log "breast speed exit $?"
timeout 90 python3 benchmarks/pipeline_speed.py --dataset adrenalmnist3d --data-root "$data" --device cuda --epochs 4 \
  --out "$out/performance.md" >>"$out/speed.log" 2>&1; log "adrenal speed exit $?"
timeout 80 python3 benchmarks/pipeline_speed.py --dataset synthetic2d --synthetic-train 78468 --preset default \
  --set batch_size=64 --set width=64 --device cuda --epochs 2 --variants fast,reference \
  --out "$out/performance.md" >>"$out/speed.log" 2>&1; log "chest-scale speed exit $?"
timeout 60 python3 benchmarks/pipeline_speed.py --dataset breastmnist --data-root "$data" --device cuda --epochs 4 \
  --variants fast --compile --out "$out/performance.md" >>"$out/speed.log" 2>&1; log "compile speed exit $?"
timeout 60 python3 benchmarks/tui_overhead.py --device cuda --repeats 3 --epochs 8 --unthrottled \
  >>"$out/speed.log" 2>&1; log "tui overhead exit $? (see speed.log)"
log "damtui --help: $(python3 -c 'import subprocess, sys, time; t = time.perf_counter(); subprocess.run([sys.executable, "-m", "damtui.cli", "--help"], capture_output=True); print(f"{time.perf_counter() - t:.3f} s")')"
log "done"
