"""Lua scripts: one ``.lua`` file per script, loaded with importlib.resources.

``_common.lua`` holds the helpers every script shares and is prepended to each of them.
Scripts run by SHA (EVALSHA); a server that lost its script cache answers NOSCRIPT once and
the script is re-sent with EVAL (see ``Core.script`` in store/core.py, and the loader-check
batcher in store/checks.py, which does the same for its batches).
"""

import hashlib
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True, slots=True)
class Script:
    name: str
    source: str
    sha: str


def _load(name: str, prelude: str) -> Script:
    body = resources.files("store").joinpath(f"lua/{name}.lua").read_text("utf-8")
    source = prelude + body
    return Script(name, source, hashlib.sha1(source.encode()).hexdigest())  # noqa: S324


class Scripts:
    """Every script of the store, read once per process."""

    def __init__(self) -> None:
        prelude = resources.files("store").joinpath("lua/_common.lua").read_text("utf-8")
        self.generate_keys = _load("generate_keys", prelude)
        self.list_keys = _load("list_keys", prelude)
        self.get_key = _load("get_key", prelude)
        self.delete_buyer_key = _load("delete_buyer_key", prelude)
        self.redeem = _load("redeem", prelude)
        self.ban = _load("ban", prelude)
        self.unban = _load("unban", prelude)
        self.reset_hwid = _load("reset_hwid", prelude)
        self.set_hwid = _load("set_hwid", prelude)
        self.set_note = _load("set_note", prelude)
        self.update_project = _load("update_project", prelude)
        self.delete_project = _load("delete_project", prelude)
        self.delete_project_keys = _load("delete_project_keys", prelude)
        self.delete_project_rest = _load("delete_project_rest", prelude)
        self.set_source = _load("set_source", prelude)
        self.set_marks = _load("set_marks", prelude)
        self.obfuscation_job = _load("obfuscation_job", prelude)
        self.leak_event = _load("leak_event", prelude)
        self.execute = _load("execute", prelude)
        self.self_reset_hwid = _load("self_reset_hwid", prelude)
        self.delete_unredeemed = _load("delete_unredeemed", prelude)
        self.extend_keys = _load("extend_keys", prelude)
        self.blacklist_mirror = _load("blacklist_mirror", prelude)
        self.blacklist_unmirror = _load("blacklist_unmirror", prelude)
        self.rate_limit = _load("rate_limit", prelude)
        self.authenticate = _load("authenticate", prelude)
        self.rotate_api_key = _load("rotate_api_key", prelude)
        self.revoke_previous = _load("revoke_previous", prelude)
        self.integration_create = _load("integration_create", prelude)
        self.integration_update = _load("integration_update", prelude)
        self.integration_delete = _load("integration_delete", prelude)
        self.record_order = _load("record_order", prelude)
        self.import_keys = _load("import_keys", prelude)
        self.key_ref = _load("key_ref", prelude)
        self.role_state = _load("role_state", prelude)
        self.role_sweep = _load("role_sweep", prelude)
        self.role_ack = _load("role_ack", prelude)
        self.role_queue = _load("role_queue", prelude)
        self.session_resume = _load("session_resume", prelude)
        self.session_update = _load("session_update", prelude)
        self.discord_claim = _load("discord_claim", prelude)
        self.webhook_test = _load("webhook_test", prelude)
        self.signing_key = _load("signing_key", prelude)
        self.loader_report = _load("loader_report", prelude)
        self.free_keys_set = _load("free_keys_set", prelude)
        self.free_keys_start = _load("free_keys_start", prelude)
        self.free_keys_complete = _load("free_keys_complete", prelude)
        self.free_keys_postback = _load("free_keys_postback", prelude)

    def all(self) -> list[Script]:
        return [v for v in vars(self).values() if isinstance(v, Script)]
