"""ACL evaluation (PROTOCOL.md ACL-1), shared by the signaling server and the runtime.

DENY wins over ALLOW; with no matching rule the caller is refused. An actor
that registered no Acl accepts callers of its own realm only.
"""

from __future__ import annotations

from actr.identity import same_type
from actr.protocol.actr_pb2 import Acl, AclRule, ActrId


def _rule_matches(rule: AclRule, caller: ActrId) -> bool:
    if not same_type(rule.from_type, caller.type):
        return False
    which = rule.WhichOneof("source_realm")
    if which == "realm_id":
        return rule.realm_id == caller.realm.realm_id
    # any_realm, or no realm constraint written: the type alone decides.
    return True


def acl_allows(acl: Acl | None, owner: ActrId, caller: ActrId) -> bool:
    if acl is None or len(acl.rules) == 0:
        return caller.realm.realm_id == owner.realm.realm_id
    matching = [r for r in acl.rules if _rule_matches(r, caller)]
    if any(r.permission == AclRule.DENY for r in matching):
        return False
    return any(r.permission == AclRule.ALLOW for r in matching)


def acl_denies(acl: Acl | None, caller: ActrId) -> bool:
    """An explicit DENY rule matches ``caller`` (not merely "no rule allows it")."""
    if acl is None:
        return False
    return any(r.permission == AclRule.DENY and _rule_matches(r, caller) for r in acl.rules)
