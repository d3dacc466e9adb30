"""The SDK over TLS and mutual TLS against the real binary: certificates
made at test time (trustme), the server started with --tls-cert, --tls-key
and --tls-client-ca."""

from __future__ import annotations

import os
import subprocess
import threading
import uuid
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest
import trustme

from bulkhead import AdminClient, Point, TenantClient, Unavailable
from conftest import ADMIN_TOKEN, READY, _binary


def _write(path: Path, data: bytes, mode: int = 0o644) -> Path:
    path.write_bytes(data)
    path.chmod(mode)
    return path


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[str, trustme.CA, trustme.CA, Path]]:
    dir = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    clients = trustme.CA()  # signs client certificates
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    cert = _write(dir / "server.pem", b"".join(b.bytes() for b in leaf.cert_chain_pems))
    key = _write(dir / "server.key", leaf.private_key_pem.bytes(), 0o600)
    client_ca = _write(dir / "clients-ca.pem", clients.cert_pem.bytes())
    env = dict(os.environ, BULKHEAD_ADMIN_TOKEN=ADMIN_TOKEN, RUST_LOG="info")
    child = subprocess.Popen(
        [
            str(_binary()), "serve", "--listen", "127.0.0.1:0",
            "--data-dir", str(dir / "data"), "--no-local-embedder",
            "--tls-cert", str(cert), "--tls-key", str(key), "--tls-client-ca", str(client_ca),
        ],
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
        pytest.fail("the TLS server exited before serving:\n" + "\n".join(log[-30:]))
    threading.Thread(target=lambda: [log.append(l) for l in child.stderr], daemon=True).start()
    try:
        yield addr, ca, clients, dir
    finally:
        child.terminate()
        child.wait(timeout=30)


def test_round_trip_over_mutual_tls(tls_server) -> None:
    addr, ca, clients, dir = tls_server
    identity = clients.issue_cert("python-sdk")
    cert = _write(dir / "client.pem", b"".join(b.bytes() for b in identity.cert_chain_pems))
    key = _write(dir / "client.key", identity.private_key_pem.bytes(), 0o600)
    tls = {"ca_cert": ca.cert_pem.bytes(), "client_cert": str(cert), "client_key": key}
    name = "tls-" + uuid.uuid4().hex[:8]
    with AdminClient(f"https://{addr}", ADMIN_TOKEN, **tls) as admin:
        admin.create_tenant(name, dimension=3, metric="cosine")
        token = admin.issue_token(name)
    with TenantClient(f"https://{addr}", name, token, **tls) as client:
        client.upsert([Point(id="a", vector=[0.1, 0.2, 0.3])])
        assert [hit.id for hit in client.search([0.1, 0.2, 0.3], k=1)] == ["a"]


def test_a_client_without_a_certificate_or_trust_is_refused(tls_server) -> None:
    addr, ca, clients, dir = tls_server
    # No client certificate: the server requires one.
    with AdminClient(f"https://{addr}", ADMIN_TOKEN, ca_cert=ca.cert_pem.bytes(), timeout=10) as admin:
        with pytest.raises(Unavailable):
            admin.list_tenants()
    # A certificate of another CA.
    stranger = trustme.CA().issue_cert("stranger")
    with AdminClient(
        f"https://{addr}", ADMIN_TOKEN, timeout=10,
        ca_cert=ca.cert_pem.bytes(),
        client_cert=b"".join(b.bytes() for b in stranger.cert_chain_pems),
        client_key=stranger.private_key_pem.bytes(),
    ) as admin:
        with pytest.raises(Unavailable):
            admin.list_tenants()
    # Plaintext to a TLS server.
    with AdminClient(addr, ADMIN_TOKEN, timeout=10) as admin:
        with pytest.raises(Unavailable):
            admin.list_tenants()


def test_tls_arguments_with_a_plaintext_address_are_refused() -> None:
    with pytest.raises(ValueError, match="https://"):
        AdminClient("127.0.0.1:1", ADMIN_TOKEN, ca_cert=b"-----BEGIN CERTIFICATE-----")
