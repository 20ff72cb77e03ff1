#!/usr/bin/env bash
# Everything a short GPU session measures, in one call (at most 9.5 minutes):
#
#     OUT=/some/folder benchmarks/gpu_check.sh      # repository root, on the GPU machine
#
# 1. the GPU tests (CUDA graphs, deferred loss reads, RAdam kernels, checkpoint snapshots,
#    the L2-normalisation backward under bf16 autocast);
# 2. profile_gpu_step.py: step, replay and validation times, kernel tables, and the graph
#    replay with RAdam's compiled kernel against torch's foreach kernels;
# 3. the 100-epoch MSRVTT-scale bf16 training of gpu_training.py, with whichever RAdam
#    update replayed faster in 2;
# 4. with the time left, 3 epochs of the bf16+compile variant (torch.compile of the model
#    inside the graphs), in $OUT/compile.
# Logs go to $OUT (default /tmp/crosskd-gpu-check); each stage has its own time limit, and
# none runs past 9.5 minutes from the start, so a stage that hangs or runs long still
# leaves the next stages their time.
set -u
cd "$(dirname "$0")/.."
export OUT="${OUT:-/tmp/crosskd-gpu-check}" PYTHONPATH="$PWD/src" PYTHONUNBUFFERED=1
mkdir -p "$OUT"
deadline=$((SECONDS + 570))
within() {  # within CAP COMMAND...: COMMAND for at most CAP seconds, never past the deadline
    local cap=$1 left=$((deadline - SECONDS))
    shift
    ((left < cap)) && cap=$left
    ((cap > 20)) && timeout "$cap" "$@"
}
nvidia-smi --query-gpu=name,clocks.max.sm,power.limit,memory.total --format=csv \
    > "$OUT/gpu.txt" 2>&1
within 90 python3 -m pytest -p no:cacheprovider tests/train/test_graphed_step.py \
    tests/train/test_deferred_values.py tests/train/test_optim.py tests/checkpoint/test_background.py \
    tests/models/test_l2norm.py \
    > "$OUT/tests.log" 2>&1
cd benchmarks
within 160 python3 profile_gpu_step.py > "$OUT/profile.log" 2>&1
variant=$(python3 -c '
import json, os, sys
try:
    replays = json.load(open(os.path.join(os.environ["OUT"], "replay_seconds.json")))
except OSError:
    sys.exit(print("bf16"))
print("bf16+foreach" if replays["foreach"] < replays["compiled"] else "bf16")')
echo "training with the $variant variant" > "$OUT/bench.log"
within 320 python3 gpu_training.py --variants "$variant:100" >> "$OUT/bench.log" 2>&1
mkdir -p "$OUT/compile"
OUT="$OUT/compile" within 600 python3 gpu_training.py --variants bf16+compile:3 \
    > "$OUT/compile/bench.log" 2>&1
tail -n 4 "$OUT/tests.log"
grep -E "^(graph|training epoch|per replay|eager step|validation:|resumable)" "$OUT/profile.log"
grep -E "^(training with|\| bf16|epoch (1|2|50|100):)" "$OUT/bench.log"
grep -E "^(\| bf16|epoch [0-9]+:)" "$OUT/compile/bench.log"
