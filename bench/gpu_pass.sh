#!/usr/bin/env bash
# The GPU pass (issue 8), run on a machine with an NVIDIA GPU from the repository root:
#   bash bench/gpu_pass.sh [OUT_DIR]
# 1. builds gradcore for the local GPU, 2. runs the whole test suite (CUDA tests must run, none skip for want of a
# device), 3. runs compute-sanitizer memcheck/racecheck/initcheck/synccheck over the CUDA tests (reduced sweep),
# 4. runs every benchmark suite against PyTorch/cuDNN. Logs and JSON land in OUT_DIR (default bench/results/gpu-run).
set -uo pipefail
out="${1:-bench/results/gpu-run}"
mkdir -p "$out"
export CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" PYTHONUNBUFFERED=1

python3 -m pip install --no-build-isolation --no-deps -q -C cmake.define.CMAKE_CUDA_ARCHITECTURES=native . \
  2>&1 | tee "$out/build.log" || exit 1
python3 -c "import gradcore as gc; assert gc.cuda.is_available(), 'CUDA not available'; print('CUDA devices:', gc.cuda.device_count())" || exit 1

python3 -m pytest -q -rs -p no:cacheprovider tests 2>&1 | tee "$out/tests.log"
if grep -q "SKIPPED.*needs a CUDA device" "$out/tests.log"; then echo "ERROR: CUDA tests skipped" | tee -a "$out/tests.log"; fi

for tool in memcheck racecheck initcheck synccheck; do
  compute-sanitizer --tool "$tool" --error-exitcode 99 --target-processes all \
    python3 -m pytest -q -x -p no:cacheprovider -m cuda tests 2>&1 | tail -40 > "$out/sanitizer-$tool.log"
  echo "$tool exit ${PIPESTATUS[0]}" | tee -a "$out/sanitizer-summary.txt"
done

python3 -m bench.run --suite all --device cuda 2>&1 | tee "$out/bench.log"
