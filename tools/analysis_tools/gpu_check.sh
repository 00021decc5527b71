#!/usr/bin/env bash
# Every GPU table of the project in one run (about 6 minutes on an H100/H200):
# the CUDA tests (the Triton kernels compiled, against the torch backend and
# the spec), the operator benchmark and the training-step benchmark, each
# backend, fp32 and AMP.
#
#   bash tools/analysis_tools/gpu_check.sh [LOG_DIR]      # on the GPU machine
#
# Logs go to LOG_DIR (default: $OUT if set, else work_dirs/gpu_check), one
# file per part, and a summary to stdout.
#
# A GPU image that has torch and triton but not the OpenMMLab stack can take
# it as wheels: on a machine with PyPI, run
#   bash tools/analysis_tools/gpu_check.sh --prepare-wheels [PYTHON_VERSION]
# which writes the pure-Python wheels into .whl/ (git-ignored); this script
# installs them (no network, no dependencies resolved) when it finds .whl/.
set -uo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-$(command -v python3 || command -v python)}

# Pure-Python packages the GPU image lacks (it has torch, triton, numpy,
# scipy, matplotlib, opencv, pyyaml, rich, scikit-image, pytest).
# mmcv-lite ships a source archive only: its (pure) wheel is built here.
WHEELS=(mmengine==0.10.7 mmsegmentation==1.2.2 addict yapf platformdirs
        termcolor prettytable wcwidth ftfy)

if [ "${1:-}" = "--prepare-wheels" ]; then
    version=${2:-3.12}
    mkdir -p .whl
    grep -qxF '/.whl/' .git/info/exclude 2>/dev/null ||
        echo '/.whl/' >> .git/info/exclude
    "$PYTHON" -m pip wheel -q --no-deps -w .whl mmcv-lite==2.1.0 &&
    "$PYTHON" -m pip download -q --no-deps --only-binary=:all: \
        --python-version "$version" --implementation py -d .whl \
        "${WHEELS[@]}" &&
    # ninja builds the cpu backend's C++ kernels (a binary wheel).
    "$PYTHON" -m pip download -q --no-deps --only-binary=:all: \
        --python-version "$version" --platform manylinux2014_x86_64 \
        -d .whl ninja==1.13.2 || exit 1
    ls .whl
    exit 0
fi

if ! "$PYTHON" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())'
then
    echo "gpu_check.sh: no CUDA device visible to $PYTHON: nothing to" \
        "check here (run it on a GPU machine)" >&2
    exit 3
fi

LOG_DIR=${1:-${OUT:-work_dirs/gpu_check}}
mkdir -p "$LOG_DIR"
if [ -d .whl ]; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile \
        --no-cache-dir --upgrade --target /tmp/gpu_check_site .whl/*.whl ||
        exit 1
    export PYTHONPATH=/tmp/gpu_check_site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader \
    2>/dev/null | tee "$LOG_DIR/device.txt"
"$PYTHON" -c 'import torch, triton; print("torch", torch.__version__,
    "triton", triton.__version__, torch.cuda.get_device_name())' |
    tee -a "$LOG_DIR/device.txt"

status=0
part() {  # part NAME SECONDS COMMAND...: run with a time limit, log, summarise
    local name=$1 limit=$2
    shift 2
    echo "== $name"
    timeout "$limit" "$@" > "$LOG_DIR/$name.log" 2>&1
    local rc=$?
    tail -n 40 "$LOG_DIR/$name.log"
    echo "== $name: exit $rc"
    [ $rc -eq 0 ] || status=1
}

# 1. CUDA tests: the kernels compiled, and every CUDA test of the suite.
part cuda_tests 120 "$PYTHON" -m pytest -q -p no:cacheprovider -x \
    tests/ops tests/deploy/test_compile_amp.py
# 2. The operator: each backend against max_pool2d and the traffic floor.
part benchmark_dynopool 150 "$PYTHON" \
    tools/analysis_tools/benchmark_dynopool.py --device cuda --repeat 10
# 3. A training step of fcn_dynopool-r50-d8 against mmseg's fcn_r50-d8 at
#    512x512, batch 4 (fixed and learning ratios, fp32 and AMP), each
#    backend; cudnn.benchmark on, as the mmseg recipes set it.
for backend in torch triton; do
    for amp in "" "--amp fp16"; do
        for ratios in --fixed-ratios ""; do
            tag=${backend}_${amp:+amp_}${ratios:+fixed}
            MMDYNOPOOL_BACKEND=$backend part "train_step_${tag%_}" 40 \
                "$PYTHON" tools/analysis_tools/benchmark_train_step.py \
                --crop 512 512 --batch 4 --iters 15 --warmup 3 \
                --cudnn-benchmark $amp $ratios \
                --out "$LOG_DIR/train_step_${tag%_}.json"
        done
    done
done
exit $status
