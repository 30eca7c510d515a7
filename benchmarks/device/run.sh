#!/usr/bin/env bash
# The book's device checks in one call, from the repository root, with no package registry:
#
#   bash benchmarks/device/run.sh OUT [--device cuda|cpu] [--budget SECONDS]
#
# Installs the wheels of .whl/ (made by benchmarks/device/bundle.py) into $SITE with --target, then runs,
# each under `timeout` and all inside --budget seconds (default 480):
#   versions   python, torch, CUDA, GPU, numpy, pandas, simulators      -> OUT/versions.txt
#   envs       build and step every simulator, one EGL frame            -> OUT/envs.json
#   tests      the tests that skip without CUDA (cuda_tests.py picks them)  -> OUT/pytest-junit.xml
#   gpu-check  benchmarks/gpu_check.py, its tables                      -> OUT/gpu_check.md, OUT/gpu-check.tar.gz
# and writes each stage's exit code and seconds to OUT/summary.tsv. Everything printed goes to OUT/run.log
# as it happens, so a run stopped midway still leaves its log. A failed stage does not stop the later ones;
# the exit code is the first failure's. Environment: DEVICE (cuda), BUDGET (480), SITE (/tmp/site),
# GPU_CHECK_ARGS (cuda: "--steps 100 --online-steps 200"; cpu: "--quick"), STAGES (all four, in order).
set -uo pipefail

usage() { echo "usage: bash benchmarks/device/run.sh OUT [--device cuda|cpu] [--budget SECONDS]" >&2; exit 2; }
[[ $# -ge 1 && $1 != -* ]] || usage
out=$1; shift
device=${DEVICE:-cuda}
budget=${BUDGET:-480}
while (($#)); do
  case $1 in
    --device) device=${2:?}; shift 2 ;;
    --budget) budget=${2:?}; shift 2 ;;
    *) usage ;;
  esac
done
if [[ $device == cuda* ]]; then default_args="--steps 100 --online-steps 200"; else default_args="--quick"; fi
gpu_check_args=${GPU_CHECK_ARGS:-$default_args}
stages=${STAGES:-versions envs tests gpu-check}
site=${SITE:-/tmp/site}
mkdir -p "$out" && out=$(cd "$out" && pwd) || exit 2
root=$(pwd)
work=$(mktemp -d)
started=$SECONDS
failed=0

left() { echo $((budget - (SECONDS - started))); }

# stage NAME CAP COMMAND...: run COMMAND under timeout min(CAP, time left - 10 s), log its code and time.
stage() {
  local name=$1 cap=$2 limit rc begin=$SECONDS
  shift 2
  limit=$(left); limit=$((limit - 10 < cap ? limit - 10 : cap))
  if ((limit < 5)); then
    echo "== $name: skipped, the budget of ${budget} s is spent"
    printf '%s\t%s\t%s\n' "$name" "skipped" 0 >>"$out/summary.tsv"
    ((failed == 0)) && failed=124
    return
  fi
  echo "== $name (at most ${limit} s): $*"
  timeout --kill-after=5 "$limit" "$@"
  rc=$?
  ((rc == 124 || rc == 137)) && echo "== $name: stopped after ${limit} s"
  echo "== $name: exit $rc after $((SECONDS - begin)) s"
  printf '%s\t%s\t%s\n' "$name" "$rc" $((SECONDS - begin)) >>"$out/summary.tsv"
  ((rc != 0 && failed == 0)) && failed=$rc
}

main() {
  echo "run.sh: device=$device budget=${budget}s stages='$stages' gpu_check_args='$gpu_check_args'"
  echo "run.sh: started $(date -u +%FT%TZ) on $(hostname), $(nproc) cores, in $root"
  printf 'stage\texit\tseconds\n' >"$out/summary.tsv"
  # GL loaders: only on the GPU machine and only where its image has no libEGL (never unpack into / elsewhere)
  if ! ldconfig -p 2>/dev/null | grep -q 'libEGL.so.1 '; then
    if [[ $device != cuda* ]]; then
      echo "== gl: no libEGL.so.1; .gl/*.deb are unpacked only with --device cuda: rendering will fail"
    elif compgen -G ".gl/*.deb" >/dev/null; then
      echo "== gl: no libEGL.so.1, unpacking .gl/*.deb"
      for f in .gl/*.deb; do dpkg -x "$f" /; done
      ldconfig
    else
      echo "== gl: no libEGL.so.1 and no .gl/*.deb: rendering will fail"
    fi
  fi
  if [[ -z ${__EGL_VENDOR_LIBRARY_FILENAMES:-} && -f /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json ]]; then
    export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  fi
  if compgen -G ".whl/*.whl" >/dev/null; then
    stage install 120 python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$site" .whl/*.whl
  else
    echo "== install: no .whl/*.whl (run benchmarks/device/bundle.py and carry .whl)"
    printf 'install\tmissing\t0\n' >>"$out/summary.tsv"; failed=1
  fi
  export PYTHONPATH="$site:$root:$root/benchmarks/device${PYTHONPATH:+:$PYTHONPATH}"
  export MUJOCO_GL=egl PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
  if ! python3 -c "import dm_control.suite" 2>"$work/egl.err"; then
    echo "== MUJOCO_GL=egl: dm_control does not import; rendering off for the rest:"; cat "$work/egl.err"
    export MUJOCO_GL=disable
  fi
  stage ipl_core 60 python3 -c "import ipl_core, torch; print('ipl_core from', ipl_core.__file__); \
torch.zeros(1, device='$device')"
  for name in $stages; do
    case $name in
      versions) stage versions 60 bash -c "python3 benchmarks/device/versions.py | tee '$out/versions.txt'" ;;
      envs) stage envs 120 python3 benchmarks/device/envs_check.py --out "$out/envs.json" ;;
      tests)
        mapfile -t files < <(grep -l "torch.cuda.is_available" tests/*.py)
        stage tests 180 python3 -m pytest -p cuda_tests -p no:cacheprovider -q -rs --continue-on-collection-errors \
          --junitxml="$out/pytest-junit.xml" "${files[@]}" ;;
      gpu-check)
        # shellcheck disable=SC2086  # GPU_CHECK_ARGS is a list of words
        stage gpu-check 600 python3 benchmarks/gpu_check.py --device "$device" --out "$work/gpu-check" $gpu_check_args
        if [[ -d $work/gpu-check ]]; then
          cp "$work/gpu-check/gpu_check.md" "$out/" 2>/dev/null
          tar -czf "$out/gpu-check.tar.gz" -C "$work" gpu-check
        fi ;;
      *) echo "== unknown stage $name"; failed=2 ;;
    esac
  done
  echo "== summary (exit, seconds):"; column -t "$out/summary.tsv" 2>/dev/null || cat "$out/summary.tsv"
  echo "run.sh: done after $((SECONDS - started)) s, exit $failed; files: $(cd "$out" && ls | tr '\n' ' ')"
  rm -rf "$work"
  return "$failed"
}

main 2>&1 | tee -a "$out/run.log"
exit "${PIPESTATUS[0]}"
