"""ID-1 text forms of ActrType / ActrId and the SIG-6 offerer rule."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from actr.identity import (
    IdentityError,
    id_text,
    make_id,
    parse_id,
    parse_type,
    role_key,
    type_text,
)
from actr.protocol.actr_pb2 import ActrId, ActrType

U32 = 2**32 - 1
U64 = 2**64 - 1
ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"
PART = st.text(alphabet=ALPHABET, min_size=1, max_size=40)
TYPES = st.builds(lambda m, n, v: ActrType(manufacturer=m, name=n, version=v), PART, PART, PART)
IDS = st.builds(make_id, st.integers(0, U32), st.integers(0, U64), TYPES)


# -- round trips -----------------------------------------------------------------


@given(TYPES)
def test_id1_type_text_round_trips(t: ActrType) -> None:
    text = type_text(t)
    assert text == f"{t.manufacturer}:{t.name}:{t.version}"
    back = parse_type(text)
    assert back == t
    assert type_text(back) == text


@given(IDS)
def test_id1_id_text_round_trips(actr_id: ActrId) -> None:
    text = id_text(actr_id)
    back = parse_id(text)
    assert back == actr_id
    assert id_text(back) == text
    # The canonical form: lowercase hex serial without leading zeros, decimal realm.
    serial, rest = text.split("@", 1)
    assert serial == format(actr_id.serial_number, "x")
    assert rest.split("/", 1)[0] == str(actr_id.realm.realm_id)


@pytest.mark.parametrize(
    ("text", "serial", "realm", "type_"),
    [
        ("1f@7/acme:echo:1.0", 0x1F, 7, ("acme", "echo", "1.0")),
        ("0@0/a:b:c", 0, 0, ("a", "b", "c")),
        (f"{U64:x}@{U32}/A_b:c-d:1.2.3", U64, U32, ("A_b", "c-d", "1.2.3")),
    ],
)
def test_id1_examples_parse_to_the_fields(
    text: str, serial: int, realm: int, type_: tuple[str, str, str]
) -> None:
    actr_id = parse_id(text)
    assert actr_id.serial_number == serial
    assert actr_id.realm.realm_id == realm
    t = actr_id.type
    assert (t.manufacturer, t.name, t.version) == type_
    assert id_text(actr_id) == text


# Parts of a chosen length (plain st.text rarely reaches the length bound).
LONG_PART = st.builds(
    lambda c, k, tail: (c * k + tail)[:k],
    st.sampled_from(ALPHABET),
    st.integers(1, 320),
    st.text(alphabet=ALPHABET, max_size=5),
)


@settings(max_examples=200)
@given(LONG_PART, LONG_PART, LONG_PART, st.integers(0, U32), st.integers(0, U64))
@example("m" * 200, "n" * 200, "v" * 84, U32, U64)  # type text of exactly 486
@example("m" * 200, "n" * 200, "v" * 82, U32, U64)  # 484: the longest accepted
@example("m" * 300, "n" * 200, "v", 0, 0)
def test_id1_long_types_either_refused_or_round_trip(
    m: str, n: str, v: str, realm: int, serial: int
) -> None:
    """ID-1: whatever text form the runtime writes parses back; an over-long type is
    refused when written, not only when read back by the peer."""
    t = ActrType(manufacturer=m, name=n, version=v)
    try:
        text = type_text(t)
    except IdentityError:
        with pytest.raises(IdentityError):
            id_text(make_id(realm, serial, t))
        return
    assert parse_type(text) == t
    actr_id = make_id(realm, serial, t)
    assert parse_id(id_text(actr_id)) == actr_id


@given(st.text(max_size=12), st.text(max_size=12), st.text(max_size=12))
def test_id1_type_text_of_any_message_is_refused_or_round_trips(m: str, n: str, v: str) -> None:
    t = ActrType(manufacturer=m, name=n, version=v)
    try:
        text = type_text(t)
    except IdentityError:
        return
    assert parse_type(text) == t


def test_id1_invalid_utf8_part_from_the_wire_is_an_identity_error() -> None:
    """upb hands back an invalid-UTF-8 proto2 string as bytes; that is a malformed
    type (IdentityError), not a TypeError out of the regex."""
    raw = ActrType(manufacturer="x", name="b", version="1").SerializeToString()
    t = ActrType()
    t.ParseFromString(raw.replace(b"x", b"\xff"))
    with pytest.raises(IdentityError):
        type_text(t)
    with pytest.raises(IdentityError):
        id_text(make_id(1, 2, t))


def test_id1_type_text_rejects_empty_or_invalid_parts() -> None:
    for t in [
        ActrType(manufacturer="", name="b", version="1"),
        ActrType(manufacturer="a", name="b:c", version="1"),
        ActrType(manufacturer="a", name="b", version="1 "),
        ActrType(manufacturer="a", name="b/", version="1"),
        ActrType(manufacturer="a", name="é", version="1"),
        ActrType(),
    ]:
        with pytest.raises(IdentityError, match="invalid part"):
            type_text(t)


# -- malformed text ------------------------------------------------------------------

BAD_TYPES = [
    "",
    "acme",
    "acme:echo",
    "acme:echo:1.0:x",
    "acme::1.0",
    ":echo:1.0",
    "acme:echo:",
    "acme:ec ho:1.0",
    "acme:echo:1.0\n",
    "\nacme:echo:1.0",
    "acme/echo:1.0",
    "acme:echo:1.0/",
    "acme:\u00e9ch\u043e:1.0",  # non-ASCII letters (e-acute, Cyrillic o)
    "acme:echo:1\x00",
    "a" * 300 + ":" + "b" * 300 + ":1",  # over the length bound
]


@pytest.mark.parametrize("text", BAD_TYPES)
def test_id1_malformed_type_is_a_clear_error(text: str) -> None:
    with pytest.raises(IdentityError, match="actor type"):
        parse_type(text)


BAD_IDS = [
    "",
    "1f",
    "1f@7",
    "1f@7/",
    "@7/acme:echo:1.0",
    "1f@/acme:echo:1.0",
    "1f7/acme:echo:1.0",
    "1f@7acme:echo:1.0",
    "1F@7/acme:echo:1.0",  # uppercase hex is not canonical
    "01f@7/acme:echo:1.0",  # leading zero
    "00@7/acme:echo:1.0",
    "1f@07/acme:echo:1.0",
    "0x1f@7/acme:echo:1.0",
    "g1@7/acme:echo:1.0",
    "-1@7/acme:echo:1.0",
    "1f@-7/acme:echo:1.0",
    "1f@+7/acme:echo:1.0",
    " 1f@7/acme:echo:1.0",
    "1f@7/acme:echo:1.0 ",
    "1f@7/acme:echo:1.0\n",
    "1f@7//acme:echo:1.0",
    "1f@7/acme:echo",
    "1f@7/acme:echo:1.0:2",
    "1f@7@8/acme:echo:1.0",
    "1f@7/acme:echo:1.0/x",
    f"{2**64:x}@7/acme:echo:1.0",  # serial over u64
    f"1@{2**32}/acme:echo:1.0",  # realm over u32
    "1@" + "9" * 400 + "/a:b:c",
    "1@7/" + "a" * 600 + ":b:c",
    "x" * 600,
    "\u0661@7/acme:echo:1.0",  # a non-ASCII digit (Arabic-Indic one)
]


@pytest.mark.parametrize("text", BAD_IDS)
def test_id1_malformed_id_is_a_clear_error(text: str) -> None:
    with pytest.raises(IdentityError, match=r"actor id|actor type"):
        parse_id(text)


def _parses_back_exactly_or_identity_error(text: str) -> None:
    try:
        actr_id = parse_id(text)
    except IdentityError:
        pass
    else:
        assert id_text(actr_id) == text
        assert parse_id(id_text(actr_id)) == actr_id
    try:
        t = parse_type(text)
    except IdentityError:
        pass
    else:
        assert type_text(t) == text


@given(st.text(max_size=120))
def test_id1_any_text_parses_and_round_trips_or_raises_identity_error(text: str) -> None:
    _parses_back_exactly_or_identity_error(text)


@given(
    st.from_regex(
        r"[0-9a-gA-F\-]{0,4}@[0-9+\-]{0,4}/[a-cA-C0-9_.:\- /é]{0,12}",
        fullmatch=True,
    )
)
def test_id1_near_valid_text_parses_and_round_trips_or_raises_identity_error(text: str) -> None:
    """Text shaped like an id (so many of them parse) still round-trips exactly or is
    refused with IdentityError, nothing else."""
    _parses_back_exactly_or_identity_error(text)


# -- SIG-6 -----------------------------------------------------------------------------


def test_sig6_role_key_orders_realm_then_serial_then_manufacturer_and_name() -> None:
    t = parse_type("a:b:1")
    a, b, c = make_id(1, 5, t), make_id(1, 9, t), make_id(2, 1, t)
    assert role_key(a) < role_key(b) < role_key(c)  # realm compared first
    # The version takes no part; manufacturer and name break ties of serial.
    assert role_key(make_id(1, 5, parse_type("a:b:1"))) == role_key(
        make_id(1, 5, parse_type("a:b:2"))
    )
    assert role_key(make_id(1, 5, parse_type("a:c:1"))) > role_key(a)


@given(IDS, IDS)
def test_sig6_distinct_keys_order_one_way(a: ActrId, b: ActrId) -> None:
    if role_key(a) != role_key(b):
        assert (role_key(a) > role_key(b)) != (role_key(b) > role_key(a))
