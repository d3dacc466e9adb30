"""One exception per gRPC status code, each carrying the server's message.

Every error a call raises is a :class:`BulkheadError`; catch a subclass to
handle one case, e.g. :class:`InvalidArgument` (fix the request) or
:class:`ResourceExhausted` (a quota: back off).
"""

from __future__ import annotations

from typing import Dict, Type

import grpc

__all__ = [
    "AlreadyExists",
    "BulkheadError",
    "Cancelled",
    "DeadlineExceeded",
    "FailedPrecondition",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "from_rpc_error",
]


class BulkheadError(Exception):
    """A call the server (or the channel) refused.

    ``code`` is the :class:`grpc.StatusCode`, ``message`` the server's text
    (it says what to fix).
    """

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


class InvalidArgument(BulkheadError):
    """The request is malformed; the message says what to fix."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(BulkheadError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(BulkheadError):
    code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDenied(BulkheadError):
    """The token is not valid for this tenant (or for the admin plane)."""

    code = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(BulkheadError):
    """No token, or one the server does not know."""

    code = grpc.StatusCode.UNAUTHENTICATED


class ResourceExhausted(BulkheadError):
    """A quota of the tenant was reached (points, payload bytes, rate)."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(BulkheadError):
    """The tenant's state refuses the call, e.g. no embedder for texts."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class Unavailable(BulkheadError):
    """The server or its storage is unavailable; retrying may succeed."""

    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(BulkheadError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Cancelled(BulkheadError):
    code = grpc.StatusCode.CANCELLED


class Unimplemented(BulkheadError):
    code = grpc.StatusCode.UNIMPLEMENTED


class Internal(BulkheadError):
    code = grpc.StatusCode.INTERNAL


_BY_CODE: Dict[grpc.StatusCode, Type[BulkheadError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        PermissionDenied,
        Unauthenticated,
        ResourceExhausted,
        FailedPrecondition,
        Unavailable,
        DeadlineExceeded,
        Cancelled,
        Unimplemented,
        Internal,
    )
}


def from_rpc_error(error: grpc.RpcError) -> BulkheadError:
    """The exception for a failed call, with the server's message."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = error.details() if hasattr(error, "details") else None
    message = details or str(error)
    cls = _BY_CODE.get(code, BulkheadError)
    return cls(message, code)
