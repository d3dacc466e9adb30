"""Clients of a Bulkhead server.

:class:`TenantClient` is the data plane of one tenant: the tenant and its
token are given once, when the client is made, and every call carries both.
There is no call that takes another tenant, and no way to make one without
a tenant.

:class:`AdminClient` is the operators' plane (tenants and tokens), opened by
the admin token; applications do not need it.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Union

import grpc
from google.protobuf import json_format, struct_pb2

from bulkhead.errors import from_rpc_error
from bulkhead.filters import FilterLike, to_proto
from bulkhead.v1 import (
    admin_service_pb2,
    admin_service_pb2_grpc,
    points_service_pb2,
    points_service_pb2_grpc,
    tenant_pb2,
)

__all__ = [
    "AdminClient",
    "Point",
    "ScoredPoint",
    "ScrollPage",
    "TenantClient",
    "TenantInfo",
]

# The server's limits (src/engine/point.rs): one upsert holds at most
# 10,000 points; a message at most 64 MiB.
MAX_BATCH_POINTS = 10_000
_MAX_MESSAGE_BYTES = 64 * 1024 * 1024

Payload = Dict[str, Any]


@dataclass
class Point:
    """A point to write or one read back. ``vector`` may be empty when
    ``text`` is set: the server's embedder makes the vector."""

    id: str
    vector: List[float] = field(default_factory=list)
    payload: Payload = field(default_factory=dict)
    text: Optional[str] = None


@dataclass
class ScoredPoint:
    """A search hit. ``score`` follows the tenant's metric: cosine
    similarity and dot product (higher is closer), or Euclidean distance
    (lower is closer)."""

    id: str
    score: float
    payload: Payload = field(default_factory=dict)
    vector: List[float] = field(default_factory=list)
    text: Optional[str] = None


@dataclass
class ScrollPage:
    points: List[Point]
    #: Pass to the next ``scroll``; None on the last page.
    next_cursor: Optional[str]


@dataclass
class TenantInfo:
    name: str
    dimension: int
    metric: str
    trust_class: str
    points: int


def _target(addr: str) -> tuple[str, bool]:
    """``host:port`` and whether TLS is asked for, from an address with or
    without a scheme."""
    if addr.startswith("https://"):
        return addr[len("https://") :].rstrip("/"), True
    if addr.startswith("http://"):
        return addr[len("http://") :].rstrip("/"), False
    return addr, False


def _read(value: Union[str, bytes, "os.PathLike[str]", None]) -> Optional[bytes]:
    """PEM bytes as given, or read from a path."""
    if value is None or isinstance(value, bytes):
        return value
    with open(value, "rb") as f:
        return f.read()


def tls_credentials(
    ca_cert: Union[str, bytes, "os.PathLike[str]", None] = None,
    client_cert: Union[str, bytes, "os.PathLike[str]", None] = None,
    client_key: Union[str, bytes, "os.PathLike[str]", None] = None,
) -> grpc.ChannelCredentials:
    """TLS credentials: the CA bundle that signs the server's certificate
    (the system's roots when None) and, for a server that requires client
    certificates, this client's certificate and key. Each is PEM bytes or a
    path to a PEM file."""
    if (client_cert is None) != (client_key is None):
        raise ValueError("client_cert and client_key go together: give both or neither")
    return grpc.ssl_channel_credentials(
        root_certificates=_read(ca_cert),
        private_key=_read(client_key),
        certificate_chain=_read(client_cert),
    )


def _channel(
    addr: str, credentials: Optional[grpc.ChannelCredentials]
) -> grpc.Channel:
    if not addr:
        raise ValueError('addr is required, e.g. "127.0.0.1:50051"')
    target, tls = _target(addr)
    options = [
        ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
    ]
    if credentials is not None or tls:
        return grpc.secure_channel(
            target, credentials or grpc.ssl_channel_credentials(), options=options
        )
    return grpc.insecure_channel(target, options=options)


