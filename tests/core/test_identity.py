"""ID-1 text forms and the SIG-6 offerer rule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actr.identity import (
    IdentityError,
    id_text,
    is_offerer,
    make_id,
    parse_id,
    parse_type,
    type_text,
)

PART = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-",
    min_size=1,
    max_size=20,
)
TYPES = st.builds(lambda m, n, v: f"{m}:{n}:{v}", PART, PART, PART)


@given(TYPES, st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1))
def test_id1_id_text_round_trips(type_str: str, realm: int, serial: int) -> None:
    actr_id = make_id(realm, serial, parse_type(type_str))
    text = id_text(actr_id)
    assert parse_id(text) == actr_id
    assert id_text(parse_id(text)) == text
    assert type_text(parse_type(type_str)) == type_str


def test_id1_examples() -> None:
    actr_id = parse_id("1f@7/acme:echo:1.0")
    assert (actr_id.serial_number, actr_id.realm.realm_id) == (31, 7)
    assert type_text(actr_id.type) == "acme:echo:1.0"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "acme",
        "acme:echo",
        "acme:echo:1.0:x",
        "acme::1.0",
        ":echo:1.0",
        "acme:ec ho:1.0",
        "acme:echo:1.0\n",
        "acme/echo:1.0",
    ],
)
def test_id1_malformed_type_is_a_clear_error(text: str) -> None:
    with pytest.raises(IdentityError, match="actor type"):
        parse_type(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1f",
        "1f@7",
        "1f@7/",
        "@7/acme:echo:1.0",
        "1F@7/acme:echo:1.0",  # uppercase hex
        "01f@7/acme:echo:1.0",  # leading zero: not canonical
        "1f@07/acme:echo:1.0",
        "g1@7/acme:echo:1.0",
        "1f@-7/acme:echo:1.0",
        "1f@7/acme:echo",
        f"{2**64:x}@7/acme:echo:1.0",
        f"1@{2**32}/acme:echo:1.0",
        "1f@7/acme:echo:1.0 ",
        "x" * 600,
    ],
)
def test_id1_malformed_id_is_a_clear_error(text: str) -> None:
    with pytest.raises(IdentityError):
        parse_id(text)


@given(st.text(max_size=80))
def test_id1_any_text_parses_and_round_trips_or_raises_identity_error(text: str) -> None:
    try:
        actr_id = parse_id(text)
    except IdentityError:
        return
    assert id_text(actr_id) == text


def test_sig6_smaller_realm_serial_offers() -> None:
    t = parse_type("a:b:1")
    a, b, c = make_id(1, 5, t), make_id(1, 9, t), make_id(2, 1, t)
    assert is_offerer(a, b) and not is_offerer(b, a)
    assert is_offerer(b, c) and not is_offerer(c, b)  # realm first
    with pytest.raises(ValueError):
        is_offerer(a, make_id(1, 5, parse_type("x:y:2")))
