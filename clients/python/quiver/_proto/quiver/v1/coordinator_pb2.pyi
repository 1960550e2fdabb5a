from quiver._proto.quiver.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DuplicateIDs(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DUPLICATE_IDS_REJECT: _ClassVar[DuplicateIDs]
    DUPLICATE_IDS_REPLACE: _ClassVar[DuplicateIDs]

class LoadState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LOAD_STATE_UNSPECIFIED: _ClassVar[LoadState]
    LOAD_STATE_PENDING: _ClassVar[LoadState]
    LOAD_STATE_TRAINING: _ClassVar[LoadState]
    LOAD_STATE_RUNNING: _ClassVar[LoadState]
    LOAD_STATE_SUCCEEDED: _ClassVar[LoadState]
    LOAD_STATE_FAILED: _ClassVar[LoadState]

class WorkerHealth(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WORKER_HEALTH_UNSPECIFIED: _ClassVar[WorkerHealth]
    WORKER_HEALTH_HEALTHY: _ClassVar[WorkerHealth]
    WORKER_HEALTH_SUSPECT: _ClassVar[WorkerHealth]
    WORKER_HEALTH_DOWN: _ClassVar[WorkerHealth]
    WORKER_HEALTH_DRAINING: _ClassVar[WorkerHealth]
DUPLICATE_IDS_REJECT: DuplicateIDs
DUPLICATE_IDS_REPLACE: DuplicateIDs
LOAD_STATE_UNSPECIFIED: LoadState
LOAD_STATE_PENDING: LoadState
LOAD_STATE_TRAINING: LoadState
LOAD_STATE_RUNNING: LoadState
LOAD_STATE_SUCCEEDED: LoadState
LOAD_STATE_FAILED: LoadState
WORKER_HEALTH_UNSPECIFIED: WorkerHealth
WORKER_HEALTH_HEALTHY: WorkerHealth
WORKER_HEALTH_SUSPECT: WorkerHealth
WORKER_HEALTH_DOWN: WorkerHealth
WORKER_HEALTH_DRAINING: WorkerHealth

class CreateCollectionRequest(_message.Message):
    __slots__ = ("config",)
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    config: _common_pb2.CollectionConfig
    def __init__(self, config: _Optional[_Union[_common_pb2.CollectionConfig, _Mapping]] = ...) -> None: ...

class CreateCollectionResponse(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: _common_pb2.CollectionInfo
    def __init__(self, collection: _Optional[_Union[_common_pb2.CollectionInfo, _Mapping]] = ...) -> None: ...

class DescribeCollectionRequest(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    def __init__(self, collection: _Optional[str] = ...) -> None: ...

class DescribeCollectionResponse(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: _common_pb2.CollectionInfo
    def __init__(self, collection: _Optional[_Union[_common_pb2.CollectionInfo, _Mapping]] = ...) -> None: ...

class ListCollectionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListCollectionsResponse(_message.Message):
    __slots__ = ("collections",)
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    collections: _containers.RepeatedCompositeFieldContainer[_common_pb2.CollectionInfo]
    def __init__(self, collections: _Optional[_Iterable[_Union[_common_pb2.CollectionInfo, _Mapping]]] = ...) -> None: ...

class DropCollectionRequest(_message.Message):
    __slots__ = ("collection", "if_exists")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    IF_EXISTS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    if_exists: bool
    def __init__(self, collection: _Optional[str] = ..., if_exists: _Optional[bool] = ...) -> None: ...

class DropCollectionResponse(_message.Message):
    __slots__ = ("existed",)
    EXISTED_FIELD_NUMBER: _ClassVar[int]
    existed: bool
    def __init__(self, existed: _Optional[bool] = ...) -> None: ...

class TrainRequest(_message.Message):
    __slots__ = ("collection", "file", "first_load", "iterations", "seed")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    FIRST_LOAD_FIELD_NUMBER: _ClassVar[int]
    ITERATIONS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    collection: str
    file: TrainFromFile
    first_load: TrainFromFirstLoad
    iterations: int
    seed: int
    def __init__(self, collection: _Optional[str] = ..., file: _Optional[_Union[TrainFromFile, _Mapping]] = ..., first_load: _Optional[_Union[TrainFromFirstLoad, _Mapping]] = ..., iterations: _Optional[int] = ..., seed: _Optional[int] = ...) -> None: ...

class TrainFromFile(_message.Message):
    __slots__ = ("path", "format", "max_rows")
    PATH_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    MAX_ROWS_FIELD_NUMBER: _ClassVar[int]
    path: str
    format: _common_pb2.VectorFileFormat
    max_rows: int
    def __init__(self, path: _Optional[str] = ..., format: _Optional[_Union[_common_pb2.VectorFileFormat, str]] = ..., max_rows: _Optional[int] = ...) -> None: ...

class TrainFromFirstLoad(_message.Message):
    __slots__ = ("sample_rows",)
    SAMPLE_ROWS_FIELD_NUMBER: _ClassVar[int]
    sample_rows: int
    def __init__(self, sample_rows: _Optional[int] = ...) -> None: ...

class TrainResponse(_message.Message):
    __slots__ = ("model_version", "nlist", "training_rows", "state")
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    NLIST_FIELD_NUMBER: _ClassVar[int]
    TRAINING_ROWS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    model_version: int
    nlist: int
    training_rows: int
    state: _common_pb2.CollectionState
    def __init__(self, model_version: _Optional[int] = ..., nlist: _Optional[int] = ..., training_rows: _Optional[int] = ..., state: _Optional[_Union[_common_pb2.CollectionState, str]] = ...) -> None: ...

class LoadRequest(_message.Message):
    __slots__ = ("collection", "batch", "load_id", "first_row", "on_duplicate_id", "expected_rows")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    LOAD_ID_FIELD_NUMBER: _ClassVar[int]
    FIRST_ROW_FIELD_NUMBER: _ClassVar[int]
    ON_DUPLICATE_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_ROWS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    batch: _common_pb2.VectorBatch
    load_id: str
    first_row: int
    on_duplicate_id: DuplicateIDs
    expected_rows: int
    def __init__(self, collection: _Optional[str] = ..., batch: _Optional[_Union[_common_pb2.VectorBatch, _Mapping]] = ..., load_id: _Optional[str] = ..., first_row: _Optional[int] = ..., on_duplicate_id: _Optional[_Union[DuplicateIDs, str]] = ..., expected_rows: _Optional[int] = ...) -> None: ...

class IdRange(_message.Message):
    __slots__ = ("first", "count")
    FIRST_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    first: int
    count: int
    def __init__(self, first: _Optional[int] = ..., count: _Optional[int] = ...) -> None: ...

class LoadResponse(_message.Message):
    __slots__ = ("rows_accepted", "model_version", "assigned_ids")
    ROWS_ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    ASSIGNED_IDS_FIELD_NUMBER: _ClassVar[int]
    rows_accepted: int
    model_version: int
    assigned_ids: _containers.RepeatedCompositeFieldContainer[IdRange]
    def __init__(self, rows_accepted: _Optional[int] = ..., model_version: _Optional[int] = ..., assigned_ids: _Optional[_Iterable[_Union[IdRange, _Mapping]]] = ...) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ("collection", "ids")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    ids: bytes
    def __init__(self, collection: _Optional[str] = ..., ids: _Optional[bytes] = ...) -> None: ...

class DeleteResponse(_message.Message):
    __slots__ = ("removed",)
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    removed: int
    def __init__(self, removed: _Optional[int] = ...) -> None: ...

class LoadFilesRequest(_message.Message):
    __slots__ = ("collection", "path_glob", "format", "id_path_glob", "batch_size", "max_rows")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    PATH_GLOB_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    ID_PATH_GLOB_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_ROWS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    path_glob: str
    format: _common_pb2.VectorFileFormat
    id_path_glob: str
    batch_size: int
    max_rows: int
    def __init__(self, collection: _Optional[str] = ..., path_glob: _Optional[str] = ..., format: _Optional[_Union[_common_pb2.VectorFileFormat, str]] = ..., id_path_glob: _Optional[str] = ..., batch_size: _Optional[int] = ..., max_rows: _Optional[int] = ...) -> None: ...

class LoadFilesResponse(_message.Message):
    __slots__ = ("load_job_id", "files_matched")
    LOAD_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    FILES_MATCHED_FIELD_NUMBER: _ClassVar[int]
    load_job_id: str
    files_matched: int
    def __init__(self, load_job_id: _Optional[str] = ..., files_matched: _Optional[int] = ...) -> None: ...

class LoadStatusRequest(_message.Message):
    __slots__ = ("load_job_id",)
    LOAD_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    load_job_id: str
    def __init__(self, load_job_id: _Optional[str] = ...) -> None: ...

class LoadStatusResponse(_message.Message):
    __slots__ = ("load_job_id", "collection", "state", "rows_done", "rows_total", "rows_per_second", "eta_seconds", "error", "files_done", "files_total", "model_version", "started_unix_ms")
    LOAD_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ROWS_DONE_FIELD_NUMBER: _ClassVar[int]
    ROWS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    ROWS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    ETA_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    FILES_DONE_FIELD_NUMBER: _ClassVar[int]
    FILES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    STARTED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    load_job_id: str
    collection: str
    state: LoadState
    rows_done: int
    rows_total: int
    rows_per_second: float
    eta_seconds: float
    error: str
    files_done: int
    files_total: int
    model_version: int
    started_unix_ms: int
    def __init__(self, load_job_id: _Optional[str] = ..., collection: _Optional[str] = ..., state: _Optional[_Union[LoadState, str]] = ..., rows_done: _Optional[int] = ..., rows_total: _Optional[int] = ..., rows_per_second: _Optional[float] = ..., eta_seconds: _Optional[float] = ..., error: _Optional[str] = ..., files_done: _Optional[int] = ..., files_total: _Optional[int] = ..., model_version: _Optional[int] = ..., started_unix_ms: _Optional[int] = ...) -> None: ...

class SearchRequest(_message.Message):
    __slots__ = ("collection", "k", "queries", "nprobe", "reorder_k", "require_full_coverage", "recall_target")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    NPROBE_FIELD_NUMBER: _ClassVar[int]
    REORDER_K_FIELD_NUMBER: _ClassVar[int]
    REQUIRE_FULL_COVERAGE_FIELD_NUMBER: _ClassVar[int]
    RECALL_TARGET_FIELD_NUMBER: _ClassVar[int]
    collection: str
    k: int
    queries: _common_pb2.FloatMatrix
    nprobe: int
    reorder_k: int
    require_full_coverage: bool
    recall_target: float
    def __init__(self, collection: _Optional[str] = ..., k: _Optional[int] = ..., queries: _Optional[_Union[_common_pb2.FloatMatrix, _Mapping]] = ..., nprobe: _Optional[int] = ..., reorder_k: _Optional[int] = ..., require_full_coverage: _Optional[bool] = ..., recall_target: _Optional[float] = ...) -> None: ...

class SearchResponse(_message.Message):
    __slots__ = ("results", "coverage", "query_coverage", "model_version", "shard_map_version")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    COVERAGE_FIELD_NUMBER: _ClassVar[int]
    QUERY_COVERAGE_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SHARD_MAP_VERSION_FIELD_NUMBER: _ClassVar[int]
    results: _common_pb2.TopK
    coverage: _common_pb2.Coverage
    query_coverage: bytes
    model_version: int
    shard_map_version: int
    def __init__(self, results: _Optional[_Union[_common_pb2.TopK, _Mapping]] = ..., coverage: _Optional[_Union[_common_pb2.Coverage, _Mapping]] = ..., query_coverage: _Optional[bytes] = ..., model_version: _Optional[int] = ..., shard_map_version: _Optional[int] = ...) -> None: ...

class ClusterStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WorkerStatus(_message.Message):
    __slots__ = ("worker_id", "address", "health", "lists_owned", "vectors", "bytes", "queries_served", "last_seen_unix_ms", "folder_id", "lists_behind")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    LISTS_OWNED_FIELD_NUMBER: _ClassVar[int]
    VECTORS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    QUERIES_SERVED_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    FOLDER_ID_FIELD_NUMBER: _ClassVar[int]
    LISTS_BEHIND_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    address: str
    health: WorkerHealth
    lists_owned: int
    vectors: int
    bytes: int
    queries_served: int
    last_seen_unix_ms: int
    folder_id: str
    lists_behind: int
    def __init__(self, worker_id: _Optional[str] = ..., address: _Optional[str] = ..., health: _Optional[_Union[WorkerHealth, str]] = ..., lists_owned: _Optional[int] = ..., vectors: _Optional[int] = ..., bytes: _Optional[int] = ..., queries_served: _Optional[int] = ..., last_seen_unix_ms: _Optional[int] = ..., folder_id: _Optional[str] = ..., lists_behind: _Optional[int] = ...) -> None: ...

class ClusterStatusResponse(_message.Message):
    __slots__ = ("workers", "shard_maps", "collections", "unhealthy_replicas")
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    SHARD_MAPS_FIELD_NUMBER: _ClassVar[int]
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    UNHEALTHY_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    workers: _containers.RepeatedCompositeFieldContainer[WorkerStatus]
    shard_maps: _containers.RepeatedCompositeFieldContainer[_common_pb2.ShardMap]
    collections: _containers.RepeatedCompositeFieldContainer[_common_pb2.CollectionInfo]
    unhealthy_replicas: _containers.RepeatedCompositeFieldContainer[ReplicaState]
    def __init__(self, workers: _Optional[_Iterable[_Union[WorkerStatus, _Mapping]]] = ..., shard_maps: _Optional[_Iterable[_Union[_common_pb2.ShardMap, _Mapping]]] = ..., collections: _Optional[_Iterable[_Union[_common_pb2.CollectionInfo, _Mapping]]] = ..., unhealthy_replicas: _Optional[_Iterable[_Union[ReplicaState, _Mapping]]] = ...) -> None: ...

class ReplicaState(_message.Message):
    __slots__ = ("collection", "list", "worker_id", "state")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[ReplicaState.State]
        STATE_SERVING: _ClassVar[ReplicaState.State]
        STATE_BEHIND: _ClassVar[ReplicaState.State]
        STATE_REPAIRING: _ClassVar[ReplicaState.State]
    STATE_UNSPECIFIED: ReplicaState.State
    STATE_SERVING: ReplicaState.State
    STATE_BEHIND: ReplicaState.State
    STATE_REPAIRING: ReplicaState.State
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    LIST_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    collection: str
    list: int
    worker_id: str
    state: ReplicaState.State
    def __init__(self, collection: _Optional[str] = ..., list: _Optional[int] = ..., worker_id: _Optional[str] = ..., state: _Optional[_Union[ReplicaState.State, str]] = ...) -> None: ...

class RegisterWorkerRequest(_message.Message):
    __slots__ = ("address", "worker_id")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    address: str
    worker_id: str
    def __init__(self, address: _Optional[str] = ..., worker_id: _Optional[str] = ...) -> None: ...

class RegisterWorkerResponse(_message.Message):
    __slots__ = ("workers_known",)
    WORKERS_KNOWN_FIELD_NUMBER: _ClassVar[int]
    workers_known: int
    def __init__(self, workers_known: _Optional[int] = ...) -> None: ...

class RemoveWorkerRequest(_message.Message):
    __slots__ = ("worker_id",)
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    def __init__(self, worker_id: _Optional[str] = ...) -> None: ...

class RemoveWorkerResponse(_message.Message):
    __slots__ = ("workers_known",)
    WORKERS_KNOWN_FIELD_NUMBER: _ClassVar[int]
    workers_known: int
    def __init__(self, workers_known: _Optional[int] = ...) -> None: ...

class DrainWorkerRequest(_message.Message):
    __slots__ = ("worker_id",)
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    def __init__(self, worker_id: _Optional[str] = ...) -> None: ...

class DrainWorkerResponse(_message.Message):
    __slots__ = ("lists_moving",)
    LISTS_MOVING_FIELD_NUMBER: _ClassVar[int]
    lists_moving: int
    def __init__(self, lists_moving: _Optional[int] = ...) -> None: ...

class SearchStreamRequest(_message.Message):
    __slots__ = ("request_id", "search", "timeout_ms", "cancel")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SEARCH_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    search: SearchRequest
    timeout_ms: int
    cancel: bool
    def __init__(self, request_id: _Optional[int] = ..., search: _Optional[_Union[SearchRequest, _Mapping]] = ..., timeout_ms: _Optional[int] = ..., cancel: _Optional[bool] = ...) -> None: ...

class SearchStreamResponse(_message.Message):
    __slots__ = ("request_id", "result", "error")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    result: SearchResponse
    error: _common_pb2.CallError
    def __init__(self, request_id: _Optional[int] = ..., result: _Optional[_Union[SearchResponse, _Mapping]] = ..., error: _Optional[_Union[_common_pb2.CallError, _Mapping]] = ...) -> None: ...
