#!/usr/bin/env bash
# Multi-process testing: bash tools/dist_test.sh CONFIG CHECKPOINT NPROC [args]
#
# Runs `$PYTHON -m torch.distributed.run` (torchrun), so the launcher is the
# torch of the interpreter you name, not whatever `torchrun` is on PATH (a
# venv that is not activated has none):
#   PYTHON=/path/to/venv/bin/python bash tools/dist_test.sh CONFIG CKPT 4
# $PYTHON defaults to `python` on PATH (an activated venv's), else `python3`.
CONFIG=$1
CHECKPOINT=$2
NPROC=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
if [ -z "${PYTHON:-}" ]; then
    PYTHON=$(command -v python || command -v python3)
fi
if [ -z "$PYTHON" ] || ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "dist_test.sh: no Python interpreter '${PYTHON}'; set PYTHON to" \
        "the venv's python, e.g. PYTHON=.venv/bin/python" >&2
    exit 2
fi

PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
"$PYTHON" -m torch.distributed.run \
    --nnodes=$NNODES \
    --node_rank=$NODE_RANK \
    --master_addr=$MASTER_ADDR \
    --nproc_per_node=$NPROC \
    --master_port=$PORT \
    "$(dirname "$0")/test.py" \
    "$CONFIG" \
    "$CHECKPOINT" \
    --launcher pytorch "${@:4}"
