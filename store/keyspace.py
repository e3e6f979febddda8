"""Every Redis key name leaf7 uses, and nothing else.

All keys of one project carry the hash tag ``{<project_id>}`` so that every script and
multi-key command about a project lands in one Redis Cluster slot. Vendor data is tagged with
``{v:<vendor_id>}``; the two lookups that start from a bare secret or id (API key digest,
key_id -> project) are single keys in their own slots.
"""

from collections.abc import Callable

PREFIX = "l7"


def _in_project(suffix: str, doc: str) -> Callable[[str], str]:
    """The name of a key of one project, by project_id: ``l7:{<project_id>}:<suffix>`` (the
    project's hash tag, so the key shares the project's slot); ``doc`` says what it holds."""

    def name(project_id: str) -> str:
        return f"{PREFIX}:{{{project_id}}}:{suffix}"

    name.__doc__ = doc
    return name


def _in_vendor(suffix: str, doc: str) -> Callable[[str], str]:
    """The name of a key of one vendor, by vendor_id: ``l7:{v:<vendor_id>}:<suffix>``."""

    def name(vendor_id: str) -> str:
        return f"{PREFIX}:{{v:{vendor_id}}}:{suffix}"

    name.__doc__ = doc
    return name


def vendor(vendor_id: str) -> str:
    """Hash: name, discord_id, created_at, api_key_hash."""
    return f"{PREFIX}:{{v:{vendor_id}}}"


vendor_projects = _in_vendor("projects", "Set of the vendor's project ids.")


def api_key(digest: str) -> str:
    """String: vendor_id, found by the keyed hash (HMAC-SHA256 with the server secret) of the
    API key; the key itself is never stored. A rotated-out key's record has a TTL (grace).
    The digest is the hash tag, shared with the key's rate-limit hash."""
    return f"{PREFIX}:apikey:{{{digest}}}"


vendor_previous_keys = _in_vendor(
    "previous_keys",
    "Set of the digests of the vendor's previous API keys still in their grace period (the set "
    "expires with the longest grace), so they can be revoked early.",
)


def api_key_rate(digest: str) -> str:
    """Hash: the vendor API rate-limit window of one API key, with a TTL (same slot as the
    key's record, so one script looks the key up and counts the request)."""
    return f"{PREFIX}:apikey:{{{digest}}}:rl"


keygen_rate = _in_vendor(
    "rl:keygen", "Hash: the key-generation rate-limit window of one vendor, with a TTL."
)


def client(project_id: str, subject: str) -> str:
    """Hash: one client IP's (or IPv6 /64's) execution-rate window and failed-verdict counter
    in a project, with a TTL: limits are per project and client IP, so the execution check
    stays one script in the project's slot. An IPv6 /48 (``2001:db8:1::/48``) has one too,
    for its failed-verdict counter alone."""
    return f"{PREFIX}:{{{project_id}}}:ip:{subject}"


def key_ref(key_id: str) -> str:
    """String: the project_id of a key, so a bare key_id in a path resolves in O(1)."""
    return f"{PREFIX}:kref:{key_id}"


project = _in_project("project", "Hash: the project's settings plus its vendor_id (owner).")


project_tombstone = _in_project(
    "deleted", "Hash: a project being deleted (its hash, renamed), until its last key is gone."
)


project_source = _in_project(
    "source", "String: the hosted Lua source the loader receives after a valid check."
)


key_prefix = _in_project(
    "key:", "Prefix of key hashes; scripts append member ids read from the indexes."
)


def key(project_id: str, key_id: str) -> str:
    """Hash: one buyer key, which becomes the active key with the same id when redeemed."""
    return key_prefix(project_id) + key_id


buyer_index = _in_project(
    "buyers", "Set of every key id generated in the project (redeemed or not)."
)


active_index = _in_project("active", "Set of the redeemed (active) key ids of the project.")


discord_prefix = _in_project("discord:", "Prefix of the per-Discord-user sets of active key ids.")


def discord_index(project_id: str, discord_id: str) -> str:
    """Set of the active key ids one Discord user holds in the project."""
    return discord_prefix(project_id) + discord_id


key_discords = _in_project(
    "key_discords",
    "Hash: active key_id -> Discord id of its redeemer, so pruning an expired key can reach its"
    " Discord index and deleting the project can find every Discord index.",
)


hwid_bans = _in_project(
    "hwid_bans", "Hash: banned HWID -> number of banned keys that hold it (unban decrements)."
)


vendor_blacklist = _in_vendor(
    "blacklist", "Hash: blacklist entry id -> JSON {ip, hwid, reason, timestamp} (vendor-wide)."
)


blacklist_hwids = _in_project(
    "bl_hwids",
    "Hash: blacklisted HWID -> entry id; the vendor's blacklist mirrored into the project's "
    "slot, so the loader check reads it in its own script.",
)


blacklist_ips = _in_project(
    "bl_ips",
    "Hash: blacklisted client IP -> entry id (mirror, like blacklist_hwids); a network is the "
    "field ``<address in hex>/<prefix length>`` (``0a000000/8``), and the field ``/`` lists the"
    " prefix lengths in use, longest first (``4/24 6/64``); see store/blacklist.py.",
)


blacklist_attempts = _in_project(
    "bl_attempts", "Hash: blacklist entry id -> executions it refused in this project."
)


events = _in_project(
    "events", "Stream, capped: every execution verdict and vendor action (the dashboard feed)."
)


notify = _in_project(
    "notify",
    "Stream: the events vendors are notified of, while the project has a webhook; read by the "
    "webhook deliverers' consumer group, entries deleted once delivered.",
)


