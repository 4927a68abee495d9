"""SIG-6a/6b end to end: a daemon registers its ServiceSpec; a client that has none
of the actor's code reads the .proto text back from the signaling server, and the
verifying key by its id."""

from __future__ import annotations

import pytest

from actr.errors import NotFound
from tests.e2e.conftest import Cluster

pytestmark = pytest.mark.e2e


async def test_sig6b_daemon_spec_reaches_a_client_without_its_code(cluster: Cluster) -> None:
    await cluster.start_actor("echo", "examples.echo:Echo")
    async with cluster.client() as client:
        spec = await client.signaling.service_spec_of("echo")
        assert spec.name == "echo" and spec.fingerprint.startswith("sha256:")
        (package,) = spec.protobufs
        assert package.package == "echo.v1"
        assert "message SayRequest" in package.content
        assert "message SayReply" in package.content
        with pytest.raises(NotFound):
            await client.signaling.service_spec_of("no-such-service")
        reg = client.signaling.registration
        assert reg is not None
        assert await client.signaling.signing_key(reg.signing_key_id) == reg.signing_pubkey
        with pytest.raises(NotFound):
            await client.signaling.signing_key(reg.signing_key_id + 1)
