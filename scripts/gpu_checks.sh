#!/usr/bin/env bash
# The GPU part of the benchmarks in one device call, most important first: the kernel tests on
# real hardware (no interpreter), the fused sLSTM table, the mLSTM kernel table, and training
# and inference as the demo network grows. A session is lent a GPU for 15 minutes all told
# (the machine's start included), so every step has its own time limit, and as soon as it ends
# its log and docs/benchmarks.md (with any section it wrote) are copied to $OUT: a call cut
# short still brings back what finished. Rows are printed as they are measured, so even a step
# stopped by its limit leaves its finished rows in its log.
#
# Here, once: make gpu-wheels   (the GPU machine reaches no package registry; its image has
#                                torch, triton, lightning and torch-geometric but not these)
# Then, with the device tool:   run(command="bash scripts/gpu_checks.sh", carry=[".gpu-wheels"], timeout_s=540)
# Back here: copy the -cuda sections of $OUT/benchmarks.md into docs/benchmarks.md.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d)}
PY=${PY:-python3}
export PYTHONUNBUFFERED=1

step() {  # NAME SECONDS COMMAND...
    local name=$1 limit=$2 start=$SECONDS rc
    shift 2
    echo "== $name (limit ${limit} s): $*"
    timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
    rc=$?
    echo "== $name: exit $rc after $((SECONDS - start)) s (124 = stopped by its limit)"
    tail -n 20 "$OUT/$name.log"
    cp docs/benchmarks.md "$OUT/benchmarks.md"
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
$PY -m pip install --quiet --no-index --no-deps .gpu-wheels/*.whl || exit 1
$PY -m pip install --quiet --no-index --no-deps --no-build-isolation -e . || exit 1
# Every import the steps need, checked at once: one line naming all that are missing.
$PY - <<'CHECK' || exit 1
import importlib, sys
needed = ["torch", "triton", "lightning", "torch_geometric", "hydra", "omegaconf", "pandas", "pyarrow", "sklearn",
          "onnx", "onnxruntime", "pytest", "pluggy", "iniconfig", "einops", "mlstm_kernels", "social_xlstm"]
missing = [name for name in needed if importlib.util.find_spec(name) is None]
if missing:
    sys.exit(f"missing on this machine: {' '.join(missing)} (add them to make gpu-wheels)")
CHECK

# no -x: one failing kernel must not hide the others' results
step kernel-tests 150 $PY -m pytest -q -p no:cacheprovider \
    tests/test_mlstm_kernels.py tests/test_slstm_kernels.py tests/test_mlstm_layer.py tests/test_slstm_layer.py \
    tests/test_triton_path.py
step train-presets 150 bash -c "$PY -m social_xlstm.cli train experiment=demo trainer.accelerator=gpu \
    trainer.max_epochs=1 trainer.limit_train_batches=20 baselines=[] run_dir=/tmp/gpu-demo && \
    $PY -m social_xlstm.cli train experiment=demo trainer.accelerator=gpu model.pooling.every_block=true \
    model.pooling.input_hops=2 model.interaction.blocks=2 model.day_of_week_inputs=false \
    trainer.max_epochs=1 trainer.limit_train_batches=20 baselines=[] run_dir=/tmp/gpu-pooled-blocks"
step slstm 90 $PY scripts/bench_slstm.py --device cuda --methods torch triton lstm \
    --batch 1024 16384 65536 --seq 12 288 2016 --head-dim 16 64
step kernels 120 $PY scripts/bench_kernels.py --device cuda --methods ours-triton nx-triton ours-chunkwise torch-lstm \
    --sequences 1024 16384 65536 --seq 12 288 2016 --head-dim 16 64
step scale 90 $PY scripts/bench_scale.py --device cuda --sensors 1000 20000 50000 --steps 12 288 2016 --sensors-for-steps 1000
