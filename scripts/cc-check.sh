#!/usr/bin/env bash
# Whether ${CC:-cc} builds what the power-loss test preloads: the shared
# library of tests/engine/powerloss/synclog.c, linked with -ldl (the test
# itself checks that the preloaded layer logged a sync). Exit 0 if so;
# otherwise say why on stderr.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
if ! err=$("${CC:-cc}" -shared -fPIC -O1 -o "$out/libsynclog.so" \
  "$here/../tests/engine/powerloss/synclog.c" -ldl 2>&1); then
  echo "${CC:-cc} cannot build the power-loss test's file layer: $err" >&2
  exit 1
fi
