"""Regenerates src/bulkhead/v1 from ../../proto with grpcio-tools.

    python generate.py [OUT_DIR]

tests/test_generated.py runs this into a temporary folder and fails when
the committed files differ, so a proto change without regenerating is
caught by the test suite.
"""

from __future__ import annotations

import sys
from pathlib import Path

from grpc_tools import protoc

HERE = Path(__file__).resolve().parent
PROTO_ROOT = HERE.parent.parent / "proto"
# The client-facing protos; embedder_service.proto is the server's private
# link to its sidecar.
PROTOS = ["filter.proto", "tenant.proto", "points_service.proto", "admin_service.proto"]


def generate(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    include = Path(protoc.__file__).resolve().parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
    ] + [f"bulkhead/v1/{p}" for p in PROTOS]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "src")
