from actr.protocol import actr_pb2 as _actr_pb2
from actr.protocol import webrtc_pb2 as _webrtc_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ServiceAvailabilityState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FULL: _ClassVar[ServiceAvailabilityState]
    DEGRADED: _ClassVar[ServiceAvailabilityState]
    OVERLOADED: _ClassVar[ServiceAvailabilityState]
    UNAVAILABLE: _ClassVar[ServiceAvailabilityState]
FULL: ServiceAvailabilityState
DEGRADED: ServiceAvailabilityState
OVERLOADED: ServiceAvailabilityState
UNAVAILABLE: ServiceAvailabilityState

class Ping(_message.Message):
    __slots__ = ("availability", "power_reserve", "mailbox_backlog")
    AVAILABILITY_FIELD_NUMBER: _ClassVar[int]
    POWER_RESERVE_FIELD_NUMBER: _ClassVar[int]
    MAILBOX_BACKLOG_FIELD_NUMBER: _ClassVar[int]
    availability: ServiceAvailabilityState
    power_reserve: float
    mailbox_backlog: float
    def __init__(self, availability: _Optional[_Union[ServiceAvailabilityState, str]] = ..., power_reserve: _Optional[float] = ..., mailbox_backlog: _Optional[float] = ...) -> None: ...

class Pong(_message.Message):
    __slots__ = ("seq", "suggest_interval_secs")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    SUGGEST_INTERVAL_SECS_FIELD_NUMBER: _ClassVar[int]
    seq: int
    suggest_interval_secs: int
    def __init__(self, seq: _Optional[int] = ..., suggest_interval_secs: _Optional[int] = ...) -> None: ...

