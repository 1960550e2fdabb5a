from quiver._proto.quiver.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InstallModelChunk(_message.Message):
    __slots__ = ("collection", "model_version", "total_bytes", "offset", "data")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    collection: str
    model_version: int
    total_bytes: int
    offset: int
    data: bytes
    def __init__(self, collection: _Optional[str] = ..., model_version: _Optional[int] = ..., total_bytes: _Optional[int] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class InstallModelResponse(_message.Message):
    __slots__ = ("model_version", "already_installed", "bytes_received")
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    ALREADY_INSTALLED_FIELD_NUMBER: _ClassVar[int]
    BYTES_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    model_version: int
    already_installed: bool
    bytes_received: int
    def __init__(self, model_version: _Optional[int] = ..., already_installed: _Optional[bool] = ..., bytes_received: _Optional[int] = ...) -> None: ...

class AssignListsRequest(_message.Message):
    __slots__ = ("collection", "model_version", "shard_map_version", "list_ids", "release_unowned")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SHARD_MAP_VERSION_FIELD_NUMBER: _ClassVar[int]
    LIST_IDS_FIELD_NUMBER: _ClassVar[int]
    RELEASE_UNOWNED_FIELD_NUMBER: _ClassVar[int]
    collection: str
    model_version: int
    shard_map_version: int
    list_ids: bytes
    release_unowned: bool
    def __init__(self, collection: _Optional[str] = ..., model_version: _Optional[int] = ..., shard_map_version: _Optional[int] = ..., list_ids: _Optional[bytes] = ..., release_unowned: _Optional[bool] = ...) -> None: ...

class AssignListsResponse(_message.Message):
    __slots__ = ("shard_map_version", "lists_owned", "vectors")
    SHARD_MAP_VERSION_FIELD_NUMBER: _ClassVar[int]
    LISTS_OWNED_FIELD_NUMBER: _ClassVar[int]
    VECTORS_FIELD_NUMBER: _ClassVar[int]
    shard_map_version: int
    lists_owned: int
    vectors: int
    def __init__(self, shard_map_version: _Optional[int] = ..., lists_owned: _Optional[int] = ..., vectors: _Optional[int] = ...) -> None: ...

class IngestRequest(_message.Message):
    __slots__ = ("collection", "model_version", "shard_map_version", "batch", "list_ids", "spill_list_ids")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SHARD_MAP_VERSION_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    LIST_IDS_FIELD_NUMBER: _ClassVar[int]
    SPILL_LIST_IDS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    model_version: int
    shard_map_version: int
    batch: _common_pb2.VectorBatch
    list_ids: bytes
    spill_list_ids: bytes
    def __init__(self, collection: _Optional[str] = ..., model_version: _Optional[int] = ..., shard_map_version: _Optional[int] = ..., batch: _Optional[_Union[_common_pb2.VectorBatch, _Mapping]] = ..., list_ids: _Optional[bytes] = ..., spill_list_ids: _Optional[bytes] = ...) -> None: ...

class IngestResponse(_message.Message):
    __slots__ = ("rows_stored", "rows_rejected", "shard_map_version")
    ROWS_STORED_FIELD_NUMBER: _ClassVar[int]
    ROWS_REJECTED_FIELD_NUMBER: _ClassVar[int]
    SHARD_MAP_VERSION_FIELD_NUMBER: _ClassVar[int]
    rows_stored: int
    rows_rejected: int
    shard_map_version: int
    def __init__(self, rows_stored: _Optional[int] = ..., rows_rejected: _Optional[int] = ..., shard_map_version: _Optional[int] = ...) -> None: ...

class SearchListsRequest(_message.Message):
    __slots__ = ("collection", "model_version", "shard_map_version", "k", "reorder_k", "queries", "probe_offsets", "probe_list_ids", "probe_coarse_scores")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SHARD_MAP_VERSION_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    REORDER_K_FIELD_NUMBER: _ClassVar[int]
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    PROBE_OFFSETS_FIELD_NUMBER: _ClassVar[int]
    PROBE_LIST_IDS_FIELD_NUMBER: _ClassVar[int]
    PROBE_COARSE_SCORES_FIELD_NUMBER: _ClassVar[int]
    collection: str
    model_version: int
    shard_map_version: int
    k: int
    reorder_k: int
    queries: _common_pb2.FloatMatrix
    probe_offsets: bytes
    probe_list_ids: bytes
    probe_coarse_scores: bytes
    def __init__(self, collection: _Optional[str] = ..., model_version: _Optional[int] = ..., shard_map_version: _Optional[int] = ..., k: _Optional[int] = ..., reorder_k: _Optional[int] = ..., queries: _Optional[_Union[_common_pb2.FloatMatrix, _Mapping]] = ..., probe_offsets: _Optional[bytes] = ..., probe_list_ids: _Optional[bytes] = ..., probe_coarse_scores: _Optional[bytes] = ...) -> None: ...

class SearchListsResponse(_message.Message):
    __slots__ = ("results", "exact_scores", "lists_scanned", "skipped_offsets", "skipped_list_ids", "codes_scanned")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    EXACT_SCORES_FIELD_NUMBER: _ClassVar[int]
    LISTS_SCANNED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_OFFSETS_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_LIST_IDS_FIELD_NUMBER: _ClassVar[int]
    CODES_SCANNED_FIELD_NUMBER: _ClassVar[int]
    results: _common_pb2.TopK
    exact_scores: bytes
    lists_scanned: bytes
    skipped_offsets: bytes
    skipped_list_ids: bytes
    codes_scanned: int
    def __init__(self, results: _Optional[_Union[_common_pb2.TopK, _Mapping]] = ..., exact_scores: _Optional[bytes] = ..., lists_scanned: _Optional[bytes] = ..., skipped_offsets: _Optional[bytes] = ..., skipped_list_ids: _Optional[bytes] = ..., codes_scanned: _Optional[int] = ...) -> None: ...

class WorkerStatsRequest(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    def __init__(self, collection: _Optional[str] = ...) -> None: ...

class WorkerCollectionStats(_message.Message):
    __slots__ = ("collection", "model_version", "shard_map_version", "lists_owned", "vectors", "code_bytes", "raw_bytes", "queries_served", "damaged_records", "dead_rows")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SHARD_MAP_VERSION_FIELD_NUMBER: _ClassVar[int]
    LISTS_OWNED_FIELD_NUMBER: _ClassVar[int]
    VECTORS_FIELD_NUMBER: _ClassVar[int]
    CODE_BYTES_FIELD_NUMBER: _ClassVar[int]
    RAW_BYTES_FIELD_NUMBER: _ClassVar[int]
    QUERIES_SERVED_FIELD_NUMBER: _ClassVar[int]
    DAMAGED_RECORDS_FIELD_NUMBER: _ClassVar[int]
    DEAD_ROWS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    model_version: int
    shard_map_version: int
    lists_owned: int
    vectors: int
    code_bytes: int
    raw_bytes: int
    queries_served: int
    damaged_records: int
    dead_rows: int
    def __init__(self, collection: _Optional[str] = ..., model_version: _Optional[int] = ..., shard_map_version: _Optional[int] = ..., lists_owned: _Optional[int] = ..., vectors: _Optional[int] = ..., code_bytes: _Optional[int] = ..., raw_bytes: _Optional[int] = ..., queries_served: _Optional[int] = ..., damaged_records: _Optional[int] = ..., dead_rows: _Optional[int] = ...) -> None: ...

class WorkerStatsResponse(_message.Message):
    __slots__ = ("worker_id", "version", "folder_id", "vectors", "lists_owned", "bytes", "queries_served", "collections", "uptime_seconds", "search_address")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FOLDER_ID_FIELD_NUMBER: _ClassVar[int]
    VECTORS_FIELD_NUMBER: _ClassVar[int]
    LISTS_OWNED_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    QUERIES_SERVED_FIELD_NUMBER: _ClassVar[int]
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SEARCH_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    version: str
    folder_id: str
    vectors: int
    lists_owned: int
    bytes: int
    queries_served: int
    collections: _containers.RepeatedCompositeFieldContainer[WorkerCollectionStats]
    uptime_seconds: float
    search_address: str
    def __init__(self, worker_id: _Optional[str] = ..., version: _Optional[str] = ..., folder_id: _Optional[str] = ..., vectors: _Optional[int] = ..., lists_owned: _Optional[int] = ..., bytes: _Optional[int] = ..., queries_served: _Optional[int] = ..., collections: _Optional[_Iterable[_Union[WorkerCollectionStats, _Mapping]]] = ..., uptime_seconds: _Optional[float] = ..., search_address: _Optional[str] = ...) -> None: ...

class WorkerDropCollectionRequest(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    def __init__(self, collection: _Optional[str] = ...) -> None: ...

class WorkerDropCollectionResponse(_message.Message):
    __slots__ = ("existed", "bytes_freed")
    EXISTED_FIELD_NUMBER: _ClassVar[int]
    BYTES_FREED_FIELD_NUMBER: _ClassVar[int]
    existed: bool
    bytes_freed: int
    def __init__(self, existed: _Optional[bool] = ..., bytes_freed: _Optional[int] = ...) -> None: ...

class SearchListsStreamRequest(_message.Message):
    __slots__ = ("request_id", "search", "timeout_ms", "cancel")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SEARCH_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    search: SearchListsRequest
    timeout_ms: int
    cancel: bool
    def __init__(self, request_id: _Optional[int] = ..., search: _Optional[_Union[SearchListsRequest, _Mapping]] = ..., timeout_ms: _Optional[int] = ..., cancel: _Optional[bool] = ...) -> None: ...

class SearchListsStreamResponse(_message.Message):
    __slots__ = ("request_id", "result", "error")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    result: SearchListsResponse
    error: _common_pb2.CallError
    def __init__(self, request_id: _Optional[int] = ..., result: _Optional[_Union[SearchListsResponse, _Mapping]] = ..., error: _Optional[_Union[_common_pb2.CallError, _Mapping]] = ...) -> None: ...

class DeleteIDsRequest(_message.Message):
    __slots__ = ("collection", "model_version", "ids")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    model_version: int
    ids: bytes
    def __init__(self, collection: _Optional[str] = ..., model_version: _Optional[int] = ..., ids: _Optional[bytes] = ...) -> None: ...

class DeleteIDsResponse(_message.Message):
    __slots__ = ("removed", "removed_ids")
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    REMOVED_IDS_FIELD_NUMBER: _ClassVar[int]
    removed: int
    removed_ids: bytes
    def __init__(self, removed: _Optional[int] = ..., removed_ids: _Optional[bytes] = ...) -> None: ...

class LookupIDsRequest(_message.Message):
    __slots__ = ("collection", "model_version", "ids")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    model_version: int
    ids: bytes
    def __init__(self, collection: _Optional[str] = ..., model_version: _Optional[int] = ..., ids: _Optional[bytes] = ...) -> None: ...

class LookupIDsResponse(_message.Message):
    __slots__ = ("found_ids", "vectors")
    FOUND_IDS_FIELD_NUMBER: _ClassVar[int]
    VECTORS_FIELD_NUMBER: _ClassVar[int]
    found_ids: bytes
    vectors: bytes
    def __init__(self, found_ids: _Optional[bytes] = ..., vectors: _Optional[bytes] = ...) -> None: ...

class ExportListRequest(_message.Message):
    __slots__ = ("collection", "model_version", "list")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    LIST_FIELD_NUMBER: _ClassVar[int]
    collection: str
    model_version: int
    list: int
    def __init__(self, collection: _Optional[str] = ..., model_version: _Optional[int] = ..., list: _Optional[int] = ...) -> None: ...

class ListChunk(_message.Message):
    __slots__ = ("collection", "model_version", "list", "total_entries", "ids", "codes", "vectors")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    LIST_FIELD_NUMBER: _ClassVar[int]
    TOTAL_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    CODES_FIELD_NUMBER: _ClassVar[int]
    VECTORS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    model_version: int
    list: int
    total_entries: int
    ids: bytes
    codes: bytes
    vectors: bytes
    def __init__(self, collection: _Optional[str] = ..., model_version: _Optional[int] = ..., list: _Optional[int] = ..., total_entries: _Optional[int] = ..., ids: _Optional[bytes] = ..., codes: _Optional[bytes] = ..., vectors: _Optional[bytes] = ...) -> None: ...

class ImportListResponse(_message.Message):
    __slots__ = ("entries", "checksum")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    entries: int
    checksum: int
    def __init__(self, entries: _Optional[int] = ..., checksum: _Optional[int] = ...) -> None: ...

class ListDigestsRequest(_message.Message):
    __slots__ = ("collection", "model_version")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    model_version: int
    def __init__(self, collection: _Optional[str] = ..., model_version: _Optional[int] = ...) -> None: ...

class ListDigestsResponse(_message.Message):
    __slots__ = ("lists", "counts", "checksums")
    LISTS_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    CHECKSUMS_FIELD_NUMBER: _ClassVar[int]
    lists: bytes
    counts: bytes
    checksums: bytes
    def __init__(self, lists: _Optional[bytes] = ..., counts: _Optional[bytes] = ..., checksums: _Optional[bytes] = ...) -> None: ...

class CompactRequest(_message.Message):
    __slots__ = ("collection", "model_version")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    model_version: int
    def __init__(self, collection: _Optional[str] = ..., model_version: _Optional[int] = ...) -> None: ...

class CompactResponse(_message.Message):
    __slots__ = ("bytes_before", "bytes_after")
    BYTES_BEFORE_FIELD_NUMBER: _ClassVar[int]
    BYTES_AFTER_FIELD_NUMBER: _ClassVar[int]
    bytes_before: int
    bytes_after: int
    def __init__(self, bytes_before: _Optional[int] = ..., bytes_after: _Optional[int] = ...) -> None: ...
