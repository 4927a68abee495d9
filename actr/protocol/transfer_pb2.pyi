from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class TransferStatusRequest(_message.Message):
    __slots__ = ("transfer_id",)
    TRANSFER_ID_FIELD_NUMBER: _ClassVar[int]
    transfer_id: str
    def __init__(self, transfer_id: _Optional[str] = ...) -> None: ...

class TransferStatus(_message.Message):
    __slots__ = ("offset", "complete", "size", "sha256")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    offset: int
    complete: bool
    size: int
    sha256: str
    def __init__(self, offset: _Optional[int] = ..., complete: _Optional[bool] = ..., size: _Optional[int] = ..., sha256: _Optional[str] = ...) -> None: ...

class TransferCommit(_message.Message):
    __slots__ = ("transfer_id", "size", "sha256", "name")
    TRANSFER_ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    transfer_id: str
    size: int
    sha256: str
    name: str
    def __init__(self, transfer_id: _Optional[str] = ..., size: _Optional[int] = ..., sha256: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class TransferDone(_message.Message):
    __slots__ = ("size", "sha256", "name")
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    size: int
    sha256: str
    name: str
    def __init__(self, size: _Optional[int] = ..., sha256: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...
