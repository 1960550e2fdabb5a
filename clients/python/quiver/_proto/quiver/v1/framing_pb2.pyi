from quiver._proto.quiver.v1 import common_pb2 as _common_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FrameHello(_message.Message):
    __slots__ = ("version", "method", "token")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    version: int
    method: str
    token: str
    def __init__(self, version: _Optional[int] = ..., method: _Optional[str] = ..., token: _Optional[str] = ...) -> None: ...

class FrameHelloAnswer(_message.Message):
    __slots__ = ("error", "max_frame_bytes", "max_in_flight")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    MAX_FRAME_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    error: _common_pb2.CallError
    max_frame_bytes: int
    max_in_flight: int
    def __init__(self, error: _Optional[_Union[_common_pb2.CallError, _Mapping]] = ..., max_frame_bytes: _Optional[int] = ..., max_in_flight: _Optional[int] = ...) -> None: ...
