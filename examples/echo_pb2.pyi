from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class SayRequest(_message.Message):
    __slots__ = ("text", "blob")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    BLOB_FIELD_NUMBER: _ClassVar[int]
    text: str
    blob: bytes
    def __init__(self, text: _Optional[str] = ..., blob: _Optional[bytes] = ...) -> None: ...

class SayReply(_message.Message):
    __slots__ = ("text", "blob", "served_by")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    BLOB_FIELD_NUMBER: _ClassVar[int]
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    text: str
    blob: bytes
    served_by: str
    def __init__(self, text: _Optional[str] = ..., blob: _Optional[bytes] = ..., served_by: _Optional[str] = ...) -> None: ...