def event_streams(project_id: str) -> list[str]:
    """The two streams an event-emitting script takes as its last KEYS."""
    return [events(project_id), notify(project_id)]


role_changes = _in_project(
    "roles",
    "Stream: Discord users whose role in the project's guild may have to change (written only "
    "while the project has a Discord role); read by the bot's consumer group ``roles``, entries"
    " deleted once applied (store/roles.py).",
)


role_checks = _in_project(
    "role_checks",
    "Sorted set: Discord id -> when the user's role must be checked again (score: epoch s of "
    "the next expiry of one of their keys, or the end of a timed ban); the bot's sweep moves "
    "the due ones to the role stream.",
)


def role_revokes(guild_id: str) -> str:
    """Stream: Discord users whose role is to be removed because the project that granted it
    was deleted (``guild``, ``role``, ``discord_id``, ``vendor_id``, ``project_id``). Per
    guild, in its own slot: it outlives the project; read by the consumer group ``roles`` of
    every bot whose project uses the guild, entries deleted once applied (store/roles.py)."""
    return f"{PREFIX}:roles:revoke:{{{guild_id}}}"


def role_revoke_guild(project_id: str) -> str:
    """String: the guild of a deleted project whose users' roles were queued for removal, so
    the project's bot, restarted after the delete, still finds the revoke stream (TTL). Not
    in the project's slot: nothing of a deleted project remains there."""
    return f"{PREFIX}:roles:deleted:{project_id}"


def synced_streams(project_id: str) -> list[str]:
    """The last four KEYS of a script that changes keys of Discord users: the role stream
    and the re-check set (store/lua/_common.lua ``role_sync``), then the two event streams."""
    return [role_changes(project_id), role_checks(project_id), *event_streams(project_id)]


def hourly_executions(project_id: str, hour: int) -> str:
    """Counter of valid executions in one hour (epoch hours); expires by itself."""
    return f"{PREFIX}:{{{project_id}}}:execs:{hour}"


def integration_ref(integration_id: str) -> str:
    """String: the project_id of a store integration, so the public hook URL (a bare
    integration id) resolves with one GET."""
    return f"{PREFIX}:integ:{integration_id}"


integrations = _in_project(
    "integrations",
    "Hash: the project's store integrations, four fields each: ``<id>:provider``, "
    "``<id>:secret``, ``<id>:products`` (JSON), ``<id>:created_at``.",
)


orders = _in_project(
    "orders",
    "Hash: ``<provider>:<order id>`` -> the order as JSON (its keys included): one record per "
    "store order, written in the step that generates its keys.",
)


order_index = _in_project(
    "order_index",
    "Sorted set (all scores 0, lexical order): ``<created_at, 10 digits>|<order field>``, the "
    "orders in creation order for the listing.",
)


order_idempotency = _in_project(
    "order_idem", "Hash: ``<provider>:<idempotency key>`` -> the order field it delivered."
)


def webhook_projects() -> str:
    """Set of project ids with a webhook and notifications on (the deliverers' work list)."""
    return f"{PREFIX}:webhook_projects"


def session(session_digest: str) -> str:
    """Hash: one dashboard session (vendor_id, digest of the API key it signed in with, csrf,
    ends = its absolute end, batch = the last generated keys), found by the SHA-256 of the
    cookie's session id (the id itself is never stored); TTL = the idle timeout, refreshed on
    use, never past ``ends``."""
    return f"{PREFIX}:session:{{{session_digest}}}"


vendor_sessions = _in_vendor(
    "sessions",
    "Sorted set: the session digests of one vendor, scored by their absolute end (sign out "
    "everywhere; ended ones are trimmed on each sign-in).",
)


def signin_rate(subject: str) -> str:
    """Hash: the dashboard sign-in rate-limit window of one client IP (or IPv6 /64), with a
    TTL."""
    return f"{PREFIX}:signin:{{{subject}}}:rl"


def project_keys(project_id: str) -> list[str]:
    """The fixed per-project keys (everything but key hashes and discord sets)."""
    return [
        project(project_id),
        project_source(project_id),
        buyer_index(project_id),
        active_index(project_id),
        key_discords(project_id),
        hwid_bans(project_id),
        blacklist_hwids(project_id),
        blacklist_ips(project_id),
        blacklist_attempts(project_id),
        events(project_id),
        notify(project_id),
        role_changes(project_id),
        role_checks(project_id),
        integrations(project_id),
        orders(project_id),
        order_index(project_id),
        order_idempotency(project_id),
    ]


def _execute_fixed(project_id: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return (
        (
            project(project_id),
            hwid_bans(project_id),
            project_source(project_id),
            active_index(project_id),
            blacklist_hwids(project_id),
            blacklist_ips(project_id),
            blacklist_attempts(project_id),
        ),
        (role_changes(project_id), role_checks(project_id), events(project_id), notify(project_id)),
    )


# project_id -> its fixed execute KEYS: pure names (no state), kept so the hot path formats
# only the names that vary per check; bounded (cleared when full).
_EXECUTE_FIXED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}


def execute_fixed(project_id: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The execute script's per-project KEYS (store/lua/execute.lua): the first seven, and
    the four that end the list (``synced_streams``)."""
    fixed = _EXECUTE_FIXED.get(project_id)
    if fixed is None:
        if len(_EXECUTE_FIXED) >= 4096:
            _EXECUTE_FIXED.clear()
        fixed = _EXECUTE_FIXED[project_id] = _execute_fixed(project_id)
    return fixed