def _struct(payload: Optional[Mapping[str, Any]], where: str) -> Optional[struct_pb2.Struct]:
    if not payload:
        return None
    if not isinstance(payload, Mapping):
        raise ValueError(f"{where}: a payload is a dict, not {type(payload).__name__}")
    s = struct_pb2.Struct()
    try:
        s.update(payload)
    except (ValueError, TypeError) as e:
        raise ValueError(
            f"{where}: a payload holds JSON values (str, int, float, bool, None, list, dict): {e}"
        ) from None
    return s


def _payload(s: struct_pb2.Struct) -> Payload:
    return _integral(json_format.MessageToDict(s)) if s.fields else {}


def _integral(value: Any) -> Any:
    """Whole numbers back as ints: the wire's Struct carries every number
    as a double, and the server (like JSON) keeps 1 an integer."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


def _point_in(p: Union[Point, Mapping[str, Any]], index: int) -> points_service_pb2.Point:
    if isinstance(p, Mapping):
        unknown = set(p) - {"id", "vector", "payload", "text"}
        if unknown:
            raise ValueError(
                f"point {index}: unknown field(s) {sorted(unknown)}; a point has id, vector, payload and text"
            )
        p = Point(
            id=p.get("id", ""),
            vector=list(p.get("vector") or []),
            payload=dict(p.get("payload") or {}),
            text=p.get("text"),
        )
    if not isinstance(p.id, str) or not p.id:
        raise ValueError(f"point {index}: id must be a non-empty string")
    return points_service_pb2.Point(
        id=p.id,
        vector=[float(x) for x in p.vector],
        payload=_struct(p.payload, f"point {index}"),
        text=p.text or "",
    )


def _point_out(p: points_service_pb2.Point) -> Point:
    return Point(
        id=p.id,
        vector=list(p.vector),
        payload=_payload(p.payload),
        text=p.text or None,
    )


class _Connection:
    """One channel and the bearer token every call of a client sends."""

    __slots__ = ("_metadata", "_channel", "_timeout")

    def __init__(
        self,
        addr: str,
        token: str,
        timeout: Optional[float],
        credentials: Optional[grpc.ChannelCredentials],
        tls: Mapping[str, Any],
    ) -> None:
        if any(v is not None for v in tls.values()):
            if credentials is not None:
                raise ValueError("give credentials or ca_cert/client_cert/client_key, not both")
            if not addr.startswith("https://"):
                raise ValueError(f"{addr} is plaintext but TLS files are given: use https://")
            credentials = tls_credentials(**tls)
        self._metadata = (("authorization", f"Bearer {token.strip()}"),)
        self._timeout = timeout
        self._channel = _channel(addr, credentials)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _call(self, method: Any, request: Any) -> Any:
        try:
            return method(request, metadata=self._metadata, timeout=self._timeout)
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None


class TenantClient(_Connection):
    """The data plane of one tenant.

    >>> client = TenantClient("127.0.0.1:50051", tenant="acme", token="bht_...")
    >>> client.upsert([Point(id="a", vector=[0.1, 0.2, 0.3])])
    >>> client.search([0.1, 0.2, 0.3], k=5, filter={"lang": "en"})

    ``addr`` is ``host:port``, or ``https://host:port`` for TLS: then
    ``ca_cert`` is the CA bundle that signs the server's certificate (the
    system's roots by default) and ``client_cert`` and ``client_key`` the
    certificate a server that requires one is shown (PEM bytes or paths;
    or pass ready ``credentials``). ``timeout`` is the deadline of each
    call, in seconds.
    Errors are :class:`bulkhead.errors.BulkheadError` subclasses carrying
    the server's message.
    """

    __slots__ = ("_tenant", "_stub")

    def __init__(
        self,
        addr: str,
        tenant: str,
        token: str,
        *,
        timeout: Optional[float] = 30.0,
        credentials: Optional[grpc.ChannelCredentials] = None,
        ca_cert: Union[str, bytes, "os.PathLike[str]", None] = None,
        client_cert: Union[str, bytes, "os.PathLike[str]", None] = None,
        client_key: Union[str, bytes, "os.PathLike[str]", None] = None,
    ) -> None:
        if not isinstance(tenant, str) or not tenant:
            raise ValueError("tenant is required: the name of the tenant this token belongs to")
        if not isinstance(token, str) or not token.strip():
            raise ValueError("token is required: a tenant token issued by the admin")
        self._tenant = tenant
        tls = {"ca_cert": ca_cert, "client_cert": client_cert, "client_key": client_key}
        super().__init__(addr, token, timeout, credentials, tls)
        self._stub = points_service_pb2_grpc.PointsServiceStub(self._channel)

    @property
    def tenant(self) -> str:
        """The tenant every call of this client names (fixed)."""
        return self._tenant

    def __repr__(self) -> str:
        return f"TenantClient(tenant={self._tenant!r})"

    def upsert(
        self,
        points: Iterable[Union[Point, Mapping[str, Any]]],
        *,
        batch_size: int = 1_000,
    ) -> int:
        """Writes points (replacing any with the same id); returns how many.

        Each batch of ``batch_size`` (at most 10,000) is durable and atomic
        when the call for it returns; a failed batch writes nothing.
        """
        if not 1 <= batch_size <= MAX_BATCH_POINTS:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH_POINTS}")
        written = 0
        batch: List[points_service_pb2.Point] = []
        for i, p in enumerate(points):
            batch.append(_point_in(p, i))
            if len(batch) == batch_size:
                written += self._upsert(batch)
                batch = []
        if batch:
            written += self._upsert(batch)
        return written

    def _upsert(self, batch: List[points_service_pb2.Point]) -> int:
        request = points_service_pb2.UpsertRequest(tenant=self._tenant, points=batch)
        return self._call(self._stub.Upsert, request).upserted

    def upsert_texts(
        self,
        texts: Sequence[str],
        *,
        ids: Optional[Sequence[str]] = None,
        payloads: Optional[Sequence[Optional[Mapping[str, Any]]]] = None,
        batch_size: int = 256,
    ) -> List[str]:
        """Stores texts, embedded by the server's model for this tenant's
        trust class; returns their ids (new UUIDs where none are given)."""
        if ids is not None and len(ids) != len(texts):
            raise ValueError(f"{len(ids)} ids for {len(texts)} texts")
        if payloads is not None and len(payloads) != len(texts):
            raise ValueError(f"{len(payloads)} payloads for {len(texts)} texts")
        ids = list(ids) if ids is not None else [str(uuid.uuid4()) for _ in texts]
        points = [
            Point(id=i, text=t, payload=dict(payloads[n] or {}) if payloads else {})
            for n, (i, t) in enumerate(zip(ids, texts))
        ]
        self.upsert(points, batch_size=batch_size)
        return ids

    def get(
        self, ids: Sequence[str], *, with_payload: bool = True, with_vector: bool = False
    ) -> List[Point]:
        """The points among ``ids`` that exist (missing ids are skipped)."""
        request = points_service_pb2.GetRequest(
            tenant=self._tenant,
            ids=list(ids),
            with_payload=with_payload,
            with_vector=with_vector,
        )
        return [_point_out(p) for p in self._call(self._stub.Get, request).points]

    def delete(
        self, ids: Optional[Sequence[str]] = None, *, filter: FilterLike = None
    ) -> int:
        """Deletes points by id or by filter; returns how many existed."""
        if (ids is None) == (filter is None):
            raise ValueError("delete takes either ids or a filter")
        if ids is not None:
            request = points_service_pb2.DeleteRequest(
                tenant=self._tenant, ids=points_service_pb2.PointIds(ids=list(ids))
            )
        else:
            wire = to_proto(filter)
            if wire is None:
                raise ValueError("delete by filter needs a non-empty filter")
            request = points_service_pb2.DeleteRequest(tenant=self._tenant, filter=wire)
        return self._call(self._stub.Delete, request).deleted

    def count(self, filter: FilterLike = None) -> int:
        request = points_service_pb2.CountRequest(tenant=self._tenant, filter=to_proto(filter))
        return self._call(self._stub.Count, request).count

    def scroll(
        self,
        *,
        limit: int = 100,
        cursor: Optional[str] = None,
        filter: FilterLike = None,
        with_payload: bool = True,
        with_vector: bool = False,
    ) -> ScrollPage:
        """One page of points in id order, from ``cursor`` on."""
        request = points_service_pb2.ScrollRequest(
            tenant=self._tenant,
            cursor=cursor or "",
            limit=limit,
            filter=to_proto(filter),
            with_payload=with_payload,
            with_vector=with_vector,
        )
        answer = self._call(self._stub.Scroll, request)
        return ScrollPage(
            points=[_point_out(p) for p in answer.points],
            next_cursor=answer.next_cursor or None,
        )

    def scroll_all(
        self,
        *,
        filter: FilterLike = None,
        page_size: int = 256,
        with_payload: bool = True,
        with_vector: bool = False,
    ) -> Iterator[Point]:
        """Every point (matching ``filter``), page by page."""
        cursor: Optional[str] = None
        while True:
            page = self.scroll(
                limit=page_size,
                cursor=cursor,
                filter=filter,
                with_payload=with_payload,
                with_vector=with_vector,
            )
            yield from page.points
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def search(
        self,
        vector: Optional[Sequence[float]] = None,
        *,
        text: Optional[str] = None,
        k: int = 10,
        ef: Optional[int] = None,
        filter: FilterLike = None,
        with_payload: bool = True,
        with_vector: bool = False,
    ) -> List[ScoredPoint]:
        """The ``k`` nearest points to ``vector``, or to ``text`` embedded by
        the server; closest first."""
        if (vector is None) == (text is None):
            raise ValueError("search takes either a vector or a text")
        request = points_service_pb2.SearchRequest(
            tenant=self._tenant,
            vector=[float(x) for x in vector] if vector is not None else [],
            text=text or "",
            k=k,
            ef=ef or 0,
            filter=to_proto(filter),
            with_payload=with_payload,
            with_vector=with_vector,
        )
        return [
            ScoredPoint(
                id=p.id,
                score=p.score,
                payload=_payload(p.payload),
                vector=list(p.vector),
                text=p.text or None,
            )
            for p in self._call(self._stub.Search, request).points
        ]

    def lineage(self) -> List[Dict[str, Any]]:
        """The registered models whose lineage holds this tenant's data
        (name, digest, registered_unix_ms); nothing about other tenants."""
        request = points_service_pb2.LineageRequest(tenant=self._tenant)
        return [
            {"name": m.name, "digest": m.digest, "registered_unix_ms": m.registered_unix_ms}
            for m in self._call(self._stub.Lineage, request).models
        ]

    def access_log(
        self, cursor: Optional[str] = None, since_unix_ms: int = 0, limit: int = 0
    ) -> AccessLogPage:
        """A page of this tenant's access log: its data-plane calls by token,
        RPC and outcome, a minute at a time, oldest first (never their
        content). Pass the page's ``next_cursor`` for the next one; a page
        shorter than ``limit`` is the end for now."""
        request = points_service_pb2.AccessLogRequest(
            tenant=self._tenant, cursor=cursor or "", since_unix_ms=since_unix_ms, limit=limit
        )
        return _access_page(self._call(self._stub.AccessLog, request))

    def embed(self, texts: Sequence[str]) -> List[List[float]]:
        """Vectors for ``texts`` from the server's model for this tenant."""
        request = points_service_pb2.PointsServiceEmbedRequest(
            tenant=self._tenant, texts=list(texts)
        )
        return [list(v.values) for v in self._call(self._stub.Embed, request).vectors]


