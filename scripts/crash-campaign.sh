#!/usr/bin/env bash
# The long crash campaign (issue 6): ROUNDS rounds (default 50) of SIGKILL
# at a random moment while three writers upsert and delete across tenants
# (background rebuilds included) and a fourth drops and creates a tenant;
# after each restart every acknowledged operation must be there, each
# index must find every stored point, and the churning tenant must be
# wholly there or wholly gone. The test suite runs 4 rounds of the same.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/bulkhead/target}"
BULKHEAD_CRASH_ROUNDS="${1:-50}" cargo test --release --locked --workspace --test engine \
  campaign::a_crash_campaign -- --nocapture
