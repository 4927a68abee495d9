"""The browser side of the server: the SDK (``/sdk/actr.js``), the operators' console
(``/console``) and its read-only API, behind an operator token.

- ``GET /sdk/actr.js``: the browser SDK, an ES module (built from web/ into
  signaling/static by scripts/web.sh); public, it holds no secret.
- ``GET /console``: the login form, or the console once logged in. ``POST
  /console/login`` takes the operator token (form field ``token``) and sets a
  session cookie (HttpOnly, SameSite=Strict, Secure over https, 8 hours); ``POST
  /console/logout`` drops it.
- ``GET /console/api/actors`` (session cookie or ``Authorization: Bearer <token>``):
  live actors, their type, id, node, mailbox backlog and service spec (``actr ps``).
- ``POST /console/api/credential``: a credential for the console page itself, an
  actor of type ``actr:console:1.0`` registered in the console's realm, so the page
  calls actors over WebRTC like any browser client; the realm secret never leaves
  the server.

The console is off unless an operator token is configured: ``ACTR_CONSOLE_TOKEN`` or
``ACTR_CONSOLE_TOKEN_FILE`` (16 bytes or more); ``ACTR_CONSOLE_REALM`` picks the
realm (default: the lowest configured). Sessions are HMACs under a key made at
start, so a restart logs everyone out. Failed logins are limited to 10 a minute.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from actr.identity import id_text, type_text
from actr.protocol.actr_pb2 import ActrType, Realm, RegisterRequest, RegisterResponse
from actr.wire import PROTOBUF_CONTENT_TYPE, REALM_SECRET_HEADER, REGISTER_PATH
from signaling.state import STATE

__all__ = ["CONSOLE_TYPE", "add_web_routes"]

STATIC = Path(__file__).resolve().parent / "static"
CONSOLE_TYPE = ActrType(manufacturer="actr", name="console", version="1.0")
COOKIE = "actr_console"
SESSION_SECS = 8 * 3600
MIN_TOKEN = 16
# A header a cross-site form cannot send: POSTs of the API need it (CSRF).
API_HEADER = "X-Actr-Console"


@dataclass
class Console:
    token: str
    realm: int | None
    key: bytes
    failures: list[float]

    def session(self, now: float) -> str:
        expires = str(int(now) + SESSION_SECS)
        return f"{expires}.{self._mac(expires)}"

    def _mac(self, text: str) -> str:
        return hmac.new(self.key, text.encode(), hashlib.sha256).hexdigest()

    def authorized(self, request: web.Request) -> bool:
        bearer = request.headers.get("Authorization", "")
        if bearer.startswith("Bearer "):
            return hmac.compare_digest(bearer[7:].encode(), self.token.encode())
        expires, _, mac = request.cookies.get(COOKIE, "").partition(".")
        if not expires.isdigit() or int(expires) < time.time():
            return False
        return hmac.compare_digest(mac.encode(), self._mac(expires).encode())


CONSOLE = web.AppKey("console", Console)


def _operator_token() -> str:
    token = os.environ.get("ACTR_CONSOLE_TOKEN", "")
    path = os.environ.get("ACTR_CONSOLE_TOKEN_FILE", "")
    if path:
        token = Path(path).read_text().strip()
    return token


def add_web_routes(app: web.Application) -> None:
    """Adds the SDK, and the console when an operator token is configured."""
    # Any site may import the SDK (it holds no secret): CORS open for this file only.
    app.router.add_get("/sdk/actr.js", _static("actr.js", "text/javascript", cors=True))
    token = _operator_token()
    if len(token) < MIN_TOKEN:
        app.router.add_get("/console", _disabled)
        return
    realm = os.environ.get("ACTR_CONSOLE_REALM", "")
    console = Console(token, int(realm) if realm.isdigit() else None, secrets.token_bytes(32), [])
    app[CONSOLE] = console
    app.router.add_get("/console", _console_page)
    app.router.add_get("/console/console.js", _static("console.js", "text/javascript"))
    app.router.add_post("/console/login", _login)
    app.router.add_post("/console/logout", _logout)
    app.router.add_get("/console/api/actors", _actors)
    app.router.add_post("/console/api/credential", _credential)


def _static(
    name: str, content_type: str, cors: bool = False
) -> Callable[[web.Request], Awaitable[web.Response]]:
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    if cors:
        headers["Access-Control-Allow-Origin"] = "*"

    async def serve(request: web.Request) -> web.Response:
        return web.Response(
            body=(STATIC / name).read_bytes(), content_type=content_type, headers=headers
        )

    return serve


_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # 'unsafe-eval': protobufjs compiles each message type's encoder with new Function.
    "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-eval'; "
    "connect-src 'self' ws: wss:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
}


async def _disabled(request: web.Request) -> web.Response:
    return web.Response(status=404, text="console disabled: set ACTR_CONSOLE_TOKEN\n")


async def _console_page(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    name = "console.html" if console.authorized(request) else "login.html"
    return web.Response(
        body=(STATIC / name).read_bytes(), content_type="text/html", headers=_PAGE_HEADERS
    )


async def _login(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    now = time.time()
    console.failures[:] = [t for t in console.failures if now - t < 60]
    if len(console.failures) >= 10:
        raise web.HTTPTooManyRequests(text="too many failed logins; wait a minute\n")
    form = await request.post()
    given = str(form.get("token", ""))
    if not hmac.compare_digest(given.encode(), console.token.encode()):
        console.failures.append(now)
        raise web.HTTPSeeOther("/console?failed=1")
    response = web.HTTPSeeOther("/console")
    secure = request.secure or request.headers.get("X-Forwarded-Proto") == "https"
    response.set_cookie(
        COOKIE,
        console.session(now),
        max_age=SESSION_SECS,
        path="/console",
        httponly=True,
        samesite="Strict",
        secure=secure,
    )
    raise response


async def _logout(request: web.Request) -> web.Response:
    response = web.HTTPSeeOther("/console")
    response.del_cookie(COOKIE, path="/console")
    raise response


def _require(request: web.Request, post: bool = False) -> Console:
    console = request.app[CONSOLE]
    if not console.authorized(request):
        raise web.HTTPUnauthorized(text="operator login required\n")
    if post and "Authorization" not in request.headers and API_HEADER not in request.headers:
        raise web.HTTPForbidden(text=f"missing {API_HEADER} header\n")
    return console


async def _actors(request: web.Request) -> web.Response:
    _require(request)
    state = request.app[STATE]
    actors = []
    for record in state.registry:
        if not record.live:
            continue
        spec = record.service_spec
        actors.append(
            {
                "id": id_text(record.actr_id),
                "type": type_text(record.actr_id.type),
                "realm": record.actr_id.realm.realm_id,
                "node": record.node or state.node,
                "backlog": record.mailbox_backlog,
                "spec": spec.name if spec is not None else None,
                "fingerprint": spec.fingerprint if spec is not None else None,
            }
        )
    actors.sort(key=lambda a: (str(a["type"]), str(a["id"])))
    return web.json_response({"actors": actors}, headers={"Cache-Control": "no-store"})


async def _credential(request: web.Request) -> web.Response:
    """Registers the console page as an actor, through this server's own /ais/register
    (its rules and limits apply), and hands the page its RegisterOk."""
    console = _require(request, post=True)
    state = request.app[STATE]
    realm = console.realm if console.realm is not None else min(state.config.realms)
    secret = state.config.realms.get(realm)
    if secret is None:
        raise web.HTTPServiceUnavailable(text=f"realm {realm} is not configured\n")
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if not sockname:
        raise web.HTTPServiceUnavailable(text="no local address to register through\n")
    host, port = sockname[0], sockname[1]
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    body = RegisterRequest(actr_type=CONSOLE_TYPE, realm=Realm(realm_id=realm))
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            url + REGISTER_PATH,
            data=body.SerializeToString(),
            headers={REALM_SECRET_HEADER: secret, "Content-Type": PROTOBUF_CONTENT_TYPE},
        ) as resp,
    ):
        answer = RegisterResponse.FromString(await resp.read())
    if answer.WhichOneof("result") != "success":
        raise web.HTTPServiceUnavailable(text=f"registration refused: {answer.error.message}\n")
    ok = answer.success
    ok.ClearField("renewal_token")  # the page does not renew: it asks for a new one
    return web.json_response(
        {"registration": _b64(ok.SerializeToString()), "id": id_text(ok.actr_id)},
        headers={"Cache-Control": "no-store"},
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
