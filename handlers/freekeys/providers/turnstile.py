"""Cloudflare Turnstile, optional before the first checkpoint: the page loads
``{LEAF7_TURNSTILE_API}/api.js``; its answer (``cf-turnstile-response``) is verified with
``POST {LEAF7_TURNSTILE_API}/siteverify`` (secret, response, remoteip)."""

from handlers.freekeys.providers.base import Http, json_of


def script_url(http: Http) -> str:
    return f"{http.turnstile}/api.js"


async def verify(http: Http, secret: str, response: str, ip: str) -> bool:
    """True when Cloudflare confirms ``response``; ``ProviderDown`` when it cannot tell."""
    if not response or len(response) > 2048:
        return False
    status, body = await http.request(
        "POST",
        f"{http.turnstile}/siteverify",
        data={"secret": secret, "response": response, "remoteip": ip},
    )
    data = json_of(body) if status == 200 else None
    return isinstance(data, dict) and data.get("success") is True
