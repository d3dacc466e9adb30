"""The SDK over TLS and mutual TLS against the real binary: certificates
made at test time (trustme), the server started with --tls-cert, --tls-key
and --tls-client-ca."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Iterator, Tuple

import pytest
import trustme

from bulkhead import AdminClient, Point, TenantClient, Unavailable
from conftest import ADMIN_TOKEN, running_server


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
    args = [
        "--data-dir", str(dir / "data"), "--no-local-embedder",
        "--tls-cert", str(cert), "--tls-key", str(key), "--tls-client-ca", str(client_ca),
    ]
    with running_server(args) as running:
        yield running.addr, ca, clients, dir


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
