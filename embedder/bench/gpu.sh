#!/usr/bin/env bash
# GPU throughput of the encoder: builds the sidecar crate with candle's CUDA
# backend and measures sentences/s at batch sizes up to 512, then the CPU
# numbers on the same machine for the ratio. Needs a CUDA toolkit (nvcc) and
# the model in $BULKHEAD_MODELS_DIR (scripts/fetch-model.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
./scripts/fetch-model.sh
seconds="${1:-5}"
echo "## CUDA"
cargo run --release --locked -p bulkhead-embedder --features cuda --example throughput -- "$seconds" 1,8,32,128,256,512 cuda
echo "## CPU"
cargo run --release --locked -p bulkhead-embedder --example throughput -- "$seconds" 1,8,32,128,256,512
