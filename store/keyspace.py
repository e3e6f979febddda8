"""Every Redis key name leaf7 uses, and nothing else.

All keys of one project carry the hash tag ``{<project_id>}`` so that every script and
multi-key command about a project lands in one Redis Cluster slot. Vendor data is tagged with
``{v:<vendor_id>}``; the two lookups that start from a bare secret or id (API key digest,
vendor and key_id -> project) are single keys in their own slots.
"""

import re
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


# SCAN MATCH pattern of every vendor's keys (the start-up hint "no vendor yet").
VENDOR_KEYS = f"{PREFIX}:{{v:*"


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


def key_ref(vendor_id: str, key_id: str) -> str:
    """String: the project_id of one of the vendor's keys, so a bare key_id in a path resolves
    in O(1). Per vendor: key ids are private to their vendor (two vendors may hold the same
    id, each in a project of their own); unique within one vendor (store/keyrefs.py)."""
    return f"{PREFIX}:kref:{vendor_id}:{key_id}"


def legacy_key_ref(key_id: str) -> str:
    """String: a key's project_id as versions before per-vendor refs wrote it (one name for
    every vendor). Never written again; read after ``key_ref`` (store/keyrefs.py)."""
    return f"{PREFIX}:kref:{key_id}"


project = _in_project("project", "Hash: the project's settings plus its vendor_id (owner).")


project_tombstone = _in_project(
    "deleted", "Hash: a project being deleted (its hash, renamed), until its last key is gone."
)


project_source = _in_project(
    "source", "String: the hosted Lua source the loader receives after a valid check."
)


project_original = _in_project(
    "source_original",
    "String: while the project's obfuscation is on, the source the vendor uploaded (what the "
    "obfuscator reads; ``source`` holds its output); none while obfuscation is off.",
)

project_marks = _in_project(
    "source_marks",
    "String: the watermark plan of the hosted source (JSON, store/watermark.py): where each "
    "key's copy differs, in both spellings; written with the source (empty: none).",
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
    "while the project has a Discord role); read by the consumer group ``roles`` of the role "
    "sync routes, entries deleted once the vendor's bot acknowledged them (store/roles.py).",
)


role_checks = _in_project(
    "role_checks",
    "Sorted set: Discord id -> when the user's role must be checked again (score: epoch s of "
    "the next expiry of one of their keys, or the end of a timed ban); the role sync route's "
    "sweep moves the due ones to the role stream.",
)


role_revokes = _in_vendor(
    "roles:revoke",
    "Stream: Discord users whose role is to be removed because a project of the vendor that "
    "granted it was deleted (``guild``, ``role``, ``discord_id``, ``project_id``). Per vendor, "
    "in the vendor's slot: it outlives the project, and only that vendor's role sync reads it "
    "(consumer group ``roles``, entries deleted once acknowledged; store/roles.py).",
)


def synced_streams(project_id: str) -> list[str]:
    """The last four KEYS of a script that changes keys of Discord users: the role stream
    and the re-check set (store/lua/_common.lua ``role_sync``), then the two event streams."""
    return [role_changes(project_id), role_checks(project_id), *event_streams(project_id)]


def hourly_executions(project_id: str, hour: int) -> str:
    """Counter of valid executions in one hour (epoch hours); expires by itself."""
    return f"{PREFIX}:{{{project_id}}}:execs:{hour}"


def hourly_executors(project_id: str, hour: int) -> str:
    """Hash: valid executions in one hour (epoch hours) by executor name (normalised, at most
    ``store.checks.EXECUTOR_CAP`` names, the rest under ``other``); expires by itself."""
    return f"{PREFIX}:{{{project_id}}}:executors:{hour}"


def daily_reports(project_id: str, day: int) -> str:
    """Hash: the loader's reports of forged answers it refused on one UTC day (epoch days),
    by reason (``POST /api/loader/report``); expires by itself."""
    return f"{PREFIX}:{{{project_id}}}:reports:{day}"


def report_rate(project_id: str, subject: str) -> str:
    """Hash: the reports one client IP (or IPv6 /64) sent in the current window (``w``,
    ``n``), with a TTL."""
    return f"{PREFIX}:{{{project_id}}}:rl:report:{subject}"


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


def hook_failures(project_id: str, integration_id: str) -> str:
    """Hash: the failed-signature window of one store integration's hook (fields ``w``,
    ``n``), with a TTL; in the project's slot."""
    return f"{PREFIX}:{{{project_id}}}:rl:hookfail:{integration_id}"


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


def oauth_state(state_digest: str) -> str:
    """String: one "Sign in with Discord" in flight (JSON: the PKCE verifier, the digest of
    its pre-auth cookie, the mode, the vendor when linking), found by the SHA-256 of its
    OAuth2 ``state``; TTL 10 minutes, taken once (GETDEL)."""
    return f"{PREFIX}:oauth:{{{state_digest}}}"


def discord_vendor(discord_id: str) -> str:
    """String: the vendor a Discord account signs in to (written when the account is linked;
    believed only while that vendor's ``discord_id`` is still the account)."""
    return f"{PREFIX}:discord:{{{discord_id}}}:vendor"


def signin_rate(subject: str) -> str:
    """Hash: the dashboard sign-in rate-limit window of one client IP (or IPv6 /64), with a
    TTL."""
    return f"{PREFIX}:signin:{{{subject}}}:rl"


