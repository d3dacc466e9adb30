#!/usr/bin/env bash
# The set-up's own test (make test runs it after scripts/setup.sh): each check
# of the set-up must fail on a machine where its consumer would fail, and pass
# here, where the build is about to run.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failures=0
expect() { # expect ok|fail DESCRIPTION COMMAND...
  local want="$1" what="$2" out rc=0
  shift 2
  out=$("$@" 2>&1) || rc=$?
  if { [ "$want" = ok ] && [ $rc -eq 0 ]; } || { [ "$want" = fail ] && [ $rc -ne 0 ]; }; then
    echo "test-setup: ok: $what"
  else
    echo "test-setup: FAILED: $what: expected $want, got exit $rc: $out" >&2
    failures=$((failures + 1))
  fi
}
check_root() { python3 "$here/libclang-check.py" --root "$1"; }

# libclang, as bindgen loads it.
libclang=$(python3 "$here/libclang-check.py") || {
  echo "test-setup: FAILED: this machine's libclang, as bindgen would load it: $libclang" >&2
  exit 1
}
expect ok "this machine's libclang loads and finds clang's headers ($libclang)" check_root /

root="$work/only-cpp" # what this machine image ships: libclang-cpp only
mkdir -p "$root/usr/lib/llvm-14/lib" "$root/usr/lib/x86_64-linux-gnu"
cpp=$(ls /usr/lib/x86_64-linux-gnu/libclang-cpp.so.* /usr/lib/llvm-*/lib/libclang-cpp.so.* 2>/dev/null | head -n 1 || true)
for dir in "$root/usr/lib/llvm-14/lib" "$root/usr/lib/x86_64-linux-gnu"; do
  if [ -n "$cpp" ]; then cp "$(readlink -f "$cpp")" "$dir/libclang-cpp.so.14"; else printf '\177ELF\002' >"$dir/libclang-cpp.so.14"; fi
done
expect fail "a root with only libclang-cpp.so.14 has no libclang" check_root "$root"

root="$work/not-loadable" # names that match, files that are not libraries
mkdir -p "$root/usr/lib/llvm-14/lib"
printf '\177ELF\002 not a library' >"$root/usr/lib/llvm-14/lib/libclang-14.so.1"
ln -s /nonexistent/libclang.so.1 "$root/usr/lib/llvm-14/lib/libclang.so"
expect fail "a libclang-14.so.1 that does not load and a dangling libclang.so" check_root "$root"

root="$work/real-library" # the real library under a name bindgen looks for
mkdir -p "$root/usr/lib/llvm-14/lib"
cp "$(readlink -f "$libclang")" "$root/usr/lib/llvm-14/lib/libclang-14.so.1"
expect ok "a root holding a real libclang-14.so.1" check_root "$root"

# The library without clang's builtin headers (libclang1-14 without
# libclang-common-14-dev): hide every directory that holds them, in a mount
# namespace of this process only.
real=$(dirname "$(readlink -f "$libclang")")
hide=$(for d in /usr/include/clang /usr/lib/clang /usr/local/lib/clang /usr/lib/llvm-*/lib/clang \
  "$real/clang" "$real/../lib/clang"; do if [ -d "$d" ]; then readlink -f "$d"; fi; done | sort -u)
if unshare --mount true 2>/dev/null; then
  # exit 77: a directory could not be hidden, so nothing was proven.
  rc=0
  out=$(unshare --mount sh -c 'for d in $0; do mount -t tmpfs none "$d" || exit 77; done; python3 "$1"' \
    "$hide" "$here/libclang-check.py" 2>&1) || rc=$?
  if [ $rc -eq 77 ]; then
    echo "test-setup: skipped: libclang without clang's headers (could not hide $hide)"
  else
    headers_hidden() { echo "$out"; return $rc; }
    expect fail "libclang without clang's builtin headers (stdbool.h)" headers_hidden
  fi
else
  echo "test-setup: skipped: libclang without clang's headers (hiding them needs a mount namespace, i.e. root)"
fi

# Where libclang cannot be installed (apt refuses), set-up stops and says
# what to install, before cargo could reach bindgen.
mkdir -p "$work/apt" "$work/empty"
printf '#!/bin/sh\necho "E: no archive (the test'"'"'s apt-get)" >&2\nexit 100\n' >"$work/apt/apt-get"
printf '#!/bin/sh\nexec "$@"\n' >"$work/apt/sudo" # keeps PATH, so apt-get is the test's
chmod +x "$work/apt/apt-get" "$work/apt/sudo"
setup_says_what_to_install() {
  local out
  out=$(PATH="$work/apt:$PATH" LIBCLANG_PATH="$work/empty" "$here/setup.sh" run 2>&1) && return 1
  grep -q "install libclang-dev" <<<"$out"
}
expect ok "set-up stops with a clear message when libclang cannot be installed" setup_says_what_to_install

# The C compiler, as the power-loss test runs it.
expect ok "this machine's cc builds the power-loss test's preloaded library" "$here/cc-check.sh"
expect fail "a CC that does not exist" env CC="$work/no-such-cc" "$here/cc-check.sh"
mkdir -p "$work/cc-no-shared"
printf '#!/bin/sh\nfor a; do [ "$a" = -shared ] && exit 1; done\nexec cc "$@"\n' >"$work/cc-no-shared/cc"
chmod +x "$work/cc-no-shared/cc"
expect fail "a cc that cannot link a shared library" env CC="$work/cc-no-shared/cc" "$here/cc-check.sh"

# The model, by the digests of the files the encoder reads.
expect ok "the default model is whole" "$here/fetch-model.sh" --check
models="${BULKHEAD_MODELS_DIR:-$HOME/.cache/bulkhead/models}/all-MiniLM-L6-v2"
damaged="$work/models/all-MiniLM-L6-v2"
mkdir -p "$damaged"
cp -rs "$models/." "$damaged/" # links to the real files
rm "$damaged/tokenizer.json"
head -c -1 "$models/tokenizer.json" >"$damaged/tokenizer.json"
expect fail "a model with a truncated tokenizer.json" env BULKHEAD_MODELS_DIR="$work/models" "$here/fetch-model.sh" --check
ln -sf "$models/tokenizer.json" "$damaged/tokenizer.json"
rm "$damaged/config.json"
expect fail "a model without config.json" env BULKHEAD_MODELS_DIR="$work/models" "$here/fetch-model.sh" --check

[ $failures -eq 0 ] || { echo "test-setup: $failures check(s) of the set-up are wrong" >&2; exit 1; }
