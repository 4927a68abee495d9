"""ACL-1: DENY beats ALLOW, no matching rule refuses, no Acl admits the own realm only."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actr.acl import acl_allows
from actr.identity import make_id, parse_type
from actr.protocol.actr_pb2 import Acl, AclRule, ActrId

OWNER = make_id(1, 100, parse_type("acme:svc:1"))
CLIENT = parse_type("acme:client:1")
OTHER = parse_type("acme:other:1")


def caller(realm: int = 1, type_text: str = "acme:client:1", serial: int = 7) -> ActrId:
    return make_id(realm, serial, parse_type(type_text))


def rule(
    permission: int, type_text: str, *, realm: int | None = None, any_realm: bool | None = None
) -> AclRule:
    r = AclRule(permission=permission)  # type: ignore[arg-type]
    r.from_type.CopyFrom(parse_type(type_text))
    if realm is not None:
        r.realm_id = realm
    if any_realm is not None:
        r.any_realm = any_realm
    return r


def acl(*rules: AclRule) -> Acl:
    out = Acl()
    out.rules.extend(rules)
    return out


ALLOW, DENY = AclRule.ALLOW, AclRule.DENY


def test_acl1_no_acl_admits_the_own_realm_only() -> None:
    assert acl_allows(None, OWNER, caller(realm=1))
    assert acl_allows(None, OWNER, caller(realm=1, type_text="any:type:9"))
    assert not acl_allows(None, OWNER, caller(realm=2))


def test_acl1_acl_without_rules_counts_as_no_acl() -> None:
    """An empty Acl (nothing to match) behaves like none: own realm only."""
    assert acl_allows(Acl(), OWNER, caller(realm=1))
    assert not acl_allows(Acl(), OWNER, caller(realm=2))


def test_acl1_allow_rule_admits_the_matching_type() -> None:
    a = acl(rule(ALLOW, "acme:client:1", any_realm=True))
    assert acl_allows(a, OWNER, caller())
    assert acl_allows(a, OWNER, caller(realm=99))


def test_acl1_no_rule_matching_refuses_even_in_the_own_realm() -> None:
    a = acl(rule(ALLOW, "acme:client:1", any_realm=True))
    assert not acl_allows(a, OWNER, caller(type_text="acme:other:1"))
    assert not acl_allows(a, OWNER, caller(type_text="acme:client:2"))  # version counts
    assert not acl_allows(a, OWNER, caller(type_text="evil:client:1"))


def test_acl1_deny_beats_allow_whatever_the_order() -> None:
    for rules in (
        (rule(ALLOW, "acme:client:1", any_realm=True), rule(DENY, "acme:client:1", realm=1)),
        (rule(DENY, "acme:client:1", realm=1), rule(ALLOW, "acme:client:1", any_realm=True)),
    ):
        a = acl(*rules)
        assert not acl_allows(a, OWNER, caller(realm=1))
        assert acl_allows(a, OWNER, caller(realm=2))  # the DENY is for realm 1 only


def test_acl1_realm_bound_rule_matches_only_that_realm() -> None:
    a = acl(rule(ALLOW, "acme:client:1", realm=5))
    assert acl_allows(a, OWNER, caller(realm=5))
    assert not acl_allows(a, OWNER, caller(realm=1))


def test_acl1_deny_only_acl_refuses_everyone() -> None:
    a = acl(rule(DENY, "acme:client:1", any_realm=True))
    assert not acl_allows(a, OWNER, caller())
    assert not acl_allows(a, OWNER, caller(type_text="acme:other:1"))


@pytest.mark.parametrize("realm_constraint", [{"any_realm": True}, {}])
def test_acl1_rule_without_realm_constraint_matches_any_realm(
    realm_constraint: dict[str, bool],
) -> None:
    a = acl(rule(ALLOW, "acme:client:1", **realm_constraint))  # type: ignore[arg-type]
    assert acl_allows(a, OWNER, caller(realm=1))
    assert acl_allows(a, OWNER, caller(realm=2**32 - 1))


TYPE_TEXTS = st.sampled_from(["acme:client:1", "acme:other:1", "x:y:z"])
RULES = st.builds(
    lambda allow, t, realm: (
        rule(ALLOW if allow else DENY, t, realm=realm)
        if realm is not None
        else rule(ALLOW if allow else DENY, t, any_realm=True)
    ),
    st.booleans(),
    TYPE_TEXTS,
    st.one_of(st.none(), st.integers(1, 3)),
)


@given(st.lists(RULES, min_size=1, max_size=6), TYPE_TEXTS, st.integers(1, 3))
def test_acl1_matches_the_rule_model(rules: list[AclRule], type_text: str, realm: int) -> None:
    who = caller(realm=realm, type_text=type_text)

    def matches(r: AclRule) -> bool:
        same = (
            r.from_type.manufacturer,
            r.from_type.name,
            r.from_type.version,
        ) == (who.type.manufacturer, who.type.name, who.type.version)
        in_realm = r.WhichOneof("source_realm") != "realm_id" or r.realm_id == realm
        return same and in_realm

    matching = [r for r in rules if matches(r)]
    expected = bool(matching) and all(r.permission == ALLOW for r in matching)
    assert acl_allows(acl(*rules), OWNER, who) == expected
