"""The I/O-free parts on their own: config, credentials, registry, dispatcher (time passed in)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from actr.identity import parse_type
from actr.protocol.actr_pb2 import AIdCredential
from actr.protocol.signaling_pb2 import (
    ActrToSignaling,
    Ping,
    SignalingEnvelope,
    SubscribeActrUpRequest,
)
from signaling.config import (
    Config,
    ConfigError,
    Limits,
    Turn,
    check_exposure,
    load_config,
    parse_config,
)
from signaling.credentials import CredentialAuthority, CredentialError, load_or_create_key
from signaling.dispatcher import Action, Announce, Deliver, Disconnect, Dispatcher, Forward
from signaling.events import (
    Backlog,
    Contact,
    EventDecodeError,
    Granted,
    Offline,
    Online,
    Subscription,
    decode_event,
    encode_event,
    record_fields,
    record_from_fields,
)
from signaling.limits import AttemptLimiter, FloodGuard, TokenBucket, Verdict
from signaling.registry import LAPSE_SLACK_SECS, ActorRecord, Registry, TokenStanding
from signaling.socket import decode_b64
from signaling.stats import Stats
from signaling.turn import turn_credential, turn_password

T0 = 1_800_000_000.0


# ---- config ----


def test_config_defaults_without_file() -> None:
    config = load_config(None)
    assert (config.host, config.port) == ("127.0.0.1", 8081)
    assert config.credential_lifetime_secs == 3600
    assert config.heartbeat_interval_secs == 10
    assert config.signing_key_file is None
    assert dict(config.realms) == {1: "dev-secret"}


def test_config_full_file(tmp_path: Path) -> None:
    path = tmp_path / "signaling.toml"
    path.write_text(
        'host = "0.0.0.0"\nport = 0\ncredential_lifetime_secs = 60\n'
        'heartbeat_interval_secs = 5\nsigning_key_file = "keys/signing.key"\n'
        'signing_key_id = 7\n[realms]\n1 = "realm-one-0123456789"\n42 = "realm-42-0123456789"\n'
    )
    config = load_config(path)
    assert config == Config(
        host="0.0.0.0",
        port=0,
        realms={1: "realm-one-0123456789", 42: "realm-42-0123456789"},
        credential_lifetime_secs=60,
        heartbeat_interval_secs=5,
        signing_key_file=tmp_path / "keys" / "signing.key",
        signing_key_id=7,
    )
    check_exposure(config)  # own secrets of 16+ bytes: any address is fine (F14)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('port = "80"', "port must be an integer"),
        ("port = 70000", "between 0 and 65535"),
        ("port = true", "port must be an integer"),
        ("prot = 1", "unknown key(s) prot"),
        ("[realms]", "[realms] is empty"),
        ('[realms]\nx = "s"', "realm id 'x' is not an integer"),
        ("[realms]\n1 = 5", "secret of realm 1"),
        ("credential_lifetime_secs = 0", "at least 1"),
        ("heartbeat_interval_secs = -1", "at least 1"),
        ("port = [", "not valid TOML"),
        ('redis_url = "http://x"', "redis_url must start with redis://"),
        ("reconnect_grace_secs = -1", "reconnect_grace_secs must be between"),
        ("[limits]\nmessages_per_sec = -1", "must not be negative"),
        ("[limits]\nburst = 1", "unknown key(s) in [limits]: burst"),
        ('[turn]\nurls = ["stun:x"]\nsecret = "s"', "turn: or turns: urls"),
        ('[turn]\nurls = ["turn:x"]', "secret (coturn's static-auth-secret) is required"),
    ],
)
def test_config_errors_are_clear(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert fragment in str(info.value)


def test_config_grace_redis_limits_turn(tmp_path: Path) -> None:
    path = tmp_path / "signaling.toml"
    path.write_text(
        'reconnect_grace_secs = 2.5\nredis_url = "redis://127.0.0.1:6379/0"\n'
        'redis_prefix = "prod"\n[realms]\n1 = "a"\n'
        "[limits]\nmessages_per_sec = 0\nconnects_per_ip_per_sec = 5\nconnect_burst = 9\n"
        '[turn]\nurls = ["turn:127.0.0.1:3478"]\nsecret = "s"\nttl_secs = 600\n'
    )
    config = load_config(path)
    assert config.reconnect_grace_secs == 2.5
    assert (config.redis_url, config.redis_prefix) == ("redis://127.0.0.1:6379/0", "prod")
    assert config.limits == Limits(messages_per_sec=0, connects_per_ip_per_sec=5, connect_burst=9)
    assert config.turn == Turn(urls=("turn:127.0.0.1:3478",), secret="s", ttl_secs=600)
    assert load_config(None).redis_url is None and load_config(None).turn is None


def test_config_missing_file() -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Path("/nonexistent/signaling.toml"))


def test_config_dev_secret_only_on_loopback() -> None:
    check_exposure(Config(host="127.0.0.1"))
    check_exposure(Config(host="::1"))
    with pytest.raises(ConfigError, match="development realm secret"):
        check_exposure(Config().with_overrides(host="0.0.0.0"))


def test_config_example_file_loads() -> None:
    example = Path(__file__).resolve().parents[2] / "signaling" / "example.toml"
    config = load_config(example)
    assert config.port == 8081 and dict(config.realms) == {1: "dev-secret"}


def test_config_overrides() -> None:
    config = parse_config({"port": 9000}, base_dir=Path("."))
    assert config.with_overrides(port=0).port == 0
    assert config.with_overrides(host="::1").host == "::1"
    with pytest.raises(ConfigError):
        config.with_overrides(port=-1)


# ---- credentials ----


def test_sig1_base64_forms_all_decode() -> None:
    data = bytes(range(256))[:100] + b"\xfb\xff\xfe"
    for encoded in (
        base64.b64encode(data).decode(),
        base64.b64encode(data).decode().rstrip("="),
        base64.urlsafe_b64encode(data).decode(),
        base64.urlsafe_b64encode(data).decode().rstrip("="),
        base64.b64encode(data).decode().replace("+", " "),  # '+' unescaped in a query
    ):
        assert decode_b64(encoded) == data
    with pytest.raises(ValueError):
        decode_b64("a!b")
    with pytest.raises(ValueError):
        decode_b64("A" * 10_000)


def _authority(lifetime: int = 3600) -> CredentialAuthority:
    return CredentialAuthority(Ed25519PrivateKey.generate(), key_id=3, lifetime_secs=lifetime)


def test_ais2_issue_and_verify_with_time_passed_in() -> None:
    authority = _authority(lifetime=60)
    registry = Registry()
    record = registry.register(parse_type("acme:echo:1.0"), 1, None, "", T0)
    cred = authority.issue(record.actr_id, T0)
    claims = authority.verify(cred, T0 + 59)
    assert (claims.actor_id, claims.realm_id, claims.expires_at) == (record.key, 1, int(T0) + 60)
    with pytest.raises(CredentialError) as info:
        authority.verify(cred, T0 + 60)
    assert info.value.reason == "expired"
    other = _authority()
    with pytest.raises(CredentialError) as info:
        other.verify(AIdCredential(key_id=3, claims=cred.claims, signature=cred.signature), T0)
    assert info.value.reason == "bad_signature"
    with pytest.raises(CredentialError) as info:
        authority.verify(AIdCredential(key_id=4, claims=cred.claims, signature=cred.signature), T0)
    assert info.value.reason == "unknown_key"


def test_ais2_key_file_created_0600_and_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "signing.key"
    key = load_or_create_key(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    again = load_or_create_key(path)
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    assert again.public_key().public_bytes(*raw) == key.public_key().public_bytes(*raw)


def test_ais2_raw_key_file_loads(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    path = tmp_path / "raw.key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)  # F14: a key file group or others may read is refused
    loaded = load_or_create_key(path)
    assert loaded.sign(b"x") == key.sign(b"x")  # Ed25519 signatures are deterministic


def test_ais2_bad_key_file_is_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.key"
    path.write_bytes(b"not a key")
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="raw 32-byte Ed25519 key or a PEM"):
        load_or_create_key(path)


# ---- registry and dispatcher ----


def _setup(heartbeat: int = 10) -> tuple[Registry, CredentialAuthority, Dispatcher, Stats]:
    registry, authority, stats = Registry(), _authority(), Stats()
    return registry, authority, Dispatcher(registry, authority, stats, heartbeat), stats


def _actor(registry: Registry, authority: CredentialAuthority, actr_type: str) -> ActorRecord:
    record = registry.register(parse_type(actr_type), 1, None, "", T0)
    cred = authority.issue(record.actr_id, T0)
    record.grant(cred, int(T0) + authority.lifetime_secs, b"token")
    return record


def _frame(record: ActorRecord, body: ActrToSignaling) -> bytes:
    env = SignalingEnvelope(envelope_version=2, envelope_id="e1")
    env.actr_to_server.CopyFrom(body)
    env.actr_to_server.source.CopyFrom(record.actr_id)
    env.actr_to_server.credential.CopyFrom(record.credential)
    return env.SerializeToString()


def test_id2_serials_never_reused_after_forget() -> None:
    registry = Registry()
    first = registry.register(parse_type("a:b:1"), 1, None, "", T0)
    registry.forget(first.key)
    second = registry.register(parse_type("a:b:1"), 1, None, "", T0)
    assert second.actr_id.serial_number == first.actr_id.serial_number + 1


def _delivered(actions: list[Action]) -> list[Deliver]:
    return [a for a in actions if isinstance(a, Deliver)]


def _event_kind(action: Deliver) -> str | None:
    env = SignalingEnvelope()
    env.ParseFromString(action.data)
    return env.server_to_actr.WhichOneof("payload")


def _watch(dispatcher: Dispatcher, watcher: ActorRecord, target: ActorRecord) -> None:
    sub = ActrToSignaling(
        subscribe_actr_up_request=SubscribeActrUpRequest(target_type=target.actr_id.type)
    )
    dispatcher.frame(watcher.key, _frame(watcher, sub), T0)


def test_sig7_silent_actor_expires_after_three_intervals() -> None:
    registry, authority, dispatcher, stats = _setup(heartbeat=10)
    echo = _actor(registry, authority, "acme:echo:1.0")
    watcher = _actor(registry, authority, "acme:client:1.0")
    dispatcher.connected(watcher.key, 1, T0)
    _watch(dispatcher, watcher, echo)
    up = _delivered(dispatcher.connected(echo.key, 2, T0))
    assert [a.to for a in up] == [watcher.key]

    # Pings keep both alive; 30 s of silence is still within the limit.
    dispatcher.frame(watcher.key, _frame(watcher, ActrToSignaling(ping=Ping())), T0 + 25)
    assert _delivered(dispatcher.sweep(T0 + 30)) == []
    # echo never pinged: past 3 intervals it goes offline and watchers hear of it at once.
    actions = dispatcher.sweep(T0 + 31)
    assert Disconnect(echo.key, 1001, "no ping received") in actions
    assert Announce(Offline(echo.key, "local", grace=False, generation=1)) in actions
    downs = _delivered(actions)
    assert [a.to for a in downs] == [watcher.key]
    event = SignalingEnvelope()
    event.ParseFromString(downs[0].data)
    assert event.server_to_actr.actr_down_event.actor_id == echo.actr_id
    assert not echo.live and watcher.live
    assert stats.presence_expired == 1
    # Its socket closing later does not announce it twice.
    assert dispatcher.disconnected(echo.key, 2, T0 + 32) == []


def test_sig7_down_event_after_grace_unless_back() -> None:
    registry, authority, dispatcher, _ = _setup(heartbeat=100_000)
    dispatcher.grace_secs = 30
    echo = _actor(registry, authority, "acme:echo:1.0")
    watcher = _actor(registry, authority, "acme:client:1.0")
    dispatcher.connected(watcher.key, 1, T0)
    _watch(dispatcher, watcher, echo)
    dispatcher.connected(echo.key, 2, T0)
    # Closed: out of route candidates at once, no event yet.
    assert _delivered(dispatcher.disconnected(echo.key, 2, T0 + 1)) == []
    assert registry.route_candidates(watcher.actr_id, echo.actr_id.type, 8) == []
    assert _delivered(dispatcher.sweep(T0 + 30)) == []
    # Back within the grace: live again, and no event either way.
    assert _delivered(dispatcher.connected(echo.key, 3, T0 + 30)) == []
    assert registry.route_candidates(watcher.actr_id, echo.actr_id.type, 8) == [echo.actr_id]
    # Gone again, and this time the grace runs out: one down event.
    dispatcher.disconnected(echo.key, 3, T0 + 40)
    assert _delivered(dispatcher.sweep(T0 + 69)) == []
    downs = _delivered(dispatcher.sweep(T0 + 70))
    assert [(a.to, _event_kind(a)) for a in downs] == [(watcher.key, "actr_down_event")]
    assert _delivered(dispatcher.sweep(T0 + 80)) == []
    # Coming back after that is an up event.
    ups = _delivered(dispatcher.connected(echo.key, 4, T0 + 90))
    assert [(a.to, _event_kind(a)) for a in ups] == [(watcher.key, "actr_up_event")]


def test_sig7_lapsed_registration_forgotten_after_newest_credential_expired() -> None:
    registry, authority, dispatcher, _ = _setup()
    record = _actor(registry, authority, "acme:echo:1.0")
    expires = record.credential_expires_at
    dispatcher.sweep(expires + LAPSE_SLACK_SECS - 1)
    assert registry.get(record.key) is not None
    dispatcher.sweep(expires + LAPSE_SLACK_SECS)
    assert registry.get(record.key) is None


def test_sig7_live_actor_outliving_its_credential_is_closed() -> None:
    registry, authority, dispatcher, stats = _setup(heartbeat=100_000)
    record = _actor(registry, authority, "acme:echo:1.0")
    dispatcher.connected(record.key, 1, T0)
    actions = dispatcher.sweep(record.credential_expires_at)
    assert Disconnect(record.key, 1008, "credential expired") in actions
    assert not record.live
    assert stats.rejects["credential_outlived"] == 1


def test_sig3_expired_current_credential_refused() -> None:
    registry, authority, dispatcher, stats = _setup()
    record = _actor(registry, authority, "acme:echo:1.0")
    dispatcher.connected(record.key, 1, T0)
    (answer,) = dispatcher.frame(
        record.key, _frame(record, ActrToSignaling(ping=Ping())), record.credential_expires_at
    )
    assert isinstance(answer, Deliver)
    env = SignalingEnvelope()
    env.ParseFromString(answer.data)
    assert env.server_to_actr.error.code == 10103
    assert stats.rejects["unauthenticated_credential_expired"] == 1


def test_sig8_stale_socket_close_does_not_take_actor_offline() -> None:
    registry, authority, dispatcher, _ = _setup()
    record = _actor(registry, authority, "acme:echo:1.0")
    dispatcher.connected(record.key, 1, T0)
    dispatcher.connected(record.key, 2, T0)  # reconnect replaced socket 1
    assert dispatcher.disconnected(record.key, 1, T0) == []
    assert record.live and record.connection == 2


def test_ais3_previous_renewal_token_valid_once_more() -> None:
    registry, authority, _, _ = _setup()
    record = _actor(registry, authority, "acme:echo:1.0")  # token b"token"
    record.grant(record.credential, record.credential_expires_at, b"second", spent=b"token")
    assert record.token_standing(b"token") is TokenStanding.VALID
    assert record.token_standing(b"second") is TokenStanding.VALID
    record.grant(record.credential, record.credential_expires_at, b"third", spent=b"second")
    assert record.token_standing(b"token") is TokenStanding.REUSED
    assert record.token_standing(b"second") is TokenStanding.VALID
    assert record.token_standing(b"third") is TokenStanding.VALID
    assert record.token_standing(b"never issued") is TokenStanding.UNKNOWN


def test_f8_grace_token_renews_once_and_spends_the_unused_successor() -> None:
    registry, authority, _, _ = _setup()
    record = _actor(registry, authority, "acme:echo:1.0")
    record.grant(record.credential, record.credential_expires_at, b"t2", spent=b"token")
    # A crash before t2 was saved: the daemon renews with the token before it ...
    record.grant(record.credential, record.credential_expires_at, b"t3", spent=b"token")
    assert record.token_standing(b"t3") is TokenStanding.VALID
    # ... after which neither t2 (never used) nor the token itself renews again.
    assert record.token_standing(b"t2") is TokenStanding.REUSED
    assert record.token_standing(b"token") is TokenStanding.REUSED


def test_f8_revoked_chain_renews_nothing_and_revokes_its_credentials() -> None:
    registry, authority, _, _ = _setup()
    record = _actor(registry, authority, "acme:echo:1.0")
    record.grant(record.credential, record.credential_expires_at, b"t2", spent=b"token")
    assert not record.chain_revoked
    record.revoke_chain()
    assert record.chain_revoked
    assert record.token_standing(b"t2") is TokenStanding.REUSED
    assert record.revoked_through == record.credential_expires_at


# ---- several nodes (SIG-10): what another node announced ----


def test_sig10_remote_online_is_a_candidate_and_relay_is_forwarded() -> None:
    registry, authority, dispatcher, stats = _setup()
    caller = _actor(registry, authority, "acme:client:1.0")
    echo = _actor(registry, authority, "acme:echo:1.0")
    dispatcher.connected(caller.key, 1, T0)
    dispatcher.apply(Online(echo.key, "node-b", 1), T0)
    assert registry.route_candidates(caller.actr_id, echo.actr_id.type, 8) == [echo.actr_id]
    env = SignalingEnvelope(envelope_version=2, envelope_id="r1")
    env.actr_relay.source.CopyFrom(caller.actr_id)
    env.actr_relay.credential.CopyFrom(caller.credential)
    env.actr_relay.target.CopyFrom(echo.actr_id)
    env.actr_relay.ice_candidate.candidate = "candidate:1 1 udp 1 127.0.0.1 5 typ host"
    data = env.SerializeToString()
    actions = dispatcher.frame(caller.key, data, T0)
    assert actions == [Forward("node-b", echo.key, data)]
    assert stats.relays_forwarded == 1
    # That node lost: offline at once, down only after the grace.
    dispatcher.node_lost("node-b", T0 + 1)
    assert not echo.live
    assert registry.route_candidates(caller.actr_id, echo.actr_id.type, 8) == []


def test_sig10_actor_moving_to_another_node_closes_its_socket_here() -> None:
    registry, authority, dispatcher, _ = _setup()
    echo = _actor(registry, authority, "acme:echo:1.0")
    dispatcher.connected(echo.key, 7, T0)
    # An announcement of an attach no newer than the one here is stale: ignored.
    assert dispatcher.apply(Online(echo.key, "node-b", 1), T0) == []
    assert echo.connection == 7
    actions = dispatcher.apply(Online(echo.key, "node-b", 2), T0)
    assert Disconnect(echo.key, 1000, "replaced by a connection on another node") in actions
    assert echo.node == "node-b" and echo.connection is None
    # Its old socket closing here changes nothing.
    assert dispatcher.disconnected(echo.key, 7, T0) == []
    assert echo.live
    # A stale offline from a node it left changes nothing either.
    dispatcher.apply(Offline(echo.key, "node-a", grace=False, generation=1), T0)
    assert echo.live
    # Nor does an older offline from the node it is on.
    dispatcher.apply(Offline(echo.key, "node-b", grace=False, generation=1), T0)
    assert echo.live


def test_sig10_events_and_stored_record_round_trip() -> None:
    registry, authority, _, _ = _setup()
    record = _actor(registry, authority, "acme:echo:1.0")
    record.grant(record.credential, record.credential_expires_at, b"token2", spent=b"other")
    record.grant(record.credential, record.credential_expires_at, b"token", spent=b"token2")
    record.subscriptions.add(("acme", "x", "1"))
    for event in (
        Granted(record.key),
        Online(record.key, "n1", 3),
        Offline(record.key, "n1", grace=True, generation=3),
        Backlog(record.key, 2.5),
        Subscription(record.key, ("acme", "x", "1"), on=True),
        Contact(record.key, "2@1/acme:x:1", T0 + 60),
        Online(record.key, "n1", 4, answer_only=True),
    ):
        assert decode_event(encode_event(event, "n9")) == ("n9", event)
    with pytest.raises(EventDecodeError):
        decode_event(b'{"t":"nope","k":"x","from":"n"}')
    with pytest.raises(EventDecodeError):
        decode_event(b"\xff")
    fields = {k.encode(): v for k, v in record_fields(record).items()}
    back = record_from_fields(fields)
    assert back.actr_id == record.actr_id and back.key == record.key
    assert back.credential == record.credential
    assert back.credential_expires_at == record.credential_expires_at
    assert back.token_standing(b"token") is TokenStanding.VALID
    assert back.spent_hashes == record.spent_hashes
    assert back.subscriptions == {("acme", "x", "1")}
    with pytest.raises(ValueError):
        record_from_fields({b"id": b"\xff\xff"})


# ---- limits (SIG-9) ----


def test_sig9_token_bucket_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=10, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert not bucket.take(0.05)
    assert bucket.take(0.1)
    assert TokenBucket(rate=0, burst=0, now=0.0).take(0.0)  # 0: no limit


def test_sig9_flood_guard_refuses_then_closes_a_sustained_flood() -> None:
    guard = FloodGuard(rate=10, burst=5, tolerance=20, now=0.0)
    verdicts = [guard.check(0.0) for _ in range(26)]
    assert verdicts[:5] == [Verdict.ADMIT] * 5
    assert verdicts[5:25] == [Verdict.REFUSE] * 20
    assert verdicts[25] is Verdict.CLOSE
    # A burst that stays under the tolerance only costs refusals.
    calm = FloodGuard(rate=10, burst=5, tolerance=20, now=0.0)
    assert [calm.check(0.0) for _ in range(10)].count(Verdict.CLOSE) == 0
    assert calm.check(1.0) is Verdict.ADMIT


def test_sig9_attempt_limiter_per_address_and_bounded() -> None:
    limiter = AttemptLimiter(rate=1, burst=2, max_tracked=3)
    assert [limiter.allow("a", 0.0) for _ in range(3)] == [True, True, False]
    assert limiter.allow("b", 0.0)  # another address has its own bucket
    for addr in ("c", "d", "e"):
        limiter.allow(addr, 0.0)
    assert len(limiter) == 3
    assert limiter.allow("a", 0.0)  # forgotten, so full again


# ---- TURN (AIS-4) ----


def test_ais4_turn_credential_is_coturn_rest_form() -> None:
    cred = turn_credential("s3cret", "1f@7/acme:echo:1.0", T0, 600)
    assert cred.username == f"{int(T0) + 600}:1f@7/acme:echo:1.0"
    assert cred.expires_at == int(T0) + 600
    # The same HMAC-SHA1 computed independently with the standard library.
    expected = base64.b64encode(
        hmac.new(b"s3cret", cred.username.encode(), hashlib.sha1).digest()
    ).decode()
    assert cred.password == expected == turn_password("s3cret", cred.username)
