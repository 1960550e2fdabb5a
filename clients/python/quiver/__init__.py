"""Python client for Quiver, the distributed vector search cluster.

Numpy in and out over the coordinator's gRPC API::

    import quiver
    c = quiver.Client("127.0.0.1:7700")
    c.create("docs", dimension=384, metric="cosine")
    ids = c.load("docs", vectors, progress=True)
    ids, scores = c.search("docs", queries, k=10)

Failed calls raise subclasses of :class:`QuiverError` named for their gRPC status code.
The generated protocol stubs live in ``quiver._proto`` (``quiver._proto.quiver.v1``).
"""

from .client import (
    MAX_MESSAGE_BYTES,
    Client,
    ClusterStatus,
    CollectionInfo,
    LoadStatus,
    SearchResult,
    ShardAssignment,
    TrainResult,
    WorkerInfo,
)
from .errors import (
    AlreadyExists,
    Cancelled,
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    LoadFailed,
    NotFound,
    PermissionDenied,
    QuiverError,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)

__version__ = "0.1.0"

__all__ = [
    "Client",
    "ClusterStatus",
    "CollectionInfo",
    "LoadStatus",
    "SearchResult",
    "ShardAssignment",
    "TrainResult",
    "WorkerInfo",
    "MAX_MESSAGE_BYTES",
    "QuiverError",
    "AlreadyExists",
    "Cancelled",
    "DeadlineExceeded",
    "FailedPrecondition",
    "Internal",
    "InvalidArgument",
    "LoadFailed",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
]
