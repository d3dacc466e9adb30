"""A real Bulkhead server for the Python tests: the binary built by the
Rust workspace (`$CARGO_TARGET_DIR/release/bulkhead`, or BULKHEAD_BIN), on
127.0.0.1:0 with a temporary data directory and its local embedder (the
model that `scripts/setup.sh` installs)."""

from __future__ import annotations

import os
import subprocess
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, List

import pytest

from bulkhead import AdminClient, TenantClient

ADMIN_TOKEN = "python-tests-admin-token-0123456789"
READY = "bulkhead::server: serving"


def _binary() -> Path:
    if os.environ.get("BULKHEAD_BIN"):
        return Path(os.environ["BULKHEAD_BIN"])
    target = os.environ.get("CARGO_TARGET_DIR") or str(Path.home() / ".cache/bulkhead/target")
    return Path(target) / "release" / "bulkhead"


@dataclass
class Server:
    addr: str
    log: List[str]


@contextmanager
def running_server(args: List[str]) -> Iterator[Server]:
    """`bulkhead serve` on 127.0.0.1:0 with `args`, until the block ends."""
    binary = _binary()
    if not binary.exists():
        pytest.fail(f"{binary} is missing: build it with `make test` or `cargo build --release --workspace`")
    env = dict(os.environ, BULKHEAD_ADMIN_TOKEN=ADMIN_TOKEN, RUST_LOG="info")
    for var in ("BULKHEAD_CONFIG", "BULKHEAD_EMBEDDERS", "BULKHEAD_NO_LOCAL_EMBEDDER"):
        env.pop(var, None)
    child = subprocess.Popen(
        [str(binary), "serve", "--listen", "127.0.0.1:0", *args],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    log: List[str] = []
    addr = None
    assert child.stderr is not None
    for line in child.stderr:
        log.append(line.rstrip())
        if READY in line and "addr=" in line:
            addr = line.split("addr=", 1)[1].split()[0]
            break
    if addr is None:
        child.kill()
        pytest.fail("the server exited before serving:\n" + "\n".join(log[-30:]))

    def drain() -> None:
        for line in child.stderr:  # type: ignore[union-attr]
            log.append(line.rstrip())

    threading.Thread(target=drain, daemon=True).start()
    try:
        yield Server(addr=addr, log=log)
    finally:
        child.terminate()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("bulkhead-data")
    with running_server(["--data-dir", str(data)]) as running:
        yield running


@pytest.fixture(scope="session")
def admin(server: Server) -> Iterator[AdminClient]:
    with AdminClient(server.addr, ADMIN_TOKEN) as client:
        yield client


def unique_name(prefix: str = "py") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


TenantFactory = Callable[..., TenantClient]


@pytest.fixture
def make_tenant(server: Server, admin: AdminClient) -> Iterator[TenantFactory]:
    """Creates tenants (and a token for each) that are dropped after the test."""
    made: List[tuple[str, TenantClient]] = []

    def make(dimension: int = 4, metric: str = "cosine", prefix: str = "py") -> TenantClient:
        name = unique_name(prefix)
        admin.create_tenant(name, dimension, metric=metric)
        client = TenantClient(server.addr, tenant=name, token=admin.issue_token(name))
        made.append((name, client))
        return client

    yield make
    for name, client in made:
        client.close()
        admin.drop_tenant(name)
