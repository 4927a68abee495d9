from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PayloadType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RPC_RELIABLE: _ClassVar[PayloadType]
    RPC_SIGNAL: _ClassVar[PayloadType]
    STREAM_RELIABLE: _ClassVar[PayloadType]
    STREAM_LATENCY_FIRST: _ClassVar[PayloadType]
    MEDIA_RTP: _ClassVar[PayloadType]

class Direction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIRECTION_UNSPECIFIED: _ClassVar[Direction]
    DIRECTION_REQUEST: _ClassVar[Direction]
    DIRECTION_RESPONSE: _ClassVar[Direction]
    DIRECTION_TELL: _ClassVar[Direction]

class RegisterAuthMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REGISTER_AUTH_MODE_UNSPECIFIED: _ClassVar[RegisterAuthMode]
    REGISTER_AUTH_MODE_PACKAGE: _ClassVar[RegisterAuthMode]
    REGISTER_AUTH_MODE_LINKED: _ClassVar[RegisterAuthMode]
RPC_RELIABLE: PayloadType
RPC_SIGNAL: PayloadType
STREAM_RELIABLE: PayloadType
STREAM_LATENCY_FIRST: PayloadType
MEDIA_RTP: PayloadType
DIRECTION_UNSPECIFIED: Direction
DIRECTION_REQUEST: Direction
DIRECTION_RESPONSE: Direction
DIRECTION_TELL: Direction
REGISTER_AUTH_MODE_UNSPECIFIED: RegisterAuthMode
REGISTER_AUTH_MODE_PACKAGE: RegisterAuthMode
REGISTER_AUTH_MODE_LINKED: RegisterAuthMode

class Realm(_message.Message):
    __slots__ = ("realm_id",)
    REALM_ID_FIELD_NUMBER: _ClassVar[int]
    realm_id: int
    def __init__(self, realm_id: _Optional[int] = ...) -> None: ...

