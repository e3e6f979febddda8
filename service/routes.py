"""Every route of the service. Each path also answers with a trailing slash."""

from aiohttp import web
from aiohttp.typedefs import Handler

from handlers import (
    analytics,
    blacklist,
    dashboard,
    health,
    integrations,
    keys,
    leaks,
    loader,
    openapi,
    projects,
    reports,
    rolesync,
    transfer,
    users,
    vendor,
)
from handlers.freekeys import api as freekeys_api
from handlers.freekeys import page as freekeys_page


def _add(router: web.UrlDispatcher, method: str, path: str, handler: Handler) -> None:
    router.add_route(method, path, handler)
    router.add_route(method, path + "/", handler)


def setup_routes(app: web.Application) -> None:
    r = app.router
    _add(r, "GET", "/healthz", health.healthz)
    _add(r, "GET", "/readyz", health.readyz)
    _add(r, "GET", "/openapi.json", openapi.openapi_json)
    _add(r, "GET", "/docs", openapi.docs)
    _add(r, "GET", "/metrics", health.metrics)

    _add(r, "POST", "/api/vendor/projects", projects.create)
    _add(r, "GET", "/api/vendor/projects", projects.list_)
    _add(r, "GET", "/api/vendor/projects/{project_id}", projects.get)
    _add(r, "PATCH", "/api/vendor/projects/{project_id}", projects.update)
    _add(r, "DELETE", "/api/vendor/projects/{project_id}", projects.delete)
    _add(r, "PUT", "/api/vendor/projects/{project_id}/source", projects.set_source)
    _add(r, "GET", "/api/vendor/projects/{project_id}/signing", projects.signing)
    _add(r, "POST", "/api/vendor/projects/{project_id}/signing/rotate", projects.rotate_signing)
    _add(r, "GET", "/api/vendor/projects/{project_id}/loader.lua", projects.loader)

    _add(r, "POST", "/api/vendor/leaks/identify", leaks.identify)

    _add(r, "POST", "/api/vendor/keys/buyer", keys.generate)
    _add(r, "GET", "/api/vendor/keys/buyer", keys.list_buyer)
    _add(r, "DELETE", "/api/vendor/keys/buyer", keys.delete_unredeemed)
    _add(r, "GET", "/api/vendor/keys/buyer/{key_id}", keys.get_buyer)
    _add(r, "DELETE", "/api/vendor/keys/buyer/{key_id}", keys.delete_buyer)
    _add(r, "PATCH", "/api/vendor/keys/buyer/{key_id}", keys.set_buyer_note)
    _add(r, "POST", "/api/vendor/keys/redeem", keys.redeem)
    _add(r, "POST", "/api/vendor/keys/import", transfer.import_keys)
    _add(r, "GET", "/api/vendor/export", transfer.export)
    _add(r, "GET", "/api/vendor/keys/active", keys.list_active)
    _add(r, "POST", "/api/vendor/keys/active/extend", keys.extend)
    # Not "extend": that path is the POST above, and GET/PATCH must not be advertised on it.
    _add(r, "GET", "/api/vendor/keys/active/{key_id:(?!extend$)[^{}/]+}", keys.get_active)
    _add(r, "PATCH", "/api/vendor/keys/active/{key_id:(?!extend$)[^{}/]+}", keys.set_active_note)
    _add(r, "POST", "/api/vendor/keys/active/{key_id}/ban", keys.ban)
    _add(r, "POST", "/api/vendor/keys/active/{key_id}/unban", keys.unban)
    _add(r, "POST", "/api/vendor/keys/active/{key_id}/reset_hwid", keys.reset_hwid)
    _add(r, "PATCH", "/api/vendor/keys/active/{key_id}/hwid", keys.set_hwid)

    _add(r, "GET", "/api/vendor/blacklist", blacklist.list_)
    _add(r, "POST", "/api/vendor/blacklist", blacklist.add)
    _add(r, "DELETE", "/api/vendor/blacklist/{entry_id}", blacklist.delete)

    _add(r, "GET", "/api/vendor/metrics/events", analytics.events)
    _add(r, "GET", "/api/vendor/metrics/overview", analytics.overview)
    _add(r, "GET", "/api/vendor/metrics/chart", analytics.chart)

    _add(r, "GET", "/api/vendor/users/{discord_id}/keys", users.keys)
    _add(r, "POST", "/api/vendor/users/{discord_id}/reset_hwid", users.reset_hwid)
    _add(r, "POST", "/api/vendor/api_key/rotate", vendor.rotate_api_key)
    _add(r, "POST", "/api/vendor/api_key/revoke_previous", vendor.revoke_previous)
    _add(r, "GET", "/api/vendor/role_sync/changes", rolesync.changes)
    _add(r, "POST", "/api/vendor/role_sync/ack", rolesync.ack)

    _add(r, "POST", "/api/vendor/projects/{project_id}/integrations", integrations.create)
    _add(r, "GET", "/api/vendor/integrations/{integration_id}", integrations.get)
    _add(r, "PATCH", "/api/vendor/integrations/{integration_id}", integrations.update)
    _add(r, "DELETE", "/api/vendor/integrations/{integration_id}", integrations.delete)
    _add(r, "GET", "/api/vendor/orders", integrations.orders)
    _add(r, "POST", "/api/hooks/{integration_id}", integrations.hook)

    _add(r, "POST", "/api/loader/execute", loader.execute)
    _add(r, "POST", "/api/loader/getkey", freekeys_api.getkey)
    _add(r, "POST", "/api/loader/report", reports.report)
    _add(r, "GET", "/api/vendor/analytics/executors", reports.executors_)
    _add(r, "GET", "/api/vendor/analytics/reports", reports.reports)
    _add(r, "GET", "/api/vendor/projects/{project_id}/free_keys", freekeys_api.get_settings)
    _add(r, "PUT", "/api/vendor/projects/{project_id}/free_keys", freekeys_api.put_settings)
    _add(r, "GET", "/api/vendor/analytics/free_keys", freekeys_api.funnel)
    _add(r, "GET", "/getkey/{project_id}", freekeys_page.page)
    _add(r, "POST", "/getkey/{project_id}/start", freekeys_page.start)
    _add(r, "POST", "/getkey/{project_id}/next", freekeys_page.next_)
    _add(r, "GET", "/getkey/{project_id}/return/{step}", freekeys_page.back)
    _add(r, "GET", "/getkey/{project_id}/postback/{secret}", freekeys_page.postback)
    _add(r, "GET", "/api/loader/{project_id}/loader.lua", loader.loader)

    dashboard.add_routes(r)
