"""The browser SDK and the console in headless Chromium (issue 15), against a real
signaling server and echo daemon: calls over a real WebRTC data channel from the
page, with the browser as offerer and as answerer (SIG-6), typed errors, the console
behind its operator token; and no secret in anything the server serves to a browser."""

from __future__ import annotations

import asyncio
import os
import urllib.error
import urllib.request

import pytest

from examples.launch import ROOT
from tests.web.conftest import Site, drive, need_browser

pytestmark = pytest.mark.e2e


async def test_sdk_calls_the_echo_actor_as_offerer_and_as_answerer(site: Site) -> None:
    need_browser()
    echo_id = await asyncio.to_thread(site.start_echo)
    seen = await drive(
        "sdk",
        {
            "url": site.url,
            "registrations": {"offerer": site.register(), "answerer": site.register()},
        },
    )
    # The browser registered after the echo actor, so its key is the larger and it
    # offers (SIG-6); with webrtc_role=answer the echo daemon offers instead.
    assert seen["offerer"]["local_description"] == "offer"
    assert seen["answerer"]["local_description"] == "answer"
    for role in ("offerer", "answerer"):
        r = seen[role]
        assert "acme:echo:1.0" in r["types"]
        assert r["small"] == {"text": "hi", "served_by": echo_id}
        assert r["big"] == {"text": "big", "same": True, "length": 1024 * 1024}
        assert r["error"]["code"] == 10006 and r["error"]["name"] == "UNKNOWN_ROUTE"
        assert r["error"]["typed"] is True
        assert r["bad_field"]["typed"] is True and "colour" in r["bad_field"]["message"]


async def test_console_lists_calls_and_counts_only_for_operators(site: Site) -> None:
    need_browser()
    echo_id = await asyncio.to_thread(site.start_echo)
    shot = os.environ.get("ACTR_CONSOLE_SCREENSHOT")  # docs/console.png is made this way
    seen = await drive("console", {"url": site.url, "token": site.token, "screenshot": shot or ""})
    anonymous = seen["anonymous"]
    assert anonymous["login_form"] and anonymous["actors_table"] == 0
    assert "acme:echo:1.0" not in anonymous["text"] and echo_id not in anonymous["text"]
    assert anonymous["api_status"] == 401 and anonymous["credential_status"] == 401
    assert seen["wrong_token_sees_actors"] == 0
    assert "acme:echo:1.0" in seen["listed"] and echo_id in seen["listed"]
    assert "echo.v1.Echo.Say" in seen["listed"]
    assert seen["answer"] == {"text": "from the console", "served_by": echo_id}
    assert "INVALID_ARGUMENT" in seen["form_error"] and "colour" in seen["form_error"]
    assert "stats_answered" in seen["counters"]
    assert seen["status"].startswith("connected as ") and "actr:console:1.0" in seen["status"]


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


async def test_nothing_served_to_a_browser_holds_a_secret(site: Site) -> None:
    """The SDK, the console's pages and script, logged in or not: no realm secret, no
    operator token, no place where one would be written."""
    bearer = {"Authorization": f"Bearer {site.token}"}
    served = {
        path: await asyncio.to_thread(_get, site.url + path)
        for path in ("/sdk/actr.js", "/console", "/console/console.js")
    }
    served["/console (operator)"] = await asyncio.to_thread(_get, site.url + "/console", bearer)
    assert served["/sdk/actr.js"][0] == 200 and served["/console (operator)"][0] == 200
    assert 'id="actors"' in served["/console (operator)"][1]
    for path, (status, body) in served.items():
        assert status == 200, path
        for secret in (site.realm_secret, site.token):
            assert secret not in body, path
        for hint in ("realm_secret", "x-actrix-realm-secret", "ACTR_CONSOLE_TOKEN="):
            assert hint not in body.replace("ACTR_CONSOLE_TOKEN</code>", ""), (path, hint)
    # The committed files too, whatever a server would make of them.
    for path in (ROOT / "signaling" / "static").iterdir():
        text = path.read_text()
        assert "dev-secret" not in text and "realm_secret" not in text, path.name


async def test_ps_lists_live_actors_for_the_operator(site: Site) -> None:
    import json
    import subprocess
    import sys

    echo_id = await asyncio.to_thread(site.start_echo)
    run = lambda *args, token: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "actr", "ps", "--signaling", site.url, *args],
        cwd=ROOT,
        env={**os.environ, "ACTR_CONSOLE_TOKEN": token},
        capture_output=True,
        text=True,
        timeout=60,
    )
    done = await asyncio.to_thread(run, "--json", token=site.token)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    (echo,) = [r for r in rows if r["type"] == "acme:echo:1.0"]
    assert echo["id"] == echo_id and echo["spec"] == "echo" and echo["backlog"] == 0
    done = await asyncio.to_thread(run, token=site.token)
    assert done.stdout.splitlines()[0].split() == ["TYPE", "ID", "NODE", "BACKLOG"]
    assert echo_id in done.stdout
    done = await asyncio.to_thread(run, token="wrong-token-of-some-length")
    assert done.returncode == 1 and "HTTP 401" in done.stderr


def test_without_an_operator_token_there_is_no_console(monkeypatch: pytest.MonkeyPatch) -> None:
    from aiohttp import web

    from signaling import web as console_web

    app = web.Application()
    monkeypatch.delenv("ACTR_CONSOLE_TOKEN", raising=False)
    monkeypatch.delenv("ACTR_CONSOLE_TOKEN_FILE", raising=False)
    console_web.add_web_routes(app)
    paths = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    assert paths == {"/sdk/actr.js", "/console"}
