#!/usr/bin/env bash
# The peers a 2-core CPU cannot train to convergence in a session, on one GPU in one device
# call: iTransformer on Los-loop, 3 seeds side by side (on the 2-core Xeon an epoch takes
# minutes and a seed up to 110 epochs). Each seed's folder comes back as one archive without its
# checkpoints (the device returns at most 8 files of 16 MiB): settings.json, result.json, the
# kept test forecasts and the training log, which is all `bench_peers.py` needs to put the seed
# in its table and its seed ensemble.
#
# Here, once: make gpu-peer-wheels   (the GPU machine reaches no package registry)
# Then, with the device tool:         run(command="bash scripts/gpu_peers.sh",
#                                         carry=[".gpu-wheels", "data/los-loop/dataset"], timeout_s=540)
# Back here: for f in <files_at>/*.tgz; do tar -xzf "$f" -C runs/bench/peers; done
# and then the table: scripts/bench_peers.py ... --peers ... itransformer ... (it trains nothing more).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d)}
PY=${PY:-python3}
LIMIT=${LIMIT:-420}  # seconds of training, leaving the device call time to pack and return
PEERS=${PEERS:-itransformer}
export PYTHONUNBUFFERED=1

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
$PY -m pip install --quiet --no-index --no-deps .gpu-wheels/*.whl || exit 1
$PY -m pip install --quiet --no-index --no-deps --no-build-isolation -e . || exit 1

# every seed trains as a child run, all at once on the one GPU; a seed stopped by the limit
# has no result and is not packed (its checkpoints stay behind with the machine)
timeout "$LIMIT" $PY scripts/bench_peers.py --experiment los_loop --seeds 0 1 2 --peers $PEERS \
    --jobs 3 --no-doc -- data.path=data/los-loop/dataset 2>&1 | tee "$OUT/gpu_peers.log" | grep -E 'training|epoch [0-9]*0:|failed|Error'
for folder in runs/bench/peers/los_loop-project-*-seed*; do
    [ -f "$folder/result.json" ] || continue
    tar -czf "$OUT/$(basename "$folder").tgz" --exclude checkpoints --exclude training.lock \
        -C runs/bench/peers "$(basename "$folder")"
done
ls -la "$OUT"
