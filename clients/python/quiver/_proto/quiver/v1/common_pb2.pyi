from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Metric(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    METRIC_UNSPECIFIED: _ClassVar[Metric]
    METRIC_INNER_PRODUCT: _ClassVar[Metric]
    METRIC_L2: _ClassVar[Metric]
    METRIC_COSINE: _ClassVar[Metric]

class VectorPrecision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VECTOR_PRECISION_UNSPECIFIED: _ClassVar[VectorPrecision]
    VECTOR_PRECISION_FLOAT32: _ClassVar[VectorPrecision]
    VECTOR_PRECISION_FLOAT16: _ClassVar[VectorPrecision]

class VectorFileFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VECTOR_FILE_FORMAT_UNSPECIFIED: _ClassVar[VectorFileFormat]
    VECTOR_FILE_FORMAT_NPY: _ClassVar[VectorFileFormat]
    VECTOR_FILE_FORMAT_FVECS: _ClassVar[VectorFileFormat]
    VECTOR_FILE_FORMAT_BVECS: _ClassVar[VectorFileFormat]
    VECTOR_FILE_FORMAT_IVECS: _ClassVar[VectorFileFormat]

class CollectionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COLLECTION_STATE_UNSPECIFIED: _ClassVar[CollectionState]
    COLLECTION_STATE_CREATED: _ClassVar[CollectionState]
    COLLECTION_STATE_AWAITING_FIRST_LOAD: _ClassVar[CollectionState]
    COLLECTION_STATE_TRAINING: _ClassVar[CollectionState]
    COLLECTION_STATE_READY: _ClassVar[CollectionState]
    COLLECTION_STATE_FAILED: _ClassVar[CollectionState]
METRIC_UNSPECIFIED: Metric
METRIC_INNER_PRODUCT: Metric
METRIC_L2: Metric
METRIC_COSINE: Metric
VECTOR_PRECISION_UNSPECIFIED: VectorPrecision
VECTOR_PRECISION_FLOAT32: VectorPrecision
VECTOR_PRECISION_FLOAT16: VectorPrecision
VECTOR_FILE_FORMAT_UNSPECIFIED: VectorFileFormat
VECTOR_FILE_FORMAT_NPY: VectorFileFormat
VECTOR_FILE_FORMAT_FVECS: VectorFileFormat
VECTOR_FILE_FORMAT_BVECS: VectorFileFormat
VECTOR_FILE_FORMAT_IVECS: VectorFileFormat
COLLECTION_STATE_UNSPECIFIED: CollectionState
COLLECTION_STATE_CREATED: CollectionState
COLLECTION_STATE_AWAITING_FIRST_LOAD: CollectionState
COLLECTION_STATE_TRAINING: CollectionState
COLLECTION_STATE_READY: CollectionState
COLLECTION_STATE_FAILED: CollectionState

class FloatMatrix(_message.Message):
    __slots__ = ("rows", "dimension", "data")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    rows: int
    dimension: int
    data: bytes
    def __init__(self, rows: _Optional[int] = ..., dimension: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class VectorBatch(_message.Message):
    __slots__ = ("vectors", "ids")
    VECTORS_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    vectors: FloatMatrix
    ids: bytes
    def __init__(self, vectors: _Optional[_Union[FloatMatrix, _Mapping]] = ..., ids: _Optional[bytes] = ...) -> None: ...

class TopK(_message.Message):
    __slots__ = ("query_count", "k", "ids", "scores")
    QUERY_COUNT_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    query_count: int
    k: int
    ids: bytes
    scores: bytes
    def __init__(self, query_count: _Optional[int] = ..., k: _Optional[int] = ..., ids: _Optional[bytes] = ..., scores: _Optional[bytes] = ...) -> None: ...

class Coverage(_message.Message):
    __slots__ = ("lists_probed", "lists_answered", "workers_queried", "workers_answered")
    LISTS_PROBED_FIELD_NUMBER: _ClassVar[int]
    LISTS_ANSWERED_FIELD_NUMBER: _ClassVar[int]
    WORKERS_QUERIED_FIELD_NUMBER: _ClassVar[int]
    WORKERS_ANSWERED_FIELD_NUMBER: _ClassVar[int]
    lists_probed: int
    lists_answered: int
    workers_queried: int
    workers_answered: int
    def __init__(self, lists_probed: _Optional[int] = ..., lists_answered: _Optional[int] = ..., workers_queried: _Optional[int] = ..., workers_answered: _Optional[int] = ...) -> None: ...

class CollectionConfig(_message.Message):
    __slots__ = ("name", "dimension", "metric", "nlist", "pq_m", "pq_nbits", "anisotropic_threshold", "store_raw_vectors", "raw_vector_precision", "replication_factor", "write_quorum", "recall_target")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    NLIST_FIELD_NUMBER: _ClassVar[int]
    PQ_M_FIELD_NUMBER: _ClassVar[int]
    PQ_NBITS_FIELD_NUMBER: _ClassVar[int]
    ANISOTROPIC_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    STORE_RAW_VECTORS_FIELD_NUMBER: _ClassVar[int]
    RAW_VECTOR_PRECISION_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_FACTOR_FIELD_NUMBER: _ClassVar[int]
    WRITE_QUORUM_FIELD_NUMBER: _ClassVar[int]
    RECALL_TARGET_FIELD_NUMBER: _ClassVar[int]
    name: str
    dimension: int
    metric: Metric
    nlist: int
    pq_m: int
    pq_nbits: int
    anisotropic_threshold: float
    store_raw_vectors: bool
    raw_vector_precision: VectorPrecision
    replication_factor: int
    write_quorum: int
    recall_target: float
    def __init__(self, name: _Optional[str] = ..., dimension: _Optional[int] = ..., metric: _Optional[_Union[Metric, str]] = ..., nlist: _Optional[int] = ..., pq_m: _Optional[int] = ..., pq_nbits: _Optional[int] = ..., anisotropic_threshold: _Optional[float] = ..., store_raw_vectors: _Optional[bool] = ..., raw_vector_precision: _Optional[_Union[VectorPrecision, str]] = ..., replication_factor: _Optional[int] = ..., write_quorum: _Optional[int] = ..., recall_target: _Optional[float] = ...) -> None: ...

class CollectionInfo(_message.Message):
    __slots__ = ("config", "state", "model_version", "nlist", "shard_map_version", "vector_count", "bytes_used", "created_unix_ms", "error", "search_defaults")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    NLIST_FIELD_NUMBER: _ClassVar[int]
    SHARD_MAP_VERSION_FIELD_NUMBER: _ClassVar[int]
    VECTOR_COUNT_FIELD_NUMBER: _ClassVar[int]
    BYTES_USED_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SEARCH_DEFAULTS_FIELD_NUMBER: _ClassVar[int]
    config: CollectionConfig
    state: CollectionState
    model_version: int
    nlist: int
    shard_map_version: int
    vector_count: int
    bytes_used: int
    created_unix_ms: int
    error: str
    search_defaults: _containers.RepeatedCompositeFieldContainer[SearchDefaults]
    def __init__(self, config: _Optional[_Union[CollectionConfig, _Mapping]] = ..., state: _Optional[_Union[CollectionState, str]] = ..., model_version: _Optional[int] = ..., nlist: _Optional[int] = ..., shard_map_version: _Optional[int] = ..., vector_count: _Optional[int] = ..., bytes_used: _Optional[int] = ..., created_unix_ms: _Optional[int] = ..., error: _Optional[str] = ..., search_defaults: _Optional[_Iterable[_Union[SearchDefaults, _Mapping]]] = ...) -> None: ...

class SearchDefaults(_message.Message):
    __slots__ = ("recall_target", "nprobe", "reorder_k", "sample_recall", "reached", "sample_queries", "sample_rows")
    RECALL_TARGET_FIELD_NUMBER: _ClassVar[int]
    NPROBE_FIELD_NUMBER: _ClassVar[int]
    REORDER_K_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RECALL_FIELD_NUMBER: _ClassVar[int]
    REACHED_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_QUERIES_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_ROWS_FIELD_NUMBER: _ClassVar[int]
    recall_target: float
    nprobe: int
    reorder_k: int
    sample_recall: float
    reached: bool
    sample_queries: int
    sample_rows: int
    def __init__(self, recall_target: _Optional[float] = ..., nprobe: _Optional[int] = ..., reorder_k: _Optional[int] = ..., sample_recall: _Optional[float] = ..., reached: _Optional[bool] = ..., sample_queries: _Optional[int] = ..., sample_rows: _Optional[int] = ...) -> None: ...

class ShardMap(_message.Message):
    __slots__ = ("collection", "version", "model_version", "replication_factor", "assignments")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_FACTOR_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENTS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    version: int
    model_version: int
    replication_factor: int
    assignments: _containers.RepeatedCompositeFieldContainer[WorkerLists]
    def __init__(self, collection: _Optional[str] = ..., version: _Optional[int] = ..., model_version: _Optional[int] = ..., replication_factor: _Optional[int] = ..., assignments: _Optional[_Iterable[_Union[WorkerLists, _Mapping]]] = ...) -> None: ...

class WorkerLists(_message.Message):
    __slots__ = ("worker_id", "list_ids")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    LIST_IDS_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    list_ids: bytes
    def __init__(self, worker_id: _Optional[str] = ..., list_ids: _Optional[bytes] = ...) -> None: ...

class CallError(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...
