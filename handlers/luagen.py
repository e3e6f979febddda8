"""Lua text the server emits: safe string literals, the L7_* macro prelude, the loader.

Every value that reaches Lua goes through ``lua_string``: the result is pure printable ASCII in
double quotes, with every other byte written as a three-digit decimal escape, so no note,
Discord ID or project name can end the literal or inject code, whatever it contains.
"""

import re

MACROS = (
    "L7_LinkedDiscordID",
    "L7_ScriptName",
    "L7_ScriptVersion",
    "L7_TotalExecutions",
    "L7_SecondsLeft",
    "L7_UserNote",
)
_MACRO_RE = re.compile(r"\b(" + "|".join(MACROS) + r")\b")

_SAFE = {b: chr(b) for b in range(0x20, 0x7F) if chr(b) not in '"\\'}
_ESCAPES = [_SAFE.get(b, f"\\{b:03d}") for b in range(256)]
_ESCAPES[ord("\\")] = "\\\\"
_ESCAPES[ord('"')] = '\\"'
_ESCAPES[ord("\n")] = "\\n"


def lua_string(value: str) -> str:
    """A Lua 5.1+ string literal whose value is exactly the UTF-8 bytes of ``value``."""
    return '"' + "".join([_ESCAPES[b] for b in value.encode("utf-8")]) + '"'


def used_macros(source: str) -> str:
    """The macros a source refers to, comma separated in a fixed order (stored with it)."""
    found = set(_MACRO_RE.findall(source))
    return ",".join(m for m in MACROS if m in found)


def macro_prelude(values: dict[str, str | int], used: tuple[str, ...]) -> str:
    """``local`` definitions of exactly the macros ``used``, one per line."""
    lines = []
    for name in used:
        value = values[name]
        literal = str(value) if isinstance(value, int) else lua_string(value)
        lines.append(f"local {name} = {literal}\n")
    return "".join(lines)


LOADER_TEMPLATE = """\
-- leaf7 loader for project {project_id}
-- Usage:
--   script_key = "YOUR_KEY"
--   loadstring(game:HttpGet("{loader_url}"))()
local PROJECT_ID = {project_literal}
local ENDPOINT = {endpoint_literal}

local env = (getgenv and getgenv()) or _G
local key = env.script_key or script_key

local function notify(message)
  message = "[leaf7] " .. tostring(message)
  if warn then warn(message) else print(message) end
end

local request = (syn and syn.request) or (http and http.request) or http_request
  or request or (fluxus and fluxus.request)
if type(request) ~= "function" then
  return notify("this executor has no HTTP request function")
end

local HttpService = game:GetService("HttpService")
local body = {{project_id = PROJECT_ID, script_key = key}}
if type(gethwid) == "function" then
  local ok, hwid = pcall(gethwid)
  if ok and type(hwid) == "string" and hwid ~= "" then body.hwid = hwid end
end

local ok, response = pcall(request, {{
  Url = ENDPOINT,
  Method = "POST",
  Headers = {{["Content-Type"] = "application/json"}},
  Body = HttpService:JSONEncode(body),
}})
if not ok or type(response) ~= "table" then
  return notify("could not reach the key server")
end

local decoded, data = pcall(HttpService.JSONDecode, HttpService, response.Body or "")
if not decoded or type(data) ~= "table" then
  return notify("key server error (HTTP " .. tostring(response.StatusCode) .. ")")
end
if data.valid == true and data.code == "KEY_VALID" and type(data.script) == "string" then
  local fn, err = loadstring(data.script)
  if not fn then
    return notify("the script failed to load: " .. tostring(err))
  end
  return fn()
end
notify(data.message or data.detail or data.code or "key check failed")
"""


def loader_lua(project_id: str, base_url: str) -> str:
    loader_url = f"{base_url}/api/loader/{project_id}/loader.lua"
    return LOADER_TEMPLATE.format(
        project_id=project_id,
        loader_url=loader_url,
        project_literal=lua_string(project_id),
        endpoint_literal=lua_string(f"{base_url}/api/loader/execute"),
    )
