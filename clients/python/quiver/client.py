"""The Quiver client: collections, training, loading and search over gRPC, numpy in and out.

>>> import numpy as np, quiver
>>> c = quiver.Client("127.0.0.1:7700")
>>> c.create("docs", dimension=384, metric="cosine")
>>> ids = c.load("docs", vectors)                 # float32 or float16, (n, 384)
>>> ids, scores = c.search("docs", queries, k=10)  # (q, 10) int64 and float32
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Iterator, List, Optional, Sequence, Tuple, Union

import grpc
import numpy as np

from . import _arrays
from ._proto.quiver.v1 import common_pb2, coordinator_pb2, coordinator_pb2_grpc
from .errors import InvalidArgument, LoadFailed, QuiverError, from_rpc_error, from_status

__all__ = [
    "Client",
    "CollectionInfo",
    "TrainResult",
    "LoadStatus",
    "SearchResult",
    "WorkerInfo",
    "ShardAssignment",
    "ClusterStatus",
    "MAX_MESSAGE_BYTES",
]

#: Largest gRPC message the client sends or accepts (the coordinator accepts the same).
MAX_MESSAGE_BYTES = 256 * 1024 * 1024
#: Bytes of vectors per streamed Load message (the protocol recommends 1-4 MiB).
LOAD_BATCH_BYTES = 2 * 1024 * 1024
#: Upper bound on the bytes of one Search request or answer; larger batches are split.
SEARCH_CHUNK_BYTES = 16 * 1024 * 1024

_METRICS = {
    "ip": common_pb2.METRIC_INNER_PRODUCT,
    "inner_product": common_pb2.METRIC_INNER_PRODUCT,
    "dot": common_pb2.METRIC_INNER_PRODUCT,
    "l2": common_pb2.METRIC_L2,
    "euclidean": common_pb2.METRIC_L2,
    "cosine": common_pb2.METRIC_COSINE,
    "cos": common_pb2.METRIC_COSINE,
}
_METRIC_NAMES = {
    common_pb2.METRIC_INNER_PRODUCT: "ip",
    common_pb2.METRIC_L2: "l2",
    common_pb2.METRIC_COSINE: "cosine",
}


def _enum_name(enum, value: int, prefix: str) -> str:
    """'READY' for COLLECTION_STATE_READY and the like; the number when the value is unknown."""
    try:
        return enum.Name(value)[len(prefix):]
    except ValueError:
        return str(value)


# ---- Result types -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CollectionInfo:
    """One collection as the coordinator sees it.

    Attributes:
        name, dimension: as created.
        metric: ``"ip"``, ``"l2"`` or ``"cosine"``.
        state: ``"CREATED"``, ``"AWAITING_FIRST_LOAD"``, ``"TRAINING"``, ``"READY"`` or ``"FAILED"``.
        nlist: lists of the current model (the requested value, 0 = automatic, before training).
        raw: raw vectors kept for re-ranking: ``"float32"``, ``"float16"`` or ``"none"``;
            ``"auto"`` until training chooses for a collection created without a precision.
        replication: workers holding each list.
        vector_count: vectors stored, counted once (not per replica or SOAR copy).
        bytes_used: bytes over all workers and replicas.
        model_version, shard_map_version: 0 until trained and placed.
        error: why the collection FAILED, else empty.
        recall_target: recall@10 a search without ``nprobe``/``reorder_k``/``recall`` aims for.
        search_defaults: what such searches use, per calibrated recall target (ascending): dicts
            of ``recall_target``, ``nprobe``, ``reorder_k``, ``sample_recall``, ``reached``;
            empty before training.
        proto: the ``quiver.v1.CollectionInfo`` message itself.
    """

    name: str
    dimension: int
    metric: str
    state: str
    nlist: int
    raw: str
    replication: int
    vector_count: int
    bytes_used: int
    model_version: int
    shard_map_version: int
    error: str
    recall_target: float
    search_defaults: tuple
    proto: common_pb2.CollectionInfo = field(repr=False, compare=False)

    @classmethod
    def from_proto(cls, info: common_pb2.CollectionInfo) -> "CollectionInfo":
        """Converts the protocol message."""
        config = info.config
        if not config.store_raw_vectors:
            raw = "none"
        elif config.raw_vector_precision == common_pb2.VECTOR_PRECISION_FLOAT16:
            raw = "float16"
        elif config.raw_vector_precision == common_pb2.VECTOR_PRECISION_FLOAT32:
            raw = "float32"
        else:
            raw = "auto"
        return cls(
            name=config.name,
            dimension=config.dimension,
            metric=_METRIC_NAMES.get(config.metric, str(config.metric)),
            state=_enum_name(common_pb2.CollectionState, info.state, "COLLECTION_STATE_"),
            nlist=info.nlist or config.nlist,
            raw=raw,
            replication=max(1, config.replication_factor),
            vector_count=info.vector_count,
            bytes_used=info.bytes_used,
            model_version=info.model_version,
            shard_map_version=info.shard_map_version,
            error=info.error,
            recall_target=round(float(config.recall_target), 4),
            search_defaults=tuple(
                {
                    "recall_target": round(float(level.recall_target), 4),
                    "nprobe": level.nprobe,
                    "reorder_k": level.reorder_k,
                    "sample_recall": round(float(level.sample_recall), 4),
                    "reached": level.reached,
                }
                for level in info.search_defaults
            ),
            proto=info,
        )


@dataclass(frozen=True)
class TrainResult:
    """The outcome of :meth:`Client.train`.

    Attributes:
        model_version: version of the new model (0 when training waits for the first load).
        nlist: lists of the new model (0 when deferred).
        training_rows: rows trained on (0 when deferred).
        state: the collection's state afterwards (``"READY"`` or ``"AWAITING_FIRST_LOAD"``).
    """

    model_version: int
    nlist: int
    training_rows: int
    state: str


@dataclass(frozen=True)
class LoadStatus:
    """Progress of a server-side load job (:meth:`Client.load_files`).

    Attributes:
        job_id, collection: the job and its target.
        state: ``"PENDING"``, ``"TRAINING"``, ``"RUNNING"``, ``"SUCCEEDED"`` or ``"FAILED"``.
        rows_done, rows_total: rows durably stored / to store (0 = not known yet).
        rows_per_second, eta_seconds: recent throughput and estimated time left (< 0 = unknown).
        files_done, files_total: files fully processed / matched.
        error: why the job FAILED, else empty.
    """

    job_id: str
    collection: str
    state: str
    rows_done: int
    rows_total: int
    rows_per_second: float
    eta_seconds: float
    files_done: int
    files_total: int
    model_version: int
    error: str

    @property
    def finished(self) -> bool:
        """Whether the job has ended (succeeded or failed)."""
        return self.state in ("SUCCEEDED", "FAILED")

    @classmethod
    def from_proto(cls, status: coordinator_pb2.LoadStatusResponse) -> "LoadStatus":
        """Converts the protocol message."""
        return cls(
            job_id=status.load_job_id,
            collection=status.collection,
            state=_enum_name(coordinator_pb2.LoadState, status.state, "LOAD_STATE_"),
            rows_done=status.rows_done,
            rows_total=status.rows_total,
            rows_per_second=status.rows_per_second,
            eta_seconds=status.eta_seconds,
            files_done=status.files_done,
            files_total=status.files_total,
            model_version=status.model_version,
            error=status.error,
        )


class SearchResult(tuple):
    """Nearest neighbours of a batch of queries; unpacks as ``ids, scores``.

    Attributes:
        ids: int64, shape ``(queries, k)`` (``(k,)`` for a single 1-D query), best first;
            -1 marks an empty slot (fewer than k vectors reachable).
        scores: float32, same shape: inner product / cosine similarity (higher is better) or
            squared L2 distance (lower is better); empty slots hold the worst possible score.
        coverage: probed lists that answered / probed lists over the batch (1.0 = complete).
        query_coverage: float32 per query (same leading shape as ``ids``), each query's coverage.
        lists_probed, lists_answered, workers_queried, workers_answered: the raw counts behind it.
    """

    ids: np.ndarray
    scores: np.ndarray
    coverage: float
    query_coverage: np.ndarray
    lists_probed: int
    lists_answered: int
    workers_queried: int
    workers_answered: int

    def __new__(cls, ids, scores, query_coverage, lists_probed, lists_answered, workers_queried, workers_answered):
        result = super().__new__(cls, (ids, scores))
        result.ids = ids
        result.scores = scores
        result.query_coverage = query_coverage
        result.lists_probed = lists_probed
        result.lists_answered = lists_answered
        result.workers_queried = workers_queried
        result.workers_answered = workers_answered
        result.coverage = 1.0 if lists_probed == 0 else lists_answered / lists_probed
        return result

    def __repr__(self) -> str:
        return f"SearchResult(shape={self.ids.shape}, coverage={self.coverage:.3f})"


@dataclass(frozen=True)
class WorkerInfo:
    """One worker as the coordinator sees it (``health``: HEALTHY, SUSPECT, DOWN or DRAINING)."""

    worker_id: str
    address: str
    health: str
    lists_owned: int
    vectors: int
    bytes: int
    queries_served: int
    last_seen_unix_ms: int


@dataclass(frozen=True)
class ShardAssignment:
    """The lists one worker owns in one collection's shard map."""

    collection: str
    worker_id: str
    list_ids: np.ndarray