class UnregisterRequest(_message.Message):
    __slots__ = ("actr_id", "reason")
    ACTR_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    actr_id: _actr_pb2.ActrId
    reason: str
    def __init__(self, actr_id: _Optional[_Union[_actr_pb2.ActrId, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class UnregisterResponse(_message.Message):
    __slots__ = ("success", "error")
    class UnregisterOk(_message.Message):
        __slots__ = ()
        def __init__(self) -> None: ...
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    success: UnregisterResponse.UnregisterOk
    error: _actr_pb2.ErrorResponse
    def __init__(self, success: _Optional[_Union[UnregisterResponse.UnregisterOk, _Mapping]] = ..., error: _Optional[_Union[_actr_pb2.ErrorResponse, _Mapping]] = ...) -> None: ...

class RouteCandidatesRequest(_message.Message):
    __slots__ = ("target_type", "criteria", "client_fingerprint")
    class NodeSelectionCriteria(_message.Message):
        __slots__ = ("candidate_count",)
        CANDIDATE_COUNT_FIELD_NUMBER: _ClassVar[int]
        candidate_count: int
        def __init__(self, candidate_count: _Optional[int] = ...) -> None: ...
    TARGET_TYPE_FIELD_NUMBER: _ClassVar[int]
    CRITERIA_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    target_type: _actr_pb2.ActrType
    criteria: RouteCandidatesRequest.NodeSelectionCriteria
    client_fingerprint: str
    def __init__(self, target_type: _Optional[_Union[_actr_pb2.ActrType, _Mapping]] = ..., criteria: _Optional[_Union[RouteCandidatesRequest.NodeSelectionCriteria, _Mapping]] = ..., client_fingerprint: _Optional[str] = ...) -> None: ...

class RouteCandidatesResponse(_message.Message):
    __slots__ = ("success", "error")
    class Ok(_message.Message):
        __slots__ = ("candidates",)
        CANDIDATES_FIELD_NUMBER: _ClassVar[int]
        candidates: _containers.RepeatedCompositeFieldContainer[_actr_pb2.ActrId]
        def __init__(self, candidates: _Optional[_Iterable[_Union[_actr_pb2.ActrId, _Mapping]]] = ...) -> None: ...
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    success: RouteCandidatesResponse.Ok
    error: _actr_pb2.ErrorResponse
    def __init__(self, success: _Optional[_Union[RouteCandidatesResponse.Ok, _Mapping]] = ..., error: _Optional[_Union[_actr_pb2.ErrorResponse, _Mapping]] = ...) -> None: ...

class DiscoveryRequest(_message.Message):
    __slots__ = ("manufacturer", "limit")
    MANUFACTURER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    manufacturer: str
    limit: int
    def __init__(self, manufacturer: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class DiscoveryResponse(_message.Message):
    __slots__ = ("success", "error")
    class TypeEntry(_message.Message):
        __slots__ = ("actr_type", "name", "service_fingerprint")
        ACTR_TYPE_FIELD_NUMBER: _ClassVar[int]
        NAME_FIELD_NUMBER: _ClassVar[int]
        SERVICE_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
        actr_type: _actr_pb2.ActrType
        name: str
        service_fingerprint: str
        def __init__(self, actr_type: _Optional[_Union[_actr_pb2.ActrType, _Mapping]] = ..., name: _Optional[str] = ..., service_fingerprint: _Optional[str] = ...) -> None: ...
    class Ok(_message.Message):
        __slots__ = ("entries",)
        ENTRIES_FIELD_NUMBER: _ClassVar[int]
        entries: _containers.RepeatedCompositeFieldContainer[DiscoveryResponse.TypeEntry]
        def __init__(self, entries: _Optional[_Iterable[_Union[DiscoveryResponse.TypeEntry, _Mapping]]] = ...) -> None: ...
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    success: DiscoveryResponse.Ok
    error: _actr_pb2.ErrorResponse
    def __init__(self, success: _Optional[_Union[DiscoveryResponse.Ok, _Mapping]] = ..., error: _Optional[_Union[_actr_pb2.ErrorResponse, _Mapping]] = ...) -> None: ...

class SubscribeActrUpRequest(_message.Message):
    __slots__ = ("target_type",)
    TARGET_TYPE_FIELD_NUMBER: _ClassVar[int]
    target_type: _actr_pb2.ActrType
    def __init__(self, target_type: _Optional[_Union[_actr_pb2.ActrType, _Mapping]] = ...) -> None: ...

class SubscribeActrUpResponse(_message.Message):
    __slots__ = ("success", "error")
    class SubscribeOk(_message.Message):
        __slots__ = ()
        def __init__(self) -> None: ...
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    success: SubscribeActrUpResponse.SubscribeOk
    error: _actr_pb2.ErrorResponse
    def __init__(self, success: _Optional[_Union[SubscribeActrUpResponse.SubscribeOk, _Mapping]] = ..., error: _Optional[_Union[_actr_pb2.ErrorResponse, _Mapping]] = ...) -> None: ...

class UnsubscribeActrUpRequest(_message.Message):
    __slots__ = ("target_type",)
    TARGET_TYPE_FIELD_NUMBER: _ClassVar[int]
    target_type: _actr_pb2.ActrType
    def __init__(self, target_type: _Optional[_Union[_actr_pb2.ActrType, _Mapping]] = ...) -> None: ...

class UnsubscribeActrUpResponse(_message.Message):
    __slots__ = ("success", "error")
    class UnsubscribeOk(_message.Message):
        __slots__ = ()
        def __init__(self) -> None: ...
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    success: UnsubscribeActrUpResponse.UnsubscribeOk
    error: _actr_pb2.ErrorResponse
    def __init__(self, success: _Optional[_Union[UnsubscribeActrUpResponse.UnsubscribeOk, _Mapping]] = ..., error: _Optional[_Union[_actr_pb2.ErrorResponse, _Mapping]] = ...) -> None: ...

class ActrUpEvent(_message.Message):
    __slots__ = ("actor_id",)
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    actor_id: _actr_pb2.ActrId
    def __init__(self, actor_id: _Optional[_Union[_actr_pb2.ActrId, _Mapping]] = ...) -> None: ...

class ActrDownEvent(_message.Message):
    __slots__ = ("actor_id",)
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    actor_id: _actr_pb2.ActrId
    def __init__(self, actor_id: _Optional[_Union[_actr_pb2.ActrId, _Mapping]] = ...) -> None: ...

class GetSigningKeyRequest(_message.Message):
    __slots__ = ("key_id",)
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    key_id: int
    def __init__(self, key_id: _Optional[int] = ...) -> None: ...

class GetSigningKeyResponse(_message.Message):
    __slots__ = ("key_id", "pubkey")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PUBKEY_FIELD_NUMBER: _ClassVar[int]
    key_id: int
    pubkey: bytes
    def __init__(self, key_id: _Optional[int] = ..., pubkey: _Optional[bytes] = ...) -> None: ...

class PeerToSignaling(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ActrToSignaling(_message.Message):
    __slots__ = ("source", "credential", "unregister_request", "ping", "discovery_request", "route_candidates_request", "get_service_spec_request", "get_signing_key_request", "subscribe_actr_up_request", "unsubscribe_actr_up_request", "error")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    UNREGISTER_REQUEST_FIELD_NUMBER: _ClassVar[int]
    PING_FIELD_NUMBER: _ClassVar[int]
    DISCOVERY_REQUEST_FIELD_NUMBER: _ClassVar[int]
    ROUTE_CANDIDATES_REQUEST_FIELD_NUMBER: _ClassVar[int]
    GET_SERVICE_SPEC_REQUEST_FIELD_NUMBER: _ClassVar[int]
    GET_SIGNING_KEY_REQUEST_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBE_ACTR_UP_REQUEST_FIELD_NUMBER: _ClassVar[int]
    UNSUBSCRIBE_ACTR_UP_REQUEST_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    source: _actr_pb2.ActrId
    credential: _actr_pb2.AIdCredential
    unregister_request: UnregisterRequest
    ping: Ping
    discovery_request: DiscoveryRequest
    route_candidates_request: RouteCandidatesRequest
    get_service_spec_request: _actr_pb2.GetServiceSpecRequest
    get_signing_key_request: GetSigningKeyRequest
    subscribe_actr_up_request: SubscribeActrUpRequest
    unsubscribe_actr_up_request: UnsubscribeActrUpRequest
    error: _actr_pb2.ErrorResponse
    def __init__(self, source: _Optional[_Union[_actr_pb2.ActrId, _Mapping]] = ..., credential: _Optional[_Union[_actr_pb2.AIdCredential, _Mapping]] = ..., unregister_request: _Optional[_Union[UnregisterRequest, _Mapping]] = ..., ping: _Optional[_Union[Ping, _Mapping]] = ..., discovery_request: _Optional[_Union[DiscoveryRequest, _Mapping]] = ..., route_candidates_request: _Optional[_Union[RouteCandidatesRequest, _Mapping]] = ..., get_service_spec_request: _Optional[_Union[_actr_pb2.GetServiceSpecRequest, _Mapping]] = ..., get_signing_key_request: _Optional[_Union[GetSigningKeyRequest, _Mapping]] = ..., subscribe_actr_up_request: _Optional[_Union[SubscribeActrUpRequest, _Mapping]] = ..., unsubscribe_actr_up_request: _Optional[_Union[UnsubscribeActrUpRequest, _Mapping]] = ..., error: _Optional[_Union[_actr_pb2.ErrorResponse, _Mapping]] = ...) -> None: ...

class SignalingToActr(_message.Message):
    __slots__ = ("target", "unregister_response", "pong", "discovery_response", "route_candidates_response", "get_service_spec_response", "get_signing_key_response", "subscribe_actr_up_response", "unsubscribe_actr_up_response", "actr_up_event", "error", "actr_down_event")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    UNREGISTER_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    PONG_FIELD_NUMBER: _ClassVar[int]
    DISCOVERY_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ROUTE_CANDIDATES_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    GET_SERVICE_SPEC_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    GET_SIGNING_KEY_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBE_ACTR_UP_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    UNSUBSCRIBE_ACTR_UP_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ACTR_UP_EVENT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ACTR_DOWN_EVENT_FIELD_NUMBER: _ClassVar[int]
    target: _actr_pb2.ActrId
    unregister_response: UnregisterResponse
    pong: Pong
    discovery_response: DiscoveryResponse
    route_candidates_response: RouteCandidatesResponse
    get_service_spec_response: _actr_pb2.GetServiceSpecResponse
    get_signing_key_response: GetSigningKeyResponse
    subscribe_actr_up_response: SubscribeActrUpResponse
    unsubscribe_actr_up_response: UnsubscribeActrUpResponse
    actr_up_event: ActrUpEvent
    error: _actr_pb2.ErrorResponse
    actr_down_event: ActrDownEvent
    def __init__(self, target: _Optional[_Union[_actr_pb2.ActrId, _Mapping]] = ..., unregister_response: _Optional[_Union[UnregisterResponse, _Mapping]] = ..., pong: _Optional[_Union[Pong, _Mapping]] = ..., discovery_response: _Optional[_Union[DiscoveryResponse, _Mapping]] = ..., route_candidates_response: _Optional[_Union[RouteCandidatesResponse, _Mapping]] = ..., get_service_spec_response: _Optional[_Union[_actr_pb2.GetServiceSpecResponse, _Mapping]] = ..., get_signing_key_response: _Optional[_Union[GetSigningKeyResponse, _Mapping]] = ..., subscribe_actr_up_response: _Optional[_Union[SubscribeActrUpResponse, _Mapping]] = ..., unsubscribe_actr_up_response: _Optional[_Union[UnsubscribeActrUpResponse, _Mapping]] = ..., actr_up_event: _Optional[_Union[ActrUpEvent, _Mapping]] = ..., error: _Optional[_Union[_actr_pb2.ErrorResponse, _Mapping]] = ..., actr_down_event: _Optional[_Union[ActrDownEvent, _Mapping]] = ...) -> None: ...

class ActrRelay(_message.Message):
    __slots__ = ("source", "credential", "target", "ice_candidate", "session_description", "role_negotiation", "role_assignment", "ice_restart_request")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    ICE_CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    SESSION_DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ROLE_NEGOTIATION_FIELD_NUMBER: _ClassVar[int]
    ROLE_ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    ICE_RESTART_REQUEST_FIELD_NUMBER: _ClassVar[int]
    source: _actr_pb2.ActrId
    credential: _actr_pb2.AIdCredential
    target: _actr_pb2.ActrId
    ice_candidate: _webrtc_pb2.IceCandidate
    session_description: _webrtc_pb2.SessionDescription
    role_negotiation: _webrtc_pb2.RoleNegotiation
    role_assignment: _webrtc_pb2.RoleAssignment
    ice_restart_request: _webrtc_pb2.IceRestartRequest
    def __init__(self, source: _Optional[_Union[_actr_pb2.ActrId, _Mapping]] = ..., credential: _Optional[_Union[_actr_pb2.AIdCredential, _Mapping]] = ..., target: _Optional[_Union[_actr_pb2.ActrId, _Mapping]] = ..., ice_candidate: _Optional[_Union[_webrtc_pb2.IceCandidate, _Mapping]] = ..., session_description: _Optional[_Union[_webrtc_pb2.SessionDescription, _Mapping]] = ..., role_negotiation: _Optional[_Union[_webrtc_pb2.RoleNegotiation, _Mapping]] = ..., role_assignment: _Optional[_Union[_webrtc_pb2.RoleAssignment, _Mapping]] = ..., ice_restart_request: _Optional[_Union[_webrtc_pb2.IceRestartRequest, _Mapping]] = ...) -> None: ...

class SignalingEnvelope(_message.Message):
    __slots__ = ("envelope_version", "envelope_id", "reply_for", "traceparent", "tracestate", "peer_to_server", "actr_to_server", "server_to_actr", "actr_relay", "envelope_error")
    ENVELOPE_VERSION_FIELD_NUMBER: _ClassVar[int]
    ENVELOPE_ID_FIELD_NUMBER: _ClassVar[int]
    REPLY_FOR_FIELD_NUMBER: _ClassVar[int]
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    TRACESTATE_FIELD_NUMBER: _ClassVar[int]
    PEER_TO_SERVER_FIELD_NUMBER: _ClassVar[int]
    ACTR_TO_SERVER_FIELD_NUMBER: _ClassVar[int]
    SERVER_TO_ACTR_FIELD_NUMBER: _ClassVar[int]
    ACTR_RELAY_FIELD_NUMBER: _ClassVar[int]
    ENVELOPE_ERROR_FIELD_NUMBER: _ClassVar[int]
    envelope_version: int
    envelope_id: str
    reply_for: str
    traceparent: str
    tracestate: str
    peer_to_server: PeerToSignaling
    actr_to_server: ActrToSignaling
    server_to_actr: SignalingToActr
    actr_relay: ActrRelay
    envelope_error: _actr_pb2.ErrorResponse
    def __init__(self, envelope_version: _Optional[int] = ..., envelope_id: _Optional[str] = ..., reply_for: _Optional[str] = ..., traceparent: _Optional[str] = ..., tracestate: _Optional[str] = ..., peer_to_server: _Optional[_Union[PeerToSignaling, _Mapping]] = ..., actr_to_server: _Optional[_Union[ActrToSignaling, _Mapping]] = ..., server_to_actr: _Optional[_Union[SignalingToActr, _Mapping]] = ..., actr_relay: _Optional[_Union[ActrRelay, _Mapping]] = ..., envelope_error: _Optional[_Union[_actr_pb2.ErrorResponse, _Mapping]] = ...) -> None: ...
