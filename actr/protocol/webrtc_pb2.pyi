from actr.protocol import actr_pb2 as _actr_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IceCandidate(_message.Message):
    __slots__ = ("candidate", "sdp_mid", "sdp_mline_index", "username_fragment")
    CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    SDP_MID_FIELD_NUMBER: _ClassVar[int]
    SDP_MLINE_INDEX_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FRAGMENT_FIELD_NUMBER: _ClassVar[int]
    candidate: str
    sdp_mid: str
    sdp_mline_index: int
    username_fragment: str
    def __init__(self, candidate: _Optional[str] = ..., sdp_mid: _Optional[str] = ..., sdp_mline_index: _Optional[int] = ..., username_fragment: _Optional[str] = ...) -> None: ...

class SessionDescription(_message.Message):
    __slots__ = ("type", "sdp", "sdp_exchange_id")
    class Type(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        OFFER: _ClassVar[SessionDescription.Type]
        ANSWER: _ClassVar[SessionDescription.Type]
        RENEGOTIATION_OFFER: _ClassVar[SessionDescription.Type]
        ICE_RESTART_OFFER: _ClassVar[SessionDescription.Type]
    OFFER: SessionDescription.Type
    ANSWER: SessionDescription.Type
    RENEGOTIATION_OFFER: SessionDescription.Type
    ICE_RESTART_OFFER: SessionDescription.Type
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SDP_FIELD_NUMBER: _ClassVar[int]
    SDP_EXCHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    type: SessionDescription.Type
    sdp: str
    sdp_exchange_id: str
    def __init__(self, type: _Optional[_Union[SessionDescription.Type, str]] = ..., sdp: _Optional[str] = ..., sdp_exchange_id: _Optional[str] = ...) -> None: ...

class RoleNegotiation(_message.Message):
    __slots__ = ("to", "realm_id")
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    REALM_ID_FIELD_NUMBER: _ClassVar[int]
    to: _actr_pb2.ActrId
    realm_id: int
    def __init__(self, to: _Optional[_Union[_actr_pb2.ActrId, _Mapping]] = ..., realm_id: _Optional[int] = ..., **kwargs) -> None: ...

class RoleAssignment(_message.Message):
    __slots__ = ("is_offerer", "remote_fixed")
    IS_OFFERER_FIELD_NUMBER: _ClassVar[int]
    REMOTE_FIXED_FIELD_NUMBER: _ClassVar[int]
    is_offerer: bool
    remote_fixed: bool
    def __init__(self, is_offerer: _Optional[bool] = ..., remote_fixed: _Optional[bool] = ...) -> None: ...

class IceRestartRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
