"""Python client for Bulkhead, the physically partitioned multi-tenant
vector database.

>>> from bulkhead import TenantClient, Point
>>> client = TenantClient("127.0.0.1:50051", tenant="acme", token="bht_...")

Vector stores for RAG pipelines: ``bulkhead.langchain.BulkheadVectorStore``
(``pip install bulkhead[langchain]``) and
``bulkhead.llama_index.BulkheadVectorStore`` (``bulkhead[llama-index]``).
"""

from bulkhead.client import (
    AccessLogEntry,
    AccessLogPage,
    AdminClient,
    Point,
    ScoredPoint,
    ScrollPage,
    TenantClient,
    TenantInfo,
    tls_credentials,
)
from bulkhead.errors import (
    AlreadyExists,
    BulkheadError,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)

__version__ = "0.1.0"

__all__ = [
    "AccessLogEntry",
    "AccessLogPage",
    "AdminClient",
    "AlreadyExists",
    "BulkheadError",
    "FailedPrecondition",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "Point",
    "ResourceExhausted",
    "ScoredPoint",
    "ScrollPage",
    "TenantClient",
    "TenantInfo",
    "Unauthenticated",
    "Unavailable",
    "tls_credentials",
]
