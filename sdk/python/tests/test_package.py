"""`pip install` gets a complete package: the wheel holds the client, the
generated stubs, the type marker and both vector stores."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def test_the_wheel_holds_the_whole_package(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--quiet", "-w", str(tmp_path), str(HERE)],
        check=True,
    )
    (wheel,) = tmp_path.glob("bulkhead-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in [
        "bulkhead/__init__.py",
        "bulkhead/client.py",
        "bulkhead/errors.py",
        "bulkhead/filters.py",
        "bulkhead/langchain.py",
        "bulkhead/llama_index.py",
        "bulkhead/py.typed",
        "bulkhead/v1/points_service_pb2.py",
        "bulkhead/v1/points_service_pb2.pyi",
        "bulkhead/v1/points_service_pb2_grpc.py",
        "bulkhead/v1/admin_service_pb2_grpc.py",
    ]:
        assert expected in names, expected
    assert not any("embedder_service" in n for n in names)
    metadata = next(n for n in names if n.endswith("METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "Requires-Dist: grpcio>=1.85.1" in text
    assert "Provides-Extra: langchain" in text
