"""A fake of Discord's OAuth2 endpoints (an aiohttp app), for "Sign in with Discord" tests:
``/oauth2/authorize`` signs in as ``user`` at once and sends the browser back with a code;
``/api/oauth2/token`` checks the client, the redirect URL and the PKCE verifier against the
challenge, and takes each code once (a replay is Discord's ``invalid_grant``);
``/api/users/@me`` answers who the token's user is."""

import base64
import hashlib
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from tests.support.threaded import app_in_thread

CLIENT_ID = "1100000000000000001"
CLIENT_SECRET = "fake-client-secret"


@dataclass
class FakeDiscord:
    user: dict[str, Any] = field(
        default_factory=lambda: {"id": "700000000000000001", "username": "ada"}
    )
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    issued: list[str] = field(default_factory=list)  # every code handed out
    refused: list[str] = field(default_factory=list)  # why token requests were refused

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/oauth2/authorize", self.authorize)
        app.router.add_post("/api/oauth2/token", self.token)
        app.router.add_get("/api/users/@me", self.me)
        return app

    async def authorize(self, request: web.Request) -> web.Response:
        q = request.query
        assert q["client_id"] == CLIENT_ID and q["response_type"] == "code"
        assert q["scope"] == "identify" and q["code_challenge_method"] == "S256"
        code = secrets.token_urlsafe(16)
        self.codes[code] = {
            "challenge": q["code_challenge"],
            "redirect_uri": q["redirect_uri"],
            "user": dict(self.user),
        }
        self.issued.append(code)
        back = q["redirect_uri"] + "?" + urlencode({"code": code, "state": q["state"]})
        raise web.HTTPFound(back)

    def _refuse(self, why: str) -> web.Response:
        self.refused.append(why)
        return web.json_response({"error": "invalid_grant", "error_description": why}, status=400)

    async def token(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if auth != f"Basic {expected}":
            return web.json_response({"error": "invalid_client"}, status=401)
        form = await request.post()
        grant = self.codes.pop(str(form.get("code", "")), None)  # a code works once
        if grant is None:
            return self._refuse("unknown or used code")
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return self._refuse("redirect_uri")
        verifier = str(form.get("code_verifier", ""))
        digest = hashlib.sha256(verifier.encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant["challenge"]:
            return self._refuse("code_verifier")
        access = secrets.token_urlsafe(16)
        self.tokens[access] = grant["user"]
        return web.json_response(
            {"access_token": access, "token_type": "Bearer", "expires_in": 600, "scope": "identify"}
        )

    async def me(self, request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        user = self.tokens.get(token)
        if user is None:
            return web.json_response({"message": "401: Unauthorized"}, status=401)
        return web.json_response(user)


@contextmanager
def serving_in_thread(fake: FakeDiscord) -> Iterator[str]:
    """The fake on a loopback port, in a thread of its own (for sync tests); yields its base."""
    with app_in_thread(fake.app()) as base:
        yield base