_METRICS = {
    "cosine": tenant_pb2.METRIC_COSINE,
    "l2": tenant_pb2.METRIC_L2,
    "dot": tenant_pb2.METRIC_DOT,
}


def _info(t: tenant_pb2.TenantInfo) -> TenantInfo:
    metric = {v: k for k, v in _METRICS.items()}.get(t.spec.metric, "unspecified")
    return TenantInfo(
        name=t.name,
        dimension=t.spec.dimension,
        metric=metric,
        trust_class=t.spec.trust_class,
        points=t.points,
    )


class AdminClient(_Connection):
    """The admin plane: create and drop tenants, issue and revoke tokens.
    ``addr`` and the TLS arguments as for :class:`TenantClient`."""

    def __init__(
        self,
        addr: str,
        admin_token: str,
        *,
        timeout: Optional[float] = 60.0,
        credentials: Optional[grpc.ChannelCredentials] = None,
        ca_cert: Union[str, bytes, "os.PathLike[str]", None] = None,
        client_cert: Union[str, bytes, "os.PathLike[str]", None] = None,
        client_key: Union[str, bytes, "os.PathLike[str]", None] = None,
    ) -> None:
        if not isinstance(admin_token, str) or not admin_token.strip():
            raise ValueError("admin_token is required")
        tls = {"ca_cert": ca_cert, "client_cert": client_cert, "client_key": client_key}
        super().__init__(addr, admin_token, timeout, credentials, tls)
        self._stub = admin_service_pb2_grpc.AdminServiceStub(self._channel)

    def create_tenant(
        self,
        name: str,
        dimension: int,
        *,
        metric: str = "cosine",
        trust_class: str = "",
        m: int = 0,
        ef_construction: int = 0,
    ) -> TenantInfo:
        if metric not in _METRICS:
            raise ValueError(f"metric must be one of {sorted(_METRICS)}, not {metric!r}")
        spec = tenant_pb2.TenantSpec(
            dimension=dimension,
            metric=_METRICS[metric],
            trust_class=trust_class,
            index=tenant_pb2.IndexParams(m=m, ef_construction=ef_construction),
        )
        request = admin_service_pb2.CreateTenantRequest(name=name, spec=spec)
        return _info(self._call(self._stub.CreateTenant, request).tenant)

    def drop_tenant(self, name: str) -> None:
        self._call(self._stub.DropTenant, admin_service_pb2.DropTenantRequest(name=name))

    def describe_tenant(self, name: str) -> TenantInfo:
        request = admin_service_pb2.DescribeTenantRequest(name=name)
        return _info(self._call(self._stub.DescribeTenant, request).tenant)

    def list_tenants(self) -> List[TenantInfo]:
        answer = self._call(self._stub.ListTenants, admin_service_pb2.ListTenantsRequest())
        return [_info(t) for t in answer.tenants]

    def issue_token(self, tenant: str) -> str:
        """A new token for ``tenant``; the secret is shown only now."""
        request = admin_service_pb2.IssueTokenRequest(tenant=tenant)
        return self._call(self._stub.IssueToken, request).token


    def access_log(
        self, name: str, cursor: Optional[str] = None, since_unix_ms: int = 0, limit: int = 0
    ) -> AccessLogPage:
        """A page of a tenant's access log, as the tenant reads it."""
        request = admin_service_pb2.TenantAccessLogRequest(
            name=name, cursor=cursor or "", since_unix_ms=since_unix_ms, limit=limit
        )
        return _access_page(self._call(self._stub.TenantAccessLog, request))


@dataclass(frozen=True)
class AccessLogEntry:
    """Calls of one token to one RPC with one outcome within a minute."""

    first_unix_ms: int
    last_unix_ms: int
    token_id: str
    rpc: str
    code: str
    calls: int
    items: int


@dataclass(frozen=True)
class AccessLogPage:
    entries: List[AccessLogEntry]
    #: After the last entry (None for an empty page): pass it to read on,
    #: now for the rest or later for what came since.
    next_cursor: Optional[str]


def _access_page(answer: Any) -> AccessLogPage:
    return AccessLogPage(
        entries=[
            AccessLogEntry(
                first_unix_ms=e.first_unix_ms,
                last_unix_ms=e.last_unix_ms,
                token_id=e.token_id,
                rpc=e.rpc,
                code=e.code,
                calls=e.calls,
                items=e.items,
            )
            for e in answer.entries
        ],
        next_cursor=answer.next_cursor or None,
    )