# What a backup file may hold (service/backup/). leaf7's keyspace is every name that starts
# with ``BACKUP_PREFIX``: a restore refuses a whole file that holds any other name. Of those,
# the names ``NOT_RESTORED`` matches (the whole name) are never written to a backup nor
# restored from one: a dashboard session is found by the plain SHA-256 of its cookie, so a
# session restored from a file is a sign-in for whoever wrote the file; the rate-limit
# windows only count recent requests. Adjust the tuple when a family is added or renamed.
BACKUP_PREFIX = f"{PREFIX}:".encode()
_TAG = r"\{[^{}]*\}"  # a hash tag: {<project_id>}, {v:<vendor_id>}, {<digest>}
NOT_RESTORED = re.compile(
    "|".join(
        (
            rf"{PREFIX}:session:.*",  # session()
            rf"{PREFIX}:\{{v:[^{{}}]*\}}:sessions",  # vendor_sessions()
            rf"{PREFIX}:signin:.*",  # signin_rate()
            rf"{PREFIX}:oauth:.*",  # oauth_state()
            rf"{PREFIX}:apikey:{_TAG}:rl",  # api_key_rate()
            rf"{PREFIX}:{_TAG}:rl:.*",  # keygen_rate(), and any rate window of a vendor or project
            rf"{PREFIX}:{_TAG}:ip:.*",  # client()
        )
    ).encode(),
    re.DOTALL,
)


def backup_family(name: bytes) -> str:
    """What a backup does with a key of this name: ``restore``, ``skip`` (never restored:
    ``NOT_RESTORED``) or ``foreign`` (not leaf7's: the file is refused)."""
    if not name.startswith(BACKUP_PREFIX):
        return "foreign"
    return "skip" if NOT_RESTORED.fullmatch(name) else "restore"


def project_keys(project_id: str) -> list[str]:
    """The fixed per-project keys (everything but key hashes and discord sets)."""
    return [
        project(project_id),
        project_source(project_id),
        project_original(project_id),
        project_marks(project_id),
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
        free_config(project_id),
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
        (
            project_marks(project_id),
            role_changes(project_id),
            role_checks(project_id),
            events(project_id),
            notify(project_id),
        ),
    )


# project_id -> its fixed execute KEYS: pure names (no state), kept so the hot path formats
# only the names that vary per check; bounded (cleared when full).
_EXECUTE_FIXED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}


def execute_fixed(project_id: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The execute script's per-project KEYS (store/lua/execute.lua): the first seven, and
    the five that end the list (the watermark plan, then ``synced_streams``)."""
    fixed = _EXECUTE_FIXED.get(project_id)
    if fixed is None:
        if len(_EXECUTE_FIXED) >= 4096:
            _EXECUTE_FIXED.clear()
        fixed = _EXECUTE_FIXED[project_id] = _execute_fixed(project_id)
    return fixed


# ---- free keys through ad checkpoints (store/freekeys.py, docs/free-keys.md) -----------------

free_config = _in_project(
    "fk:config",
    "Hash: the project's free-key settings: ``config`` (JSON, no secrets), ``secret:<k>`` (a "
    "Linkvertise checkpoint's publisher token), ``postback:<k>`` (a LootLabs checkpoint's "
    "postback path secret), ``turnstile`` (the Turnstile secret).",
)


def free_machine(project_id: str, machine_id: str) -> str:
    """Hash: one machine of the get-key page, by its opaque id (an HMAC of the HWID): ``hwid``,
    ``key_id`` (its last free key), ``day``/``n`` (keys issued on that UTC day), ``extends``;
    with a TTL (refreshed by each loader run that asks for a key)."""
    return f"{PREFIX}:{{{project_id}}}:fk:m:{machine_id}"


def free_session(project_id: str, session_id: str) -> str:
    """Hash: one get-key session (its id is the browser's cookie): ``mid``, ``ip``, ``ua`` (a
    digest of the User-Agent), ``step``, ``started``, ``click``, ``mode``; with a TTL."""
    return f"{PREFIX}:{{{project_id}}}:fk:s:{session_id}"


def free_token(project_id: str, digest: str) -> str:
    """String: a provider token, hash or LootLabs ``unique_id`` already used (by its SHA-256),
    so each is accepted once; with a TTL."""
    return f"{PREFIX}:{{{project_id}}}:fk:t:{digest}"


def free_postback(project_id: str, click_id: str) -> str:
    """String: the IP a LootLabs postback reported for one checkpoint start (``click_id``);
    with a TTL."""
    return f"{PREFIX}:{{{project_id}}}:fk:pb:{click_id}"


def free_funnel(project_id: str, day: int) -> str:
    """Hash: the get-key funnel of one UTC day (epoch days): ``views``, ``start:<k>``,
    ``done:<k>``, ``issued``, ``extended``, ``refused:<reason>``; with a TTL."""
    return f"{PREFIX}:{{{project_id}}}:fk:funnel:{day}"


def free_getkey_rate(project_id: str, subject: str) -> str:
    """Hash: ``POST /api/loader/getkey`` calls of one client IP (or IPv6 /64) in the project in
    the current window (``w``, ``n``), with a TTL: each call may write a machine record."""
    return f"{PREFIX}:{{{project_id}}}:rl:gk:{subject}"


def free_sessions_rate(project_id: str, subject: str) -> str:
    """Hash: the get-key sessions one client IP (or IPv6 /64) started in the current window
    (``w``, ``n``), with a TTL."""
    return f"{PREFIX}:{{{project_id}}}:rl:fk:{subject}"
