from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Priority(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRIORITY_UNSPECIFIED: _ClassVar[Priority]
    PRIORITY_LOW: _ClassVar[Priority]
    PRIORITY_HIGH: _ClassVar[Priority]
PRIORITY_UNSPECIFIED: Priority
PRIORITY_LOW: Priority
PRIORITY_HIGH: Priority

class Address(_message.Message):
    __slots__ = ("street", "city")
    STREET_FIELD_NUMBER: _ClassVar[int]
    CITY_FIELD_NUMBER: _ClassVar[int]
    street: str
    city: str
    def __init__(self, street: _Optional[str] = ..., city: _Optional[str] = ...) -> None: ...

class Item(_message.Message):
    __slots__ = ("sku", "quantity", "attachment")
    SKU_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENT_FIELD_NUMBER: _ClassVar[int]
    sku: str
    quantity: int
    attachment: bytes
    def __init__(self, sku: _Optional[str] = ..., quantity: _Optional[int] = ..., attachment: _Optional[bytes] = ...) -> None: ...

class PlaceOrder(_message.Message):
    __slots__ = ("customer", "items", "priority", "ship_to", "notes", "tags")
    class NotesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    SHIP_TO_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    customer: str
    items: _containers.RepeatedCompositeFieldContainer[Item]
    priority: Priority
    ship_to: Address
    notes: _containers.ScalarMap[str, str]
    tags: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, customer: _Optional[str] = ..., items: _Optional[_Iterable[_Union[Item, _Mapping]]] = ..., priority: _Optional[_Union[Priority, str]] = ..., ship_to: _Optional[_Union[Address, _Mapping]] = ..., notes: _Optional[_Mapping[str, str]] = ..., tags: _Optional[_Iterable[str]] = ...) -> None: ...

class OrderPlaced(_message.Message):
    __slots__ = ("order_id", "status", "lines", "total_quantity", "priority", "ship_to", "tags", "notes")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATUS_UNSPECIFIED: _ClassVar[OrderPlaced.Status]
        STATUS_ACCEPTED: _ClassVar[OrderPlaced.Status]
        STATUS_HELD: _ClassVar[OrderPlaced.Status]
    STATUS_UNSPECIFIED: OrderPlaced.Status
    STATUS_ACCEPTED: OrderPlaced.Status
    STATUS_HELD: OrderPlaced.Status
    class Line(_message.Message):
        __slots__ = ("sku", "quantity", "attachment_sha256")
        SKU_FIELD_NUMBER: _ClassVar[int]
        QUANTITY_FIELD_NUMBER: _ClassVar[int]
        ATTACHMENT_SHA256_FIELD_NUMBER: _ClassVar[int]
        sku: str
        quantity: int
        attachment_sha256: bytes
        def __init__(self, sku: _Optional[str] = ..., quantity: _Optional[int] = ..., attachment_sha256: _Optional[bytes] = ...) -> None: ...
    class NotesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    SHIP_TO_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    status: OrderPlaced.Status
    lines: _containers.RepeatedCompositeFieldContainer[OrderPlaced.Line]
    total_quantity: int
    priority: Priority
    ship_to: Address
    tags: _containers.RepeatedScalarFieldContainer[str]
    notes: _containers.ScalarMap[str, str]
    def __init__(self, order_id: _Optional[str] = ..., status: _Optional[_Union[OrderPlaced.Status, str]] = ..., lines: _Optional[_Iterable[_Union[OrderPlaced.Line, _Mapping]]] = ..., total_quantity: _Optional[int] = ..., priority: _Optional[_Union[Priority, str]] = ..., ship_to: _Optional[_Union[Address, _Mapping]] = ..., tags: _Optional[_Iterable[str]] = ..., notes: _Optional[_Mapping[str, str]] = ...) -> None: ...