class ActrType(_message.Message):
    __slots__ = ("manufacturer", "name", "version")
    MANUFACTURER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    manufacturer: str
    name: str
    version: str
    def __init__(self, manufacturer: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class ActrId(_message.Message):
    __slots__ = ("realm", "serial_number", "type")
    REALM_FIELD_NUMBER: _ClassVar[int]
    SERIAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    realm: Realm
    serial_number: int
    type: ActrType
    def __init__(self, realm: _Optional[_Union[Realm, _Mapping]] = ..., serial_number: _Optional[int] = ..., type: _Optional[_Union[ActrType, _Mapping]] = ...) -> None: ...

class ErrorResponse(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class MetadataEntry(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: str
    def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class RpcEnvelope(_message.Message):
    __slots__ = ("route_key", "payload", "error", "direction", "traceparent", "tracestate", "request_id", "metadata", "timeout_ms")
    ROUTE_KEY_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    TRACESTATE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    route_key: str
    payload: bytes
    error: ErrorResponse
    direction: Direction
    traceparent: str
    tracestate: str
    request_id: str
    metadata: _containers.RepeatedCompositeFieldContainer[MetadataEntry]
    timeout_ms: int
    def __init__(self, route_key: _Optional[str] = ..., payload: _Optional[bytes] = ..., error: _Optional[_Union[ErrorResponse, _Mapping]] = ..., direction: _Optional[_Union[Direction, str]] = ..., traceparent: _Optional[str] = ..., tracestate: _Optional[str] = ..., request_id: _Optional[str] = ..., metadata: _Optional[_Iterable[_Union[MetadataEntry, _Mapping]]] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class DataStream(_message.Message):
    __slots__ = ("stream_id", "sequence", "payload", "metadata", "timestamp_ms", "end_of_stream", "control")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    END_OF_STREAM_FIELD_NUMBER: _ClassVar[int]
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    sequence: int
    payload: bytes
    metadata: _containers.RepeatedCompositeFieldContainer[MetadataEntry]
    timestamp_ms: int
    end_of_stream: bool
    control: StreamControl
    def __init__(self, stream_id: _Optional[str] = ..., sequence: _Optional[int] = ..., payload: _Optional[bytes] = ..., metadata: _Optional[_Iterable[_Union[MetadataEntry, _Mapping]]] = ..., timestamp_ms: _Optional[int] = ..., end_of_stream: _Optional[bool] = ..., control: _Optional[_Union[StreamControl, _Mapping]] = ...) -> None: ...

class StreamControl(_message.Message):
    __slots__ = ("credit_limit", "reset", "from_receiver")
    CREDIT_LIMIT_FIELD_NUMBER: _ClassVar[int]
    RESET_FIELD_NUMBER: _ClassVar[int]
    FROM_RECEIVER_FIELD_NUMBER: _ClassVar[int]
    credit_limit: int
    reset: ErrorResponse
    from_receiver: bool
    def __init__(self, credit_limit: _Optional[int] = ..., reset: _Optional[_Union[ErrorResponse, _Mapping]] = ..., from_receiver: _Optional[bool] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("features", "stream_window")
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    STREAM_WINDOW_FIELD_NUMBER: _ClassVar[int]
    features: _containers.RepeatedScalarFieldContainer[str]
    stream_window: int
    def __init__(self, features: _Optional[_Iterable[str]] = ..., stream_window: _Optional[int] = ...) -> None: ...

class CancelCall(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    def __init__(self, request_id: _Optional[str] = ...) -> None: ...

class IdentityClaims(_message.Message):
    __slots__ = ("realm_id", "actor_id", "expires_at")
    REALM_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    realm_id: int
    actor_id: str
    expires_at: int
    def __init__(self, realm_id: _Optional[int] = ..., actor_id: _Optional[str] = ..., expires_at: _Optional[int] = ...) -> None: ...

class AIdCredential(_message.Message):
    __slots__ = ("key_id", "claims", "signature")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    CLAIMS_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    key_id: int
    claims: bytes
    signature: bytes
    def __init__(self, key_id: _Optional[int] = ..., claims: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class TurnCredential(_message.Message):
    __slots__ = ("username", "password", "expires_at")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    username: str
    password: str
    expires_at: int
    def __init__(self, username: _Optional[str] = ..., password: _Optional[str] = ..., expires_at: _Optional[int] = ...) -> None: ...

class AclRule(_message.Message):
    __slots__ = ("permission", "from_type", "any_realm", "realm_id")
    class Permission(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        DENY: _ClassVar[AclRule.Permission]
        ALLOW: _ClassVar[AclRule.Permission]
    DENY: AclRule.Permission
    ALLOW: AclRule.Permission
    PERMISSION_FIELD_NUMBER: _ClassVar[int]
    FROM_TYPE_FIELD_NUMBER: _ClassVar[int]
    ANY_REALM_FIELD_NUMBER: _ClassVar[int]
    REALM_ID_FIELD_NUMBER: _ClassVar[int]
    permission: AclRule.Permission
    from_type: ActrType
    any_realm: bool
    realm_id: int
    def __init__(self, permission: _Optional[_Union[AclRule.Permission, str]] = ..., from_type: _Optional[_Union[ActrType, _Mapping]] = ..., any_realm: _Optional[bool] = ..., realm_id: _Optional[int] = ...) -> None: ...

class Acl(_message.Message):
    __slots__ = ("rules",)
    RULES_FIELD_NUMBER: _ClassVar[int]
    rules: _containers.RepeatedCompositeFieldContainer[AclRule]
    def __init__(self, rules: _Optional[_Iterable[_Union[AclRule, _Mapping]]] = ...) -> None: ...

class ServiceSpec(_message.Message):
    __slots__ = ("name", "description", "fingerprint", "protobufs", "published_at", "tags")
    class Protobuf(_message.Message):
        __slots__ = ("package", "content", "fingerprint")
        PACKAGE_FIELD_NUMBER: _ClassVar[int]
        CONTENT_FIELD_NUMBER: _ClassVar[int]
        FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
        package: str
        content: str
        fingerprint: str
        def __init__(self, package: _Optional[str] = ..., content: _Optional[str] = ..., fingerprint: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    PROTOBUFS_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_AT_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    fingerprint: str
    protobufs: _containers.RepeatedCompositeFieldContainer[ServiceSpec.Protobuf]
    published_at: int
    tags: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., fingerprint: _Optional[str] = ..., protobufs: _Optional[_Iterable[_Union[ServiceSpec.Protobuf, _Mapping]]] = ..., published_at: _Optional[int] = ..., tags: _Optional[_Iterable[str]] = ...) -> None: ...

class GetServiceSpecRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetServiceSpecResponse(_message.Message):
    __slots__ = ("success", "error")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    success: ServiceSpec
    error: ErrorResponse
    def __init__(self, success: _Optional[_Union[ServiceSpec, _Mapping]] = ..., error: _Optional[_Union[ErrorResponse, _Mapping]] = ...) -> None: ...

class RegisterRequest(_message.Message):
    __slots__ = ("actr_type", "realm", "service_spec", "acl", "service", "auth_mode")
    ACTR_TYPE_FIELD_NUMBER: _ClassVar[int]
    REALM_FIELD_NUMBER: _ClassVar[int]
    SERVICE_SPEC_FIELD_NUMBER: _ClassVar[int]
    ACL_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    AUTH_MODE_FIELD_NUMBER: _ClassVar[int]
    actr_type: ActrType
    realm: Realm
    service_spec: ServiceSpec
    acl: Acl
    service: str
    auth_mode: RegisterAuthMode
    def __init__(self, actr_type: _Optional[_Union[ActrType, _Mapping]] = ..., realm: _Optional[_Union[Realm, _Mapping]] = ..., service_spec: _Optional[_Union[ServiceSpec, _Mapping]] = ..., acl: _Optional[_Union[Acl, _Mapping]] = ..., service: _Optional[str] = ..., auth_mode: _Optional[_Union[RegisterAuthMode, str]] = ...) -> None: ...

class RegisterOk(_message.Message):
    __slots__ = ("actr_id", "credential", "turn_credential", "signaling_heartbeat_interval_secs", "signing_pubkey", "signing_key_id", "renewal_token", "turn_urls")
    ACTR_ID_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    TURN_CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    SIGNALING_HEARTBEAT_INTERVAL_SECS_FIELD_NUMBER: _ClassVar[int]
    SIGNING_PUBKEY_FIELD_NUMBER: _ClassVar[int]
    SIGNING_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    RENEWAL_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TURN_URLS_FIELD_NUMBER: _ClassVar[int]
    actr_id: ActrId
    credential: AIdCredential
    turn_credential: TurnCredential
    signaling_heartbeat_interval_secs: int
    signing_pubkey: bytes
    signing_key_id: int
    renewal_token: bytes
    turn_urls: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, actr_id: _Optional[_Union[ActrId, _Mapping]] = ..., credential: _Optional[_Union[AIdCredential, _Mapping]] = ..., turn_credential: _Optional[_Union[TurnCredential, _Mapping]] = ..., signaling_heartbeat_interval_secs: _Optional[int] = ..., signing_pubkey: _Optional[bytes] = ..., signing_key_id: _Optional[int] = ..., renewal_token: _Optional[bytes] = ..., turn_urls: _Optional[_Iterable[str]] = ...) -> None: ...

class RegisterResponse(_message.Message):
    __slots__ = ("success", "error")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    success: RegisterOk
    error: ErrorResponse
    def __init__(self, success: _Optional[_Union[RegisterOk, _Mapping]] = ..., error: _Optional[_Union[ErrorResponse, _Mapping]] = ...) -> None: ...

class RenewCredentialRequest(_message.Message):
    __slots__ = ("actr_id", "renewal_token")
    ACTR_ID_FIELD_NUMBER: _ClassVar[int]
    RENEWAL_TOKEN_FIELD_NUMBER: _ClassVar[int]
    actr_id: ActrId
    renewal_token: bytes
    def __init__(self, actr_id: _Optional[_Union[ActrId, _Mapping]] = ..., renewal_token: _Optional[bytes] = ...) -> None: ...

class SigningPubkey(_message.Message):
    __slots__ = ("key_id", "public_key")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    key_id: int
    public_key: bytes
    def __init__(self, key_id: _Optional[int] = ..., public_key: _Optional[bytes] = ...) -> None: ...
