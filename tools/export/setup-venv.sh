#!/usr/bin/env bash
# Creates .venv-export/ (repository root) for tools/export, from this machine's local package index only:
# torch (CPU), transformers >= 5, onnx, onnxruntime (+ onnx-ir, which its 4-bit quantizer imports), safetensors,
# pillow, numpy, and torchvision when a build that loads with the CPU torch is there.
# Prefers the versions shared/models/hf-reference was made with (torch 2.13.0+cpu, transformers 5.18.0, ...).
#
# Exit codes: 0 ready; 3 the local index is absent (nothing can be installed here: callers skip); 1 other failure.
# Environment: EXPORT_PIP_INDEX (default file:///opt/pypi/simple), EXPORT_PIP_EXTRA_INDEX (default
# file:///opt/pypi-more/simple, used when present), EXPORT_PIP_WHEELS (default /opt/wheels), PYTHON (default python3).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.venv-export"
INDEX="${EXPORT_PIP_INDEX:-file:///opt/pypi/simple}"
EXTRA_INDEX="${EXPORT_PIP_EXTRA_INDEX:-file:///opt/pypi-more/simple}"
WHEELS="${EXPORT_PIP_WHEELS:-/opt/wheels}"
PYTHON="${PYTHON:-python3}"

PINNED=(torch==2.13.0 transformers==5.18.0 tokenizers==0.23.2 onnx==1.23.1 onnxruntime==1.30.0 onnx-ir
        safetensors pillow==12.3.0 numpy==2.4.6)
LOOSE=(torch "transformers>=5" onnx onnxruntime onnx-ir safetensors pillow numpy)
TORCHVISION_FOR_TORCH_2_13=torchvision==0.28.0

say() { echo "setup-venv: $*" >&2; }

# The stamp holds a hash of the package lists: an edited list rebuilds the environment.
stamp="$VENV/.rsmoe-setup"
want="$(printf '%s\n' "${PINNED[@]}" -- "${LOOSE[@]}" -- "$TORCHVISION_FOR_TORCH_2_13" | sha256sum | cut -d' ' -f1)"
if [[ -x "$VENV/bin/python" && -f "$stamp" && "$(head -n1 "$stamp")" == "$want" ]]; then
  tail -n +2 "$stamp" >&2
  exit 0
fi

index_dir="${INDEX#file://}"
if [[ "$INDEX" != file://* || ! -d "$index_dir" ]]; then
  say "the local package index $INDEX is absent: cannot install torch/transformers/onnx here (no network index is used)"
  exit 3
fi
if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
  say "$PYTHON has no venv/ensurepip module: cannot create $VENV"
  exit 3
fi

rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
pip_args=(--quiet --disable-pip-version-check --no-input --index-url "$INDEX" --find-links "$WHEELS")
if [[ -d "${EXTRA_INDEX#file://}" ]]; then pip_args+=(--extra-index-url "$EXTRA_INDEX"); fi
pip() { PIP_CONFIG_FILE=/dev/null "$VENV/bin/python" -m pip "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }

if ! pip install "${pip_args[@]}" "${PINNED[@]}"; then
  say "the versions hf-reference was made with are not all in the local index: installing the newest local ones"
  say "(exports still work; byte-level and logit-level agreement with hf-reference is then not guaranteed)"
  pip install "${pip_args[@]}" "${LOOSE[@]}" || { say "pip install failed"; exit 1; }
fi

# torchvision is optional (only transformers' video processors need it); the index's builds may be CUDA builds
# that do not load with the CPU torch, and a torchvision that fails to import breaks every transformers import.
torchvision_note="torchvision: not installed"
if pip install "${pip_args[@]}" --no-deps "$TORCHVISION_FOR_TORCH_2_13" 2>/dev/null; then
  if "$VENV/bin/python" -c 'import torchvision' 2>/dev/null; then
    torchvision_note="torchvision: $("$VENV/bin/python" -c 'import torchvision; print(torchvision.__version__)')"
  else
    pip uninstall --quiet -y torchvision
    torchvision_note="torchvision: the local $TORCHVISION_FOR_TORCH_2_13 does not load with this torch (a CUDA build?): left out; exports use transformers' PIL image processors"
  fi
fi

versions="$("$VENV/bin/python" - <<'PY'
import numpy, onnx, onnxruntime, safetensors, tokenizers, torch, transformers
from PIL import Image  # noqa: F401
import PIL
print(f"torch {torch.__version__}, transformers {transformers.__version__}, tokenizers {tokenizers.__version__}, "
      f"onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}, numpy {numpy.__version__}, "
      f"pillow {PIL.__version__}, safetensors {safetensors.__version__}")
if not (torch.__version__.startswith("2.13.") and transformers.__version__.startswith("5.18.")):
    print("note: hf-reference was made with torch 2.13 and transformers 5.18")
PY
)"
{ echo "$want"; echo "setup-venv: $VENV ready: $versions"; echo "setup-venv: $torchvision_note"; } > "$stamp"
tail -n +2 "$stamp" >&2
