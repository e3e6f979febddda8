"""Lua text the server emits: safe string literals, the L7_* macro prelude, the loader.

Every value that reaches Lua goes through ``lua_string``: the result is pure printable ASCII in
double quotes, with every other byte written as a three-digit decimal escape, so no note,
Discord ID or project name can end the literal or inject code, whatever it contains.
"""

import functools
import re
from importlib import resources

MACROS = (
    "L7_LinkedDiscordID",
    "L7_ScriptName",
    "L7_ScriptVersion",
    "L7_TotalExecutions",
    "L7_SecondsLeft",
    "L7_UserNote",
    "L7_IsPremium",
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


def macro_prelude(values: dict[str, str | int | bool], used: tuple[str, ...]) -> str:
    """``local`` definitions of exactly the macros ``used``, one per line."""
    lines = []
    for name in used:
        value = values[name]
        if isinstance(value, bool):  # L7_IsPremium
            literal = "true" if value else "false"
        else:
            literal = str(value) if isinstance(value, int) else lua_string(value)
        lines.append(f"local {name} = {literal}\n")
    return "".join(lines)


# Lua both loaders share (the plain one and the signed one below), spliced into their
# templates. Placeholders are @NAME@ (Lua has braces), filled in one pass by _fill.
_LUA_NOTIFY = """\
local env = (getgenv and getgenv()) or _G
local key = env.script_key or script_key

local function notify(message)
  message = "[leaf7] " .. tostring(message)
  if warn then warn(message) else print(message) end
end
"""

_LUA_REQUEST = """\
local request = (syn and syn.request) or (http and http.request) or http_request
  or request or (fluxus and fluxus.request)
if type(request) ~= "function" then
  return notify("this executor has no HTTP request function")
end

local HttpService = game:GetService("HttpService")
"""

# Sends `body` with the machine's hwid and decodes the answer; opens the KEY_VALID branch.
_LUA_SEND = """\
if type(gethwid) == "function" then
  local ok, hwid = pcall(gethwid)
  if ok and type(hwid) == "string" and hwid ~= "" then body.hwid = hwid end
end

local ok, response = pcall(request, {
  Url = ENDPOINT,
  Method = "POST",
  Headers = {["Content-Type"] = "application/json"},
  Body = HttpService:JSONEncode(body),
})
if not ok or type(response) ~= "table" then
  return notify("could not reach the key server")
end

local decoded, data = pcall(HttpService.JSONDecode, HttpService, response.Body or "")
if not decoded or type(data) ~= "table" then
  return notify("key server error (HTTP " .. tostring(response.StatusCode) .. ")")
end
if data.valid == true and data.code == "KEY_VALID" and type(data.script) == "string" then
"""

# Runs the checked script (closing the KEY_VALID branch), or shows the get-key link or why not.
_LUA_RUN = """\
  local fn, err = loadstring(data.script)
  if not fn then
    return notify("the script failed to load: " .. tostring(err))
  end
  return fn()
end
if data.code == "KEY_REQUIRED" and type(data.getkey_url) == "string" then
  -- A free-keys project: the machine's get-key page, on the clipboard where the executor can.
  local copy = setclipboard or toclipboard or (syn and syn.write_clipboard)
  if type(copy) == "function" and pcall(copy, data.getkey_url) then
    return notify("you need a key: the get-key link is copied to your clipboard, paste it "
      .. "in your browser: " .. data.getkey_url)
  end
  return notify("you need a key: open this link in your browser: " .. data.getkey_url)
end
notify(data.message or data.detail or data.code or "key check failed")
"""

LOADER_TEMPLATE = (
    """\
-- leaf7 loader for project @PROJECT_ID@
-- Usage:
--   script_key = "YOUR_KEY"
--   loadstring(game:HttpGet("@LOADER_URL@"))()
local PROJECT_ID = @PROJECT_LITERAL@
local ENDPOINT = @ENDPOINT_LITERAL@

"""
    + _LUA_NOTIFY
    + "\n"
    + _LUA_REQUEST
    + "local body = {project_id = PROJECT_ID, script_key = key}\n"
    + _LUA_SEND
    + _LUA_RUN
)


def loader_lua(project_id: str, base_url: str) -> str:
    return _fill(
        LOADER_TEMPLATE,
        {
            "@PROJECT_ID@": project_id,
            "@LOADER_URL@": f"{base_url}/api/loader/{project_id}/loader.lua",
            "@PROJECT_LITERAL@": lua_string(project_id),
            "@ENDPOINT_LITERAL@": lua_string(f"{base_url}/api/loader/execute"),
        },
    )


# The loader of a project with signed verdicts (docs/loader-security.md): the same request as
# LOADER_TEMPLATE plus a nonce, and the chunk runs only once the answer's signature, nonce,
# times and chunk hash all check out. Placeholders are @NAME@ (the verifier has braces).
SIGNED_LOADER_TEMPLATE = (
    """\
-- leaf7 loader for project @PROJECT_ID@ (signed verdicts)
-- Usage:
--   script_key = "YOUR_KEY"
--   loadstring(game:HttpGet("@LOADER_URL@"))()
-- or pinned: this whole file in your script (a hook on HttpGet cannot swap it then).
-- The key server's answer runs only if it carries an Ed25519 signature by one of the keys
-- below over this run's nonce, a fresh time and the exact script: see the server's
-- docs/loader-security.md.
local PROJECT_ID = @PROJECT_LITERAL@
local ENDPOINT = @ENDPOINT_LITERAL@
local REPORT_ENDPOINT = @REPORT_LITERAL@
-- The project's verdict-signing public keys (Ed25519, hex) by key id; KID is the current one.
local KID = @KID_LITERAL@
local PUBLIC_KEYS = {
@PUBLIC_KEYS@}
-- Seconds the game's clock may differ from the key server's.
local MAX_SKEW = 30

"""
    + _LUA_NOTIFY
    + """\

local ed25519 = (function()
@VERIFIER@
end)()
local sha256, tohex, fromhex = ed25519.sha256, ed25519.tohex, ed25519.fromhex

"""
    + _LUA_REQUEST
    + """\

-- Called once when an answer fails verification (forged, replayed, stale or altered): tells
-- the key server, so the vendor sees crack attempts. A signal, not a defence: the hook that
-- forged the answer can drop this request too.
local function report(reason, executor)
  pcall(request, {
    Url = REPORT_ENDPOINT,
    Method = "POST",
    Headers = {["Content-Type"] = "application/json"},
    Body = HttpService:JSONEncode({project_id = PROJECT_ID, reason = reason,
      executor = executor}),
  })
end

-- A fresh nonce for this run. Its job is freshness, not secrecy: an answer is signed for
-- one nonce, so an answer captured in another run does not pass. Every source the executor
-- has is mixed in, so a hooked one alone does not make it predictable.
local function make_nonce()
  local parts = {}
  local function add(f)
    local ok, v = pcall(f)
    if ok and v ~= nil then parts[#parts + 1] = tostring(v) end
  end
  add(function() return HttpService:GenerateGUID(false) end)
  add(function() return HttpService:GenerateGUID(false) end)
  for _ = 1, 4 do
    add(function() return math.random(0, 2147483646) end)
  end
  add(os.clock)
  add(function() return tick() end)
  add(os.time)
  add(function() return tostring({}) end)
  return tohex(sha256(table.concat(parts, "|")))
end

-- The executor's name and version, where it tells them.
local function executor_name()
  local find = (type(identifyexecutor) == "function" and identifyexecutor)
    or (type(getexecutorname) == "function" and getexecutorname)
  if find then
    local ok, name, version = pcall(find)
    if ok and type(name) == "string" and name ~= "" then
      if type(version) == "string" and version ~= "" then name = name .. " " .. version end
      return string.sub(name, 1, 100)
    end
  end
  return nil
end

-- The game's clock: the server's synchronised time when there is one.
local function now()
  local ok, t = pcall(function() return workspace:GetServerTimeNow() end)
  if ok and type(t) == "number" then return t end
  return os.time()
end

local NONCE = make_nonce()
local KEY_TEXT = type(key) == "string" and key or ""

local function int(v)
  if type(v) == "number" and v % 1 == 0 and v >= 0 and v < 2 ^ 53 then return v end
  return nil
end

-- Nil when the answer is genuine, else why not, and the reason reported.
local function verify(data)
  local s = data.signature
  if type(s) ~= "table" then return "the answer is not signed", "unsigned" end
  local kid = s.kid
  local public_key = type(kid) == "string" and PUBLIC_KEYS[kid]
  if not public_key then
    return "signed by an unknown key id " .. tostring(kid), "unknown_kid"
  end
  if s.nonce ~= NONCE then
    return "the answer is for another request (replayed)", "wrong_nonce"
  end
  local iat, exp, split = int(s.iat), int(s.exp), int(s.split)
  local hwid, path, sig = s.hwid, s.path, s.sig
  if not iat or not exp or not split or type(path) ~= "table" or #path > 16
    or type(hwid) ~= "string" or not string.find(hwid, "^%x+$") or #hwid ~= 64
    or type(s.chunk) ~= "string" or type(sig) ~= "string" then
    return "malformed signature", "malformed"
  end
  local t = now()
  if exp - iat > 60 or t > exp + MAX_SKEW or t < iat - MAX_SKEW then
    return "the answer is stale", "stale"
  end
  local script = data.script
  if split > #script then return "malformed signature", "malformed" end
  local prelude, source = string.sub(script, 1, split), string.sub(script, split + 1)
  local chunk = sha256(sha256(prelude) .. sha256(source))
  if tohex(chunk) ~= s.chunk then return "the script was altered", "wrong_chunk" end
  local leaf = table.concat({"leaf7-verdict-v1", kid, PROJECT_ID, "KEY_VALID", NONCE,
    string.format("%d", iat), string.format("%d", exp), tohex(sha256(KEY_TEXT)), hwid,
    string.format("%d", split), tohex(chunk)}, "\\n") .. "\\n"
  local h = sha256("\\0" .. leaf)
  for i = 1, #path do
    local step = path[i]
    local sibling = type(step) == "string" and fromhex(string.sub(step, 2))
    if not sibling or #sibling ~= 32 then return "malformed signature", "malformed" end
    local side = string.sub(step, 1, 1)
    if side == "l" then
      h = sha256("\\1" .. sibling .. h)
    elseif side == "r" then
      h = sha256("\\1" .. h .. sibling)
    else
      return "malformed signature", "malformed"
    end
  end
  local message = "leaf7-batch-v1\\n" .. kid .. "\\n" .. tohex(h) .. "\\n"
  local signature = fromhex(sig)
  if not signature or not ed25519.verify(fromhex(public_key), message, signature) then
    return "bad signature", "bad_signature"
  end
  return nil
end

local EXECUTOR = executor_name()
local body = {project_id = PROJECT_ID, script_key = key, nonce = NONCE, kid = KID}
body.executor = EXECUTOR
"""
    + _LUA_SEND
    + """\
  local checked, reason, code = pcall(verify, data)
  if not checked or reason then
    if not checked then reason, code = "malformed answer", "malformed" end
    notify("refused the key server's answer: " .. reason)
    return report(code, EXECUTOR)
  end
"""
    + _LUA_RUN
)


@functools.cache
def verifier_lua() -> str:
    """The vendored Ed25519 verifier (handlers/lua/vendor/ed25519.lua): a chunk, a module."""
    return resources.files("handlers").joinpath("lua/vendor/ed25519.lua").read_text("utf-8")


def signed_loader_lua(project_id: str, base_url: str, keys: list[tuple[str, bytes]]) -> str:
    """The loader of a signing project; ``keys``: (key id, public key), the current first."""
    loader_url = f"{base_url}/api/loader/{project_id}/loader.lua"
    lines = "".join(f"  [{lua_string(kid)}] = {lua_string(pk.hex())},\n" for kid, pk in keys)
    values = {
        "@PROJECT_ID@": project_id,
        "@LOADER_URL@": loader_url,
        "@PROJECT_LITERAL@": lua_string(project_id),
        "@ENDPOINT_LITERAL@": lua_string(f"{base_url}/api/loader/execute"),
        "@REPORT_LITERAL@": lua_string(f"{base_url}/api/loader/report"),
        "@KID_LITERAL@": lua_string(keys[0][0]),
        "@PUBLIC_KEYS@": lines,
        "@VERIFIER@": verifier_lua().rstrip("\n"),
    }
    return _fill(SIGNED_LOADER_TEMPLATE, values)


_PLACEHOLDER = re.compile(r"@[A-Z_]+@")


def _fill(template: str, values: dict[str, str]) -> str:
    # One pass: nothing inserted (a URL, the verifier) is taken for a placeholder.
    return _PLACEHOLDER.sub(lambda m: values[m.group(0)], template)
