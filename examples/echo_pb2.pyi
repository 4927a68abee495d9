from typing import ClassVar as _ClassVar

from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message

DESCRIPTOR: _descriptor.FileDescriptor

class SayRequest(_message.Message):
    __slots__ = ("blob", "text")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    BLOB_FIELD_NUMBER: _ClassVar[int]
    text: str
    blob: bytes
    def __init__(self, text: str | None = ..., blob: bytes | None = ...) -> None: ...

class SayReply(_message.Message):
    __slots__ = ("blob", "served_by", "text")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    BLOB_FIELD_NUMBER: _ClassVar[int]
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    text: str
    blob: bytes
    served_by: str
    def __init__(
        self, text: str | None = ..., blob: bytes | None = ..., served_by: str | None = ...
    ) -> None: ...
