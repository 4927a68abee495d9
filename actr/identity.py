"""ActrType / ActrId text forms (PROTOCOL.md ID-1) and the offerer rule (SIG-6).

Type: ``manufacturer:name:version``; id: ``<serial hex>@<realm_id>/<type>``.
Only the canonical form parses (lowercase hex, no leading zeros), so text and
message round-trip exactly and a text form can serve as a dictionary key.
"""

from __future__ import annotations

import functools
import re

from actr.protocol.actr_pb2 import ActrId, ActrType, Realm

__all__ = [
    "IdentityError",
    "id_text",
    "make_id",
    "parse_id",
    "parse_type",
    "role_key",
    "same_type",
    "type_text",
]

_PART = r"[A-Za-z0-9_.\-]+"
_TYPE_RE = re.compile(rf"({_PART}):({_PART}):({_PART})")
_ID_RE = re.compile(r"(0|[1-9a-f][0-9a-f]*)@(0|[1-9][0-9]*)/(.*)", re.DOTALL)
_U32_MAX = 2**32 - 1
_U64_MAX = 2**64 - 1
_MAX_TEXT = 512
# A type's text leaves room for the longest id prefix, so that every id whose
# type has a text form also has one that parses back (ID-1).
_MAX_TYPE_TEXT = _MAX_TEXT - len(f"{_U64_MAX:x}@{_U32_MAX}/")


class IdentityError(ValueError):
    """Text that is not a valid ActrType or ActrId."""


def parse_type(text: str) -> ActrType:
    if len(text) > _MAX_TYPE_TEXT:
        raise IdentityError(f"actor type text longer than {_MAX_TYPE_TEXT} characters")
    m = _TYPE_RE.fullmatch(text)
    if m is None:
        raise IdentityError(
            f"malformed actor type {text!r}: expected manufacturer:name:version "
            "(letters, digits, '_', '.', '-')"
        )
    return ActrType(manufacturer=m.group(1), name=m.group(2), version=m.group(3))


def type_text(t: ActrType) -> str:
    return _type_text(t.manufacturer, t.name, t.version)


def _type_text(manufacturer: str, name: str, version: str) -> str:
    for part in (manufacturer, name, version):
        # upb hands back a proto2 string field of invalid UTF-8 as bytes.
        if not isinstance(part, str) or not re.fullmatch(_PART, part):
            raise IdentityError(f"actor type has an invalid part {part!r}")
    text = f"{manufacturer}:{name}:{version}"
    if len(text) > _MAX_TYPE_TEXT:
        raise IdentityError(f"actor type text longer than {_MAX_TYPE_TEXT} characters")
    return text


def parse_id(text: str) -> ActrId:
    realm, serial, (manufacturer, name, version) = _id_parts(text)
    return ActrId(
        realm=Realm(realm_id=realm),
        serial_number=serial,
        type=ActrType(manufacturer=manufacturer, name=name, version=version),
    )


@functools.lru_cache(maxsize=4096)
def _id_parts(text: str) -> tuple[int, int, tuple[str, str, str]]:
    """The checked parts of an id's text; cached (bounded: at most 4096 texts of at
    most _MAX_TEXT characters): every request's caller is parsed, and callers repeat."""
    if len(text) > _MAX_TEXT:
        raise IdentityError(f"actor id text longer than {_MAX_TEXT} characters")
    m = _ID_RE.fullmatch(text)
    if m is None:
        raise IdentityError(
            f"malformed actor id {text!r}: "
            "expected <serial hex>@<realm>/<manufacturer:name:version>"
        )
    serial = int(m.group(1), 16)
    realm = int(m.group(2))
    if serial > _U64_MAX:
        raise IdentityError(f"actor id serial out of range in {text!r}")
    if realm > _U32_MAX:
        raise IdentityError(f"actor id realm out of range in {text!r}")
    t = parse_type(m.group(3))
    return realm, serial, (t.manufacturer, t.name, t.version)


def id_text(actr_id: ActrId) -> str:
    t = actr_id.type
    return _id_text(
        actr_id.serial_number, actr_id.realm.realm_id, t.manufacturer, t.name, t.version
    )


@functools.lru_cache(maxsize=4096)
def _id_text(serial: int, realm: int, manufacturer: str, name: str, version: str) -> str:
    # Cached (bounded): the same few ids are written out for every message.
    return f"{serial:x}@{realm}/{_type_text(manufacturer, name, version)}"


def make_id(realm_id: int, serial: int, actr_type: ActrType) -> ActrId:
    out = ActrId(realm=Realm(realm_id=realm_id), serial_number=serial)
    out.type.CopyFrom(actr_type)
    return out


def same_type(a: ActrType, b: ActrType) -> bool:
    return (a.manufacturer, a.name, a.version) == (b.manufacturer, b.name, b.version)


def role_key(actr_id: ActrId) -> tuple[int, int, str, str]:
    """SIG-6: the order the server assigns WebRTC roles by (the larger key offers)."""
    return (
        actr_id.realm.realm_id,
        actr_id.serial_number,
        actr_id.type.manufacturer,
        actr_id.type.name,
    )
