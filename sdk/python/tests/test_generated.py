"""The committed stubs in src/bulkhead/v1 are what grpcio-tools makes of
proto/ today: a proto change without `python generate.py` fails here."""

from __future__ import annotations

import importlib.util
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def test_generated_code_matches_the_protos(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("generate", HERE / "generate.py")
    assert spec and spec.loader
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    generate.generate(tmp_path)

    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    committed_dir = HERE / "src"
    committed = sorted(
        p.relative_to(committed_dir)
        for p in (committed_dir / "bulkhead" / "v1").glob("*_pb2*")
    )
    assert fresh == committed, "run `python generate.py` in sdk/python"
    for rel in fresh:
        assert (tmp_path / rel).read_bytes() == (committed_dir / rel).read_bytes(), (
            f"{rel} differs from the protos: run `python generate.py` in sdk/python"
        )