@dataclass(frozen=True)
class ClusterStatus:
    """Workers, collections and shard maps (:meth:`Client.status`); ``proto`` is the raw answer."""

    workers: List[WorkerInfo]
    collections: List[CollectionInfo]
    assignments: List[ShardAssignment]
    proto: coordinator_pb2.ClusterStatusResponse = field(repr=False, compare=False)


# ---- The client -------------------------------------------------------------------------------

ProgressArgument = Union[bool, Callable[[int, int], None]]


class Client:
    """A connection to a Quiver coordinator.

    Args:
        address: ``"host:port"`` of the coordinator, or several comma-separated (a leader and
            its standbys over etcd: searches go to any, changes reach the leader); default
            ``$QUIVER_COORDINATOR``, then ``127.0.0.1:7700``.
        token: bearer token sent as ``authorization: Bearer <token>`` on every call; default
            ``$QUIVER_TOKEN`` (none when unset).
        root_certificates: PEM bytes, or the path of a PEM file, of the CA that signed the
            coordinator's certificate; given, the channel uses TLS.
        certificate_chain, private_key: PEM bytes or paths of a client certificate and key,
            for coordinators that require mutual TLS.
        timeout: deadline in seconds of each call (searches, status, ...).
        load_timeout: deadline in seconds of one streamed :meth:`load` call.
        server_name: overrides the host name checked against the server's certificate.

    The client is thread-safe (it wraps one ``grpc.Channel``); close it with :meth:`close` or
    use it as a context manager.
    """

    def __init__(
        self,
        address: Optional[str] = None,
        *,
        token: Optional[str] = None,
        root_certificates: Union[bytes, str, os.PathLike, None] = None,
        certificate_chain: Union[bytes, str, os.PathLike, None] = None,
        private_key: Union[bytes, str, os.PathLike, None] = None,
        timeout: float = 60.0,
        load_timeout: float = 3600.0,
        server_name: Optional[str] = None,
    ):
        self.address = address or os.environ.get("QUIVER_COORDINATOR") or "127.0.0.1:7700"
        if ":" not in self.address:
            raise InvalidArgument(f"coordinator address must be HOST:PORT, got {self.address!r}")
        if timeout <= 0 or load_timeout <= 0:
            raise InvalidArgument("timeouts must be positive")
        self.timeout = float(timeout)
        self.load_timeout = float(load_timeout)
        token = token if token is not None else os.environ.get("QUIVER_TOKEN") or None
        self._metadata: Tuple[Tuple[str, str], ...] = (("authorization", f"Bearer {token}"),) if token else ()
        options = [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ]
        if server_name:
            options.append(("grpc.ssl_target_name_override", server_name))
        target = self.address
        if "," in self.address:
            # A coordinator and its standbys: a connection to each one that accepts.
            parts = [part.strip() for part in self.address.split(",") if part.strip()]
            if not all(":" in part for part in parts):
                raise InvalidArgument(f"coordinator addresses must be HOST:PORT,HOST:PORT…, got {self.address!r}")
            scheme = "ipv6" if all(part.startswith("[") for part in parts) else "ipv4"
            target = f"{scheme}:" + ",".join(parts)
            # A standby answers searches and refuses changes with UNAVAILABLE: `_call` sends
            # those again, in turn to the next coordinator.
            options.append(("grpc.service_config", json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})))
        if root_certificates is not None or certificate_chain is not None:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_pem(root_certificates),
                private_key=_pem(private_key),
                certificate_chain=_pem(certificate_chain),
            )
            self._channel = grpc.secure_channel(target, credentials, options=options)
        else:
            self._channel = grpc.insecure_channel(target, options=options)
        self._stub = coordinator_pb2_grpc.CoordinatorStub(self._channel)

    # -- lifecycle --

    def close(self) -> None:
        """Closes the channel; calls made afterwards fail."""
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.address!r})"

    #: What gRPC reports when the connection under a call failed (its coordinator died, a
    #: keepalive went unanswered, the server went away): the call may or may not have run.
    _TRANSPORT_FAILURES = ("Socket closed", "Stream removed", "Connection reset", "GOAWAY", "Broken pipe",
                           "keepalive", "Cancelling all calls")

    def _call(self, method, request, timeout: Optional[float] = None, read_only: bool = False):
        """Runs a unary call with the client's deadline and metadata, mapping failures. A call
        that never ran (a coordinator standing by refused a change, or none was reachable while a
        standby takes over) is sent again for up to 8 s. So is a `read_only` one (a search)
        whose connection failed under it: sending it twice does no harm. The call's deadline
        covers every attempt."""
        delay, now = 0.1, time.monotonic()
        deadline = now + (timeout or self.timeout)
        until = min(deadline, now + 8.0)
        while True:
            try:
                return method(request, timeout=max(0.001, deadline - time.monotonic()), metadata=self._metadata)
            except grpc.RpcError as error:
                details = (error.details() or "") if hasattr(error, "details") else ""
                never_ran = "stands by" in details or "failed to connect to all addresses" in details
                broke = read_only and any(failure in details for failure in self._TRANSPORT_FAILURES)
                if error.code() == grpc.StatusCode.UNAVAILABLE and (never_ran or broke) and time.monotonic() + delay < until:
                    time.sleep(delay)
                    delay = min(delay * 2, 1.0)
                    continue
                raise from_rpc_error(error) from None

    # -- collections --

    def create(
        self,
        name: str,
        dimension: int,
        metric: str = "cosine",
        *,
        nlist: int = 0,
        m: int = 0,
        nbits: int = 4,
        anisotropic_threshold: Union[float, bool, None] = None,
        raw: str = "auto",
        replication: int = 1,
        recall_target: float = 0.0,
    ) -> CollectionInfo:
        """Creates an empty collection.

        Args:
            name: 1-128 characters of ``[A-Za-z0-9_.-]``.
            dimension: components per vector.
            metric: ``"cosine"``, ``"ip"`` (inner product) or ``"l2"``.
            nlist: inverted lists; 0 chooses ``2·sqrt(n)`` of the data at training time.
            m: PQ subspaces; 0 = ``dimension / 2``.
            nbits: bits per PQ code, 4 (FastScan) or 8.
            anisotropic_threshold: score-aware quantization threshold; ``None`` = the server's
                default (0.1 for ip/cosine), ``False`` = plain PQ.
            raw: raw vectors kept for exact re-ranking: ``"auto"`` (chosen at training: float16,
                half the memory, unless the data needs float32), ``"float32"``, ``"float16"`` or
                ``"none"``.
            replication: workers holding each list.
            recall_target: recall@10 a search without tuning knobs aims for (0 = 0.95); the
                coordinator calibrates nprobe and the re-rank depth for it after training.

        Raises:
            AlreadyExists: the name is taken.
            InvalidArgument: a setting is out of range.
        """
        metric_value = _METRICS.get(str(metric).lower())
        if metric_value is None:
            raise InvalidArgument(f"metric must be one of cosine, ip, l2; got {metric!r}")
        config = common_pb2.CollectionConfig(
            name=name,
            dimension=_non_negative(dimension, "dimension"),
            metric=metric_value,
            nlist=_non_negative(nlist, "nlist"),
            pq_m=_non_negative(m, "m"),
            pq_nbits=_non_negative(nbits, "nbits"),
            replication_factor=_non_negative(replication, "replication"),
            recall_target=float(recall_target),
        )
        if anisotropic_threshold is False:
            config.anisotropic_threshold = -1.0
        elif anisotropic_threshold is not None and anisotropic_threshold is not True:
            config.anisotropic_threshold = float(anisotropic_threshold)
        if raw == "none":
            config.store_raw_vectors = False
        elif raw == "auto":
            config.store_raw_vectors = True
        elif raw in ("float32", "float16"):
            config.store_raw_vectors = True
            config.raw_vector_precision = (
                common_pb2.VECTOR_PRECISION_FLOAT16 if raw == "float16" else common_pb2.VECTOR_PRECISION_FLOAT32
            )
        else:
            raise InvalidArgument(f"raw must be auto, float32, float16 or none; got {raw!r}")
        request = coordinator_pb2.CreateCollectionRequest(config=config)
        return CollectionInfo.from_proto(self._call(self._stub.CreateCollection, request).collection)

    def describe(self, name: str) -> CollectionInfo:
        """One collection's settings and state. Raises :class:`NotFound` for unknown names."""
        request = coordinator_pb2.DescribeCollectionRequest(collection=name)
        return CollectionInfo.from_proto(self._call(self._stub.DescribeCollection, request).collection)

    def collections(self) -> List[CollectionInfo]:
        """All collections, sorted by name."""
        response = self._call(self._stub.ListCollections, coordinator_pb2.ListCollectionsRequest())
        return [CollectionInfo.from_proto(info) for info in response.collections]

    def drop(self, name: str, if_exists: bool = False) -> bool:
        """Drops a collection and its data on every worker; returns whether it existed.

        Raises :class:`NotFound` for an unknown name unless ``if_exists``.
        """
        request = coordinator_pb2.DropCollectionRequest(collection=name, if_exists=if_exists)
        return self._call(self._stub.DropCollection, request).existed

    # -- training --

    def train(
        self,
        name: str,
        path: Union[str, os.PathLike, None] = None,
        *,
        first_load: bool = False,
        sample_rows: int = 0,
        max_rows: int = 0,
        iterations: int = 0,
        seed: int = 0,
        timeout: Optional[float] = None,
    ) -> TrainResult:
        """Trains the collection's model, now from a file or later on the first load.

        Args:
            path: vector file (or glob) on the coordinator's file system; a relative path is
                made absolute here, which suits a coordinator on this machine.
            first_load: instead of ``path``, train on the leading rows of the first load.
            sample_rows: with ``first_load``, rows to train on (0 = the server's default).
            max_rows: with ``path``, rows sampled at most (0 = ``256 · nlist``).
            iterations, seed: k-means settings (0 = the server's defaults).
            timeout: deadline of this call (training a large model takes a while); default
                the client's ``load_timeout``.

        Raises:
            FailedPrecondition: the collection already holds vectors.
        """
        if (path is None) == (not first_load):
            raise InvalidArgument("train needs exactly one of path=... or first_load=True")
        request = coordinator_pb2.TrainRequest(
            collection=name, iterations=_non_negative(iterations, "iterations"), seed=_non_negative(seed, "seed")
        )
        if first_load:
            request.first_load.sample_rows = _non_negative(sample_rows, "sample_rows")
        else:
            request.file.path = _absolute(path)
            request.file.max_rows = _non_negative(max_rows, "max_rows")
        response = self._call(self._stub.Train, request, timeout=timeout or self.load_timeout)
        return TrainResult(
            model_version=response.model_version,
            nlist=response.nlist,
            training_rows=response.training_rows,
            state=_enum_name(common_pb2.CollectionState, response.state, "COLLECTION_STATE_"),
        )

    def _train_if_new(self, name: str) -> None:
        """A collection that was only created trains on the first rows loaded into it."""
        if self.describe(name).state == "CREATED":
            self.train(name, first_load=True)

    # -- loading --

    def load(
        self,
        name: str,
        vectors,
        ids=None,
        *,
        batch_rows: Optional[int] = None,
        progress: ProgressArgument = False,
        train: bool = True,
        timeout: Optional[float] = None,
        load_id: Optional[str] = None,
        replace: bool = False,
        retries: int = 8,
    ) -> np.ndarray:
        """Streams vectors to the coordinator; returns once every row is durably stored.

        The rows form one named load (``load_id``, a fresh one by default). When the stream
        fails on the way (a worker or the coordinator restarting), it is sent again from the
        first row not acknowledged, up to ``retries`` times; nothing is stored twice, since the
        coordinator derives assigned ids from (load, row) and recognises rows already stored.

        Args:
            vectors: ``(n, dimension)`` array (or one 1-D vector) of float32, float16 (widened)
                or other real numbers.
            ids: ``n`` non-negative int64 ids, or ``None`` to let the coordinator number the
                rows. A collection takes either ids on every load or on none.
            batch_rows: rows per streamed message (default: about 2 MiB of float32).
            progress: ``True`` prints rows sent to stderr; a callable gets ``(rows_sent, rows)``.
            train: if the collection was only created, train it on this load's first rows.
            timeout: deadline of the whole stream; default the client's ``load_timeout``.
            load_id: names the load (1-128 characters of ``[A-Za-z0-9_.-]``); sending the same
                rows again under it stores them once.
            replace: with ``ids``, overwrite ids already stored with other vectors (upsert)
                instead of refusing the batch with ``AlreadyExists``.
            retries: times a failed stream is resumed before the error is raised.

        Returns:
            The ids of the rows, int64 of shape ``(n,)``: the coordinator's (consecutive
            ranges) when ``ids`` is ``None``, else a copy of ``ids``.

        Raises:
            InvalidArgument: wrong dimension, NaN or infinite values, bad ids.
            FailedPrecondition: the collection is not trained and ``train`` is False.
        """
        matrix = _arrays.as_matrix(vectors, "vectors")
        rows, dimension = matrix.shape
        id_array = None if ids is None else _arrays.as_ids(ids, rows)
        if batch_rows is None:
            batch_rows = max(1, LOAD_BATCH_BYTES // (4 * dimension))
        elif batch_rows <= 0:
            raise InvalidArgument(f"batch_rows must be positive, got {batch_rows}")
        if train:
            self._train_if_new(name)
        report = _progress_reporter(progress, rows, f"loading {name}")

        load_id = load_id or "load-" + uuid.uuid4().hex
        duplicates = coordinator_pb2.DUPLICATE_IDS_REPLACE if replace else coordinator_pb2.DUPLICATE_IDS_REJECT

        def messages(first: int) -> Iterator[coordinator_pb2.LoadRequest]:
            for start in range(first, rows, batch_rows):
                end = min(rows, start + batch_rows)
                batch = common_pb2.VectorBatch(
                    vectors=common_pb2.FloatMatrix(rows=end - start, dimension=dimension, data=matrix[start:end].tobytes())
                )
                if id_array is not None:
                    batch.ids = id_array[start:end].tobytes()
                yield coordinator_pb2.LoadRequest(collection=name, batch=batch, load_id=load_id, first_row=start,
                                                  on_duplicate_id=duplicates, expected_rows=rows)
                report(end)

        resume, attempt = 0, 0
        try:
            while True:
                try:
                    response = self._stub.Load(messages(resume), timeout=timeout or self.load_timeout, metadata=self._metadata)
                    break
                except grpc.RpcError as error:
                    code = error.code() if callable(getattr(error, "code", None)) else None
                    if attempt >= retries or code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                                                          grpc.StatusCode.ABORTED):
                        raise from_rpc_error(error) from None
                    attempt += 1
                    trailing = dict(error.trailing_metadata() or ()) if callable(getattr(error, "trailing_metadata", None)) else {}
                    through = trailing.get("quiver-acknowledged-through")
                    if through is not None and through.isdigit():
                        resume = max(resume, min(rows, int(through)))
                    time.sleep(min(5.0, 0.1 * (2 ** min(attempt, 6))))
        finally:
            report(None)
        if response.rows_accepted != rows - resume and response.rows_accepted != rows:
            raise QuiverError(f"the coordinator stored {response.rows_accepted} of {rows} rows")
        if id_array is not None:
            return id_array.copy()
        assigned = [np.arange(r.first, r.first + r.count, dtype=np.int64) for r in response.assigned_ids]
        result = np.concatenate(assigned) if assigned else np.empty(0, dtype=np.int64)
        if result.shape[0] != rows:
            raise QuiverError(f"the coordinator assigned {result.shape[0]} ids to {rows} rows")
        return result

    def delete(self, name: str, ids, *, timeout: Optional[float] = None) -> int:
        """Removes vectors by id; returns how many of them were stored.

        Answered once every list's write quorum of replicas removed them.

        Raises:
            NotFound: no such collection.
            InvalidArgument: negative ids.
        """
        flat = np.asarray(ids).reshape(-1)
        id_array = _arrays.as_ids(flat, flat.shape[0])
        request = coordinator_pb2.DeleteRequest(collection=name, ids=id_array.tobytes())
        try:
            response = self._stub.Delete(request, timeout=timeout or self.timeout, metadata=self._metadata)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        return int(response.removed)

    def load_files(
        self,
        name: str,
        glob: str,
        *,
        ids_glob: str = "",
        wait: bool = True,
        progress: ProgressArgument = False,
        batch_rows: int = 0,
        max_rows: int = 0,
        train: bool = True,
        poll_interval: float = 0.5,
        wait_timeout: Optional[float] = None,
    ) -> LoadStatus:
        """Starts a server-side load of files the coordinator can read, e.g. ``'/data/base.*.npy'``.

        Args:
            glob: vector files (``.npy``, ``.fvecs``, ``.bvecs``) on the coordinator's file
                system; a relative path is made absolute here. Coordinators started with
                ``--import-root`` read only below that folder.
            ids_glob: id files (``.npy`` int64/int32 or ``.ivecs``) row-aligned with the vectors;
                empty = the coordinator numbers the rows.
            wait: poll :meth:`load_status` until the job ends; otherwise return at once.
            progress: ``True`` prints the job's progress to stderr; a callable gets
                ``(rows_done, rows_total)``.
            batch_rows, max_rows: rows per internal batch / in total (0 = defaults / all).
            train: if the collection was only created, train it on the first rows of the files.
            poll_interval: seconds between status polls.
            wait_timeout: give up waiting (raising :class:`DeadlineExceeded`) after this many
                seconds; the job itself goes on. ``None`` waits until it ends.

        Returns:
            The job's :class:`LoadStatus` (final when ``wait``).

        Raises:
            LoadFailed: the job ended in state FAILED (``error.status`` has the details).
        """
        if train:
            self._train_if_new(name)
        request = coordinator_pb2.LoadFilesRequest(
            collection=name,
            path_glob=_absolute(glob),
            id_path_glob=_absolute(ids_glob) if ids_glob else "",
            batch_size=_non_negative(batch_rows, "batch_rows"),
            max_rows=_non_negative(max_rows, "max_rows"),
        )
        job = self._call(self._stub.LoadFiles, request)
        status = self.load_status(job.load_job_id)
        if not wait:
            return status
        report = _progress_reporter(progress, status.rows_total, f"loading {name}")
        deadline = None if wait_timeout is None else time.monotonic() + wait_timeout
        try:
            while not status.finished:
                report(status.rows_done, status.rows_total)
                if deadline is not None and time.monotonic() >= deadline:
                    raise from_status(
                        grpc.StatusCode.DEADLINE_EXCEEDED,
                        f"load job {status.job_id} still {status.state} after {wait_timeout} s "
                        f"({status.rows_done} of {status.rows_total} rows)",
                    )
                time.sleep(poll_interval)
                status = self.load_status(job.load_job_id)
            report(status.rows_done, status.rows_total)
        finally:
            report(None)
        if status.state == "FAILED":
            raise LoadFailed(f"load job {status.job_id} failed after {status.rows_done} rows: {status.error}", status)
        return status

    def load_status(self, job_id: str) -> LoadStatus:
        """Progress of a :meth:`load_files` job. Raises :class:`NotFound` for unknown ids."""
        return LoadStatus.from_proto(self._call(self._stub.LoadStatus, coordinator_pb2.LoadStatusRequest(load_job_id=job_id)))

    # -- search --

    def search(
        self,
        name: str,
        queries,
        k: int = 10,
        *,
        nprobe: Optional[int] = None,
        reorder_k: Optional[int] = None,
        recall: Optional[float] = None,
        require_full_coverage: bool = False,
        return_coverage: bool = False,
        timeout: Optional[float] = None,
    ):
        """Approximate nearest neighbours of each query.

        Args:
            queries: ``(q, dimension)`` array, or one 1-D query, of float32, float16 (widened)
                or other real numbers.
            k: neighbours per query (> 0).
            nprobe: lists probed per query (``None`` = the collection's default).
            reorder_k: candidates re-ranked exactly with raw vectors (``None`` = default,
                0 = PQ estimates only; otherwise >= k).
            recall: instead of ``nprobe``/``reorder_k``, the recall@10 to aim for, in (0, 1);
                with all three ``None`` the collection's ``recall_target`` applies.
            require_full_coverage: fail with :class:`Unavailable` rather than answer from
                fewer than all probed lists.
            return_coverage: return ``(ids, scores, coverage)`` instead of the result object.
            timeout: deadline of each request (a large batch is sent as several).

        Returns:
            A :class:`SearchResult`, which unpacks as ``ids, scores``: int64 and float32 arrays
            of shape ``(q, k)``, or ``(k,)`` for a 1-D query. With ``return_coverage``, the
            tuple ``(ids, scores, coverage)``.

        Raises:
            InvalidArgument: wrong dimension, NaN, k <= 0, nprobe > nlist, ...
            NotFound: unknown collection. FailedPrecondition: not trained yet.
        """
        single = np.ndim(queries) == 1
        matrix = _arrays.as_matrix(queries, "queries")
        if k <= 0:
            raise InvalidArgument(f"k must be positive, got {k}")
        rows, dimension = matrix.shape
        per_request = max(1, min(SEARCH_CHUNK_BYTES // (4 * dimension), SEARCH_CHUNK_BYTES // (12 * k)))
        parts = []
        for start in range(0, rows, per_request):
            request = coordinator_pb2.SearchRequest(
                collection=name,
                k=k,
                queries=common_pb2.FloatMatrix(
                    rows=min(rows, start + per_request) - start, dimension=dimension,
                    data=matrix[start:start + per_request].tobytes(),
                ),
                nprobe=_non_negative(nprobe or 0, "nprobe"),
                require_full_coverage=require_full_coverage,
            )
            if reorder_k is not None:
                request.reorder_k = _non_negative(reorder_k, "reorder_k")
            if recall is not None:
                request.recall_target = float(recall)
            parts.append(self._call(self._stub.Search, request, timeout=timeout, read_only=True))
        result = _merge_search_parts(parts, k)
        if single:
            result = SearchResult(
                result.ids[0], result.scores[0], result.query_coverage[0], result.lists_probed,
                result.lists_answered, result.workers_queried, result.workers_answered,
            )
        if return_coverage:
            return result.ids, result.scores, result.coverage
        return result

    # -- cluster --

    def status(self) -> ClusterStatus:
        """Workers (address, health, lists, vectors, bytes), collections and shard maps."""
        response = self._call(self._stub.ClusterStatus, coordinator_pb2.ClusterStatusRequest())
        workers = [
            WorkerInfo(
                worker_id=w.worker_id, address=w.address,
                health=_enum_name(coordinator_pb2.WorkerHealth, w.health, "WORKER_HEALTH_"),
                lists_owned=w.lists_owned, vectors=w.vectors, bytes=w.bytes,
                queries_served=w.queries_served, last_seen_unix_ms=w.last_seen_unix_ms,
            )
            for w in response.workers
        ]
        assignments = [
            ShardAssignment(
                collection=m.collection, worker_id=a.worker_id,
                list_ids=_arrays.unpack(a.list_ids, np.dtype("<i4"), len(a.list_ids) // 4, "list_ids"),
            )
            for m in response.shard_maps
            for a in m.assignments
        ]
        return ClusterStatus(
            workers=workers,
            collections=[CollectionInfo.from_proto(c) for c in response.collections],
            assignments=assignments,
            proto=response,
        )

    def health(self, service: str = "") -> str:
        """The coordinator's ``grpc.health.v1`` status for ``service`` ("" = the whole server):
        ``"SERVING"``, ``"NOT_SERVING"``, ``"UNKNOWN"`` or ``"SERVICE_UNKNOWN"``."""
        try:
            from ._proto.grpc.health.v1 import health_pb2, health_pb2_grpc
        except ImportError:
            raise QuiverError("this client was generated without proto/grpc/health/v1/health.proto") from None
        stub = health_pb2_grpc.HealthStub(self._channel)
        response = self._call(stub.Check, health_pb2.HealthCheckRequest(service=service))
        return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)


# ---- helpers ----------------------------------------------------------------------------------


def _merge_search_parts(parts: Sequence[coordinator_pb2.SearchResponse], k: int) -> SearchResult:
    """One result from the answers to consecutive chunks of a query batch."""
    id_blocks, score_blocks, coverage_blocks = [], [], []
    width = max(part.results.k for part in parts)
    probed = answered = queried = replied = 0
    for part in parts:
        results = part.results
        count, part_k = results.query_count, results.k
        ids = _arrays.unpack(results.ids, _arrays.INT64, count * part_k, "results.ids").reshape(count, part_k)
        scores = _arrays.unpack(results.scores, _arrays.FLOAT32, count * part_k, "results.scores").reshape(count, part_k)
        if part_k < width:
            # Chunks of one batch search the same collection, so widths differ only when vectors
            # arrived between them; the missing slots are empty (id -1, score NaN).
            ids = np.hstack([ids, np.full((count, width - part_k), -1, dtype=np.int64)])
            scores = np.hstack([scores, np.full((count, width - part_k), np.nan, dtype=np.float32)])
        id_blocks.append(ids)
        score_blocks.append(scores)
        if part.query_coverage:
            coverage_blocks.append(_arrays.unpack(part.query_coverage, _arrays.FLOAT32, count, "query_coverage"))
        else:
            coverage_blocks.append(np.ones(count, dtype=np.float32))
        probed += part.coverage.lists_probed
        answered += part.coverage.lists_answered
        queried += part.coverage.workers_queried
        replied += part.coverage.workers_answered
    return SearchResult(
        np.vstack(id_blocks), np.vstack(score_blocks), np.concatenate(coverage_blocks),
        probed, answered, queried, replied,
    )


def _progress_reporter(progress: ProgressArgument, total: int, label: str):
    """A function ``report(done, total=None)``; ``report(None)`` ends the display.

    On a terminal the line is rewritten in place; elsewhere a plain line is printed at most
    every two seconds, and once at the end.
    """
    if callable(progress):
        def report(done, new_total=None):
            if done is not None:
                progress(done, new_total if new_total is not None else total)
        return report
    if not progress:
        return lambda done, new_total=None: None
    stream = sys.stderr
    tty = stream.isatty()
    state = {"start": time.monotonic(), "last": 0.0, "done": 0, "total": total, "shown": False}

    def line() -> str:
        elapsed = max(1e-9, time.monotonic() - state["start"])
        done, all_rows = state["done"], state["total"]
        rate = done / elapsed
        if all_rows:
            eta = (all_rows - done) / rate if rate > 0 else math.inf
            return f"{label}: {done}/{all_rows} rows ({100 * done / all_rows:.0f}%), {rate:,.0f} rows/s, ETA {eta:.0f} s"
        return f"{label}: {done} rows, {rate:,.0f} rows/s"

    def report(done, new_total=None):
        now = time.monotonic()
        if done is None:
            if state["shown"] or state["done"]:
                stream.write(("\r" if tty else "") + line() + "\n")
                stream.flush()
            return
        state["done"] = done
        if new_total:
            state["total"] = new_total
        if tty and now - state["last"] >= 0.1:
            stream.write("\r" + line())
            state["last"], state["shown"] = now, True
        elif not tty and now - state["last"] >= 2.0:
            stream.write(line() + "\n")
            state["last"], state["shown"] = now, True
        stream.flush()

    return report


def _pem(value: Union[bytes, str, os.PathLike, None]) -> Optional[bytes]:
    """PEM bytes as given, or read from a path."""
    if value is None or isinstance(value, bytes):
        return value
    with open(value, "rb") as handle:
        return handle.read()


def _non_negative(value: int, name: str) -> int:
    """An int >= 0 for an unsigned protocol field, or :class:`InvalidArgument`."""
    if isinstance(value, bool) or int(value) != value or value < 0:
        raise InvalidArgument(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def _absolute(path: str) -> str:
    """Paths sent to the coordinator must not depend on this process's working directory."""
    path = os.fspath(path)
    return path if os.path.isabs(path) else os.path.abspath(path)
