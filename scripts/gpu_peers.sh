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
# Back here, each archive replaces the seed's folder whole (a local folder's checkpoints must not
# stay beside another training's result):
#   mkdir -p runs/bench/peers && for f in <files_at>/*.tgz; do
#       rm -rf "runs/bench/peers/$(basename "$f" .tgz)"; tar -xzf "$f" -C runs/bench/peers; done
# and then the table: scripts/bench_peers.py ... --peers ... itransformer ... (it trains nothing more).
# A seed stopped by LIMIT comes back as its training log alone (<folder>.log): how far it got.
# Its checkpoints stay on the machine, so only a next call on the same warm machine resumes it.
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

# every seed trains as a child run, all at once on the one GPU, its output in its folder's log
timeout "$LIMIT" $PY scripts/bench_peers.py --experiment los_loop --seeds 0 1 2 --peers $PEERS \
    --jobs 3 --no-doc -- data.path=data/los-loop/dataset >"$OUT/gpu_peers.log" 2>&1
rc=$?
tail -n 5 "$OUT/gpu_peers.log"
echo "bench_peers: exit $rc (124 = stopped by LIMIT)"
for folder in runs/bench/peers/los_loop-project-*-seed*; do
    name=$(basename "$folder")
    echo "== $name"; tail -n 2 "$folder/bench_train.log"
    if [ -f "$folder/result.json" ]; then
        tar -czf "$OUT/$name.tgz" --exclude checkpoints --exclude training.lock -C runs/bench/peers "$name"
    else
        cp "$folder/bench_train.log" "$OUT/$name.log"
    fi
done
ls -la "$OUT"
exit "$rc"
