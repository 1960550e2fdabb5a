"""Typed exceptions for Quiver calls.

Every failed call raises a subclass of :class:`QuiverError` chosen by the gRPC status code the
server answered with, so callers can write ``except quiver.NotFound:`` instead of inspecting
``grpc.RpcError`` objects. Checks the client makes before sending anything raise the same
classes (a malformed array raises :class:`InvalidArgument`, as the server would).
"""

from __future__ import annotations

from typing import Optional

import grpc

__all__ = [
    "QuiverError",
    "Cancelled",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Unavailable",
    "Unauthenticated",
    "Internal",
    "LoadFailed",
    "from_rpc_error",
]


class QuiverError(Exception):
    """Base class of every error the Quiver client raises.

    Attributes:
        code: the gRPC status code (``grpc.StatusCode``), or ``None`` for errors that did not
            come from a call.
        details: the server's message, meant for a person.
    """

    #: The status code this class stands for (``None`` on the base class).
    status_code: Optional[grpc.StatusCode] = None

    def __init__(self, details: str, code: Optional[grpc.StatusCode] = None):
        super().__init__(details)
        self.details = details
        self.code = code if code is not None else self.status_code

    def __str__(self) -> str:
        name = self.code.name if self.code is not None else "ERROR"
        return f"{name}: {self.details}"


class Cancelled(QuiverError):
    """The call was cancelled (CANCELLED)."""

    status_code = grpc.StatusCode.CANCELLED


class InvalidArgument(QuiverError, ValueError):
    """The request is malformed: wrong dimension, NaN, k <= 0, nprobe > nlist, ... (INVALID_ARGUMENT)."""

    status_code = grpc.StatusCode.INVALID_ARGUMENT


class DeadlineExceeded(QuiverError, TimeoutError):
    """The call did not finish before its deadline (DEADLINE_EXCEEDED)."""

    status_code = grpc.StatusCode.DEADLINE_EXCEEDED


class NotFound(QuiverError, LookupError):
    """The collection or load job does not exist (NOT_FOUND)."""

    status_code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(QuiverError):
    """A collection with that name exists already (ALREADY_EXISTS)."""

    status_code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDenied(QuiverError, PermissionError):
    """The caller's token lacks the role this call needs (PERMISSION_DENIED)."""

    status_code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(QuiverError):
    """A message or memory limit was hit (RESOURCE_EXHAUSTED)."""

    status_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(QuiverError):
    """The collection is not in a state that allows the call, e.g. not trained yet (FAILED_PRECONDITION)."""

    status_code = grpc.StatusCode.FAILED_PRECONDITION


class Unavailable(QuiverError, ConnectionError):
    """The coordinator (or, with full coverage required, a worker) cannot be reached (UNAVAILABLE)."""

    status_code = grpc.StatusCode.UNAVAILABLE


class Unauthenticated(QuiverError):
    """No token, or an unknown one, was sent (UNAUTHENTICATED)."""

    status_code = grpc.StatusCode.UNAUTHENTICATED


class Internal(QuiverError):
    """The server failed in a way that is not the caller's fault (INTERNAL)."""

    status_code = grpc.StatusCode.INTERNAL


class LoadFailed(QuiverError):
    """A server-side load job (``Client.load_files``) ended in state FAILED.

    Attributes:
        status: the job's last :class:`quiver.LoadStatus`; rows already stored remain.
    """

    def __init__(self, details: str, status):
        super().__init__(details)
        self.status = status


_BY_CODE = {
    cls.status_code: cls
    for cls in (
        Cancelled,
        InvalidArgument,
        DeadlineExceeded,
        NotFound,
        AlreadyExists,
        PermissionDenied,
        ResourceExhausted,
        FailedPrecondition,
        Unavailable,
        Unauthenticated,
        Internal,
    )
}


def from_status(code: grpc.StatusCode, details: str) -> QuiverError:
    """The exception for a status code and message (the base class for codes without one)."""
    cls = _BY_CODE.get(code, QuiverError)
    return cls(details or code.name, code)


def from_rpc_error(error: grpc.RpcError) -> QuiverError:
    """Translates a ``grpc.RpcError`` raised by a stub into the matching :class:`QuiverError`."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = error.details() if hasattr(error, "details") else str(error)
    return from_status(code, details or "")


def from_status_number(number: int, details: str) -> QuiverError:
    """The exception for a numeric status code as carried in a stream's ``CallError``."""
    for code in grpc.StatusCode:
        if code.value[0] == number:
            return from_status(code, details)
    return QuiverError(f"{details} (status {number})")
