"""Per-key watermarks in hosted Lua scripts: the marks, and reading them back from a leak.

Pure Python (no Redis, no HTTP): the upload path plans a revision's marks once, the loader
check splices a key's mark from the plan, and leak identification reads a leaked text.

**Carriers.** Places of a Lua 5.1 / Luau script with two spellings that mean exactly the
same thing, read from the token stream alone (never from whitespace or comments):

- an integer literal below 2^31: decimal or hexadecimal (``10`` / ``0xA``: the same double
  in Lua 5.1 and Luau, so it prints the same);
- a short string without quote characters in it: ``"..."`` or ``'...'``;
- a short string whose first character is printable ASCII: plain or a 3-digit decimal
  escape (``"a"`` / ``"\\097"``);
- a field separator of a table constructor: ``,`` or ``;``.

**Layout.** Each carrier token is hashed (keyed BLAKE2b, the layout key) with the canonical
form of the three tokens before it (spellings normalised: the hash is the same in every
copy). Carriers are grouped into *units* by content: a carrier whose hash has ``r`` low zero
bits (past bit 16) starts a unit, and the unit carries one bit of the 64-bit mark, at the
position its first carrier's hash names; each choice is XORed with a mask bit of its own
hash (so an unmarked script reads as noise, not as a tag). ``r`` is chosen per revision so a
script has at most ``MAX_UNITS`` units: serving a key's copy is one join over them.

**Payload.** The 64-bit mark of a key is HMAC-SHA256(tag key, project id | key id): the same
mark in every copy served to the key, unforgeable and not guessable without the server
secret. Identification reads the units' votes per bit position (majority), for each ``r``,
and compares them with the marks of the vendor's keys; see ``identify``.
"""

import hashlib
import hmac
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import compress
from operator import itemgetter

import msgspec

TAG_BITS = 64
MAX_UNITS = 256
# ``r`` values a reader tries (a unit every 2^r carriers on average).
MAX_R = 7
MIN_UNITS = 8  # a reader tries an r > 0 only if the text has this many units with it
CONTEXT = 3  # tokens before a carrier that its hash covers
# A leak is attributed only when the chance that an unmarked text (or one marked for
# nobody) matches some key this well is at most this (the union bound of ``identify``).
FALSE_MATCH_MAX = 1e-6
PLAN_VERSION = 1

_LAYOUT_INFO = b"leaf7 watermark layout v1"
_TAG_INFO = b"leaf7 watermark tag v1"


class LexError(ValueError):
    """Text the lexer does not understand: such a source is served unmarked."""


@dataclass(frozen=True, slots=True)
class Keys:
    """The watermark's two keys, derived from the server secret."""

    layout: bytes
    tag: bytes


def keys_from(server_secret: bytes) -> Keys:
    """Domain-separated HMACs of the server secret."""
    return Keys(
        hmac.new(server_secret, _LAYOUT_INFO, hashlib.sha256).digest()[:32],
        hmac.new(server_secret, _TAG_INFO, hashlib.sha256).digest(),
    )


def tag(keys: Keys, project_id: str, key_id: str) -> int:
    """The 64-bit mark of one key of one project."""
    msg = f"{project_id}|{key_id}".encode("utf-8", "surrogatepass")
    return int.from_bytes(hmac.new(keys.tag, msg, hashlib.sha256).digest()[:8], "big")


def tag_bits(value: int) -> tuple[int, ...]:
    """What ``Splicer.splice`` takes: for each of the 64 bit positions, whether its bit is 0
    and whether it is 1 (two selectors), then a 1 (the head of the script)."""
    out: list[int] = []
    for i in range(TAG_BITS):
        bit = (value >> i) & 1
        out += (1 - bit, bit)
    return (*out, 1)


# ---- lexing -------------------------------------------------------------------------------

# Token kinds.
NAME, NUMBER, STRING, LONG, OP, ISTR = range(6)

_WS = re.compile(r"[ \t\r\n\f\v]+")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Lua 5.1's read_numeral (Luau reads the same tokens): digits and dots, an exponent sign,
# then any letters, digits and underscores.
_NUMBER = re.compile(r"(?:[0-9]|\.[0-9])[0-9.]*(?:[eE][+-]?)?[0-9A-Za-z_]*")
_LONG_OPEN = re.compile(r"\[(=*)\[")
_OPS = re.compile(r"\.\.\.|\.\.=?|//=?|==|~=|<=|>=|::|->|[+\-*/%^]=|.", re.S)
_DEC = re.compile(r"[0-9]+")
_HEX = re.compile(r"0[xX][0-9a-fA-F]+")
_ESC_DIGITS = re.compile(r"\\([0-9]{1,3})")
_INT_MAX = 2**31


def _plain(c: str) -> bool:
    """A character that may be written plain or as a ``\\ddd`` escape alike."""
    return " " <= c <= "~" and c not in "\\'\""


# A span of a carrier's text and its two spellings: (start, end, for class 0, for class 1).
Span = tuple[int, int, str, str]
# One binary choice of a carrier: its class as written, and the spans it spells.
Choice = tuple[int, tuple[Span, ...]]


@dataclass(slots=True)
class Token:
    kind: int
    start: int
    end: int
    canon: str  # the spelling-independent form the layout hashes
    choices: tuple[Choice, ...] = ()  # a carrier's choices; () for other tokens


def _long_close(text: str, at: int, level: str, lenient: bool) -> int:
    close = "]" + level + "]"
    end = text.find(close, at)
    if end < 0:
        if lenient:
            return len(text)
        raise LexError("unfinished long string or comment")
    return end + len(close)


def _short_string(text: str, at: int, lenient: bool) -> int:
    """The end of the short string whose quote is at ``at`` (lenient: a string cut by the
    end of its line ends there, as a leak cut mid-string does)."""
    q = text[at]
    i = at + 1
    n = len(text)
    while i < n:
        c = text[i]
        if c == q:
            return i + 1
        if c == "\\":
            i += 2
            continue
        if c in "\r\n":
            break
        i += 1
    if lenient:
        return -i
    raise LexError("unfinished string")


def _interp_part(text: str, at: int, lenient: bool) -> tuple[int, bool]:
    """A piece of a Luau interpolated string from ``at`` (just after a backtick or a closing
    brace): its end, and whether it ends at ``{`` (an expression follows) or the backtick."""
    i = at
    n = len(text)
    while i < n:
        c = text[i]
        if c == "`":
            return i + 1, False
        if c == "{":
            return i + 1, True
        if c == "\\":
            i += 2
            continue
        if c in "\r\n" and not lenient:
            break
        i += 1
    if lenient:
        return i, False
    raise LexError("unfinished interpolated string")


def _elements(body: str) -> list[tuple[str, str]]:
    """A short string's body as (raw, character) elements: a plain character, or an escape
    (its character when it is a decimal escape, else "")."""
    out = []
    i = 0
    n = len(body)
    while i < n:
        c = body[i]
        if c != "\\":
            out.append((c, c))
            i += 1
            continue
        m = _ESC_DIGITS.match(body, i)
        if m is not None:
            code = int(m.group(1))
            out.append((m.group(0), chr(code) if code < 256 else ""))
            i = m.end()
        else:
            out.append((body[i : i + 2], ""))
            i += 2
    return out


def _escape_choice(at: int, raw: str, char: str) -> Choice:
    return (int(raw != char), ((at, at + len(raw), char, f"\\{ord(char):03d}"),))


def _string_token(text: str, start: int, end: int) -> Token:
    """A short string: its quote (when it has no quote character inside) and the spelling
    of its first and last characters (plain or ``\\ddd``, when printable ASCII; the last
    one only if not a digit, which an escape before it could absorb) are its choices."""
    body = text[start + 1 : end - 1]
    elems = _elements(body)
    choices: list[Choice] = []
    if "'" not in body and '"' not in body:
        spans = ((start, start + 1, '"', "'"), (end - 1, end, '"', "'"))
        choices.append((int(text[start] == "'"), spans))
    canon = [raw for raw, _ in elems]
    if elems and _plain(elems[0][1]):
        choices.append(_escape_choice(start + 1, elems[0][0], elems[0][1]))
        canon[0] = elems[0][1]
    if len(elems) > 1 and _plain(elems[-1][1]) and not elems[-1][1].isdigit():
        raw, char = elems[-1]
        choices.append(_escape_choice(end - 1 - len(raw), raw, char))
        canon[-1] = char
    return Token(STRING, start, end, "S" + "".join(canon), tuple(choices))


def tokenize(text: str, lenient: bool = False) -> list[Token]:
    """The significant tokens of ``text`` (comments and whitespace skipped), with the
    carriers' choices read. Raises LexError on text it cannot lex with certainty, unless
    ``lenient`` (a leak: maybe a piece of a script, cut anywhere), which reads on."""
    out: list[Token] = []
    n = len(text)
    i = 0
    if text.startswith("#"):  # a shebang line (Lua 5.1 skips it)
        i = text.find("\n")
        i = n if i < 0 else i
    # Open brackets: '(' '[' '{' (a '{' frame becomes '<' once a '<' is seen in it: maybe a
    # Luau generic type, so its commas carry nothing); '`' = an interpolation expression.
    stack: list[str] = []
    while i < n:
        c = text[i]
        if c in " \t\r\n\f\v":
            i = _WS.match(text, i).end()  # type: ignore[union-attr]
            continue
        if c == "-" and text.startswith("--", i):
            m = _LONG_OPEN.match(text, i + 2)
            if m is not None:
                i = _long_close(text, m.end(), m.group(1), lenient)
            else:
                j = text.find("\n", i)
                i = n if j < 0 else j
            continue
        if c.isascii() and (c.isalpha() or c == "_"):
            end = _NAME.match(text, i).end()  # type: ignore[union-attr]
            out.append(Token(NAME, i, end, text[i:end]))
            i = end
            continue
        m = _NUMBER.match(text, i) if (c.isdigit() and c.isascii()) or c == "." else None
        if m is not None:
            end = m.end()
            raw = text[i:end]
            value = -1
            if _DEC.fullmatch(raw):
                value = int(raw)
            elif _HEX.fullmatch(raw):
                value = int(raw, 16)
            if 0 <= value < _INT_MAX:
                hexed = raw[1:2] in ("x", "X")
                spans = (
                    (i, end, raw if not hexed else str(value), raw if hexed else f"0x{value:X}"),
                )
                out.append(Token(NUMBER, i, end, f"N{value}", ((int(hexed), spans),)))
            else:
                out.append(Token(NUMBER, i, end, raw))
            i = end
            continue
        if c in "'\"":
            end = _short_string(text, i, lenient)
            if end < 0:  # cut: not a token
                i = -end
                continue
            out.append(_string_token(text, i, end))
            i = end
            continue
        if c == "[":
            m = _LONG_OPEN.match(text, i)
            if m is not None:
                end = _long_close(text, m.end(), m.group(1), lenient)
                out.append(Token(LONG, i, end, text[i:end]))
                i = end
                continue
        # An interpolated string's start, or its text after a `{...}` expression ends.
        if c == "`" or (c == "}" and stack and stack[-1] == "`"):
            if c == "}":
                stack.pop()
            end, more = _interp_part(text, i + 1, lenient)
            out.append(Token(ISTR, i, end, text[i:end]))
            if more:
                stack.append("`")
            i = end
            continue
        m = _OPS.match(text, i)
        assert m is not None
        end = m.end()
        op = text[i:end]
        if op in ("(", "[", "{"):
            stack.append(op)
        elif op in (")", "]", "}"):
            if not stack or stack[-1] == "`":
                if not lenient:
                    raise LexError("unbalanced brackets")
            else:
                stack.pop()
        elif op == "<" and stack and stack[-1] == "{":
            stack[-1] = "<"
        if op in (",", ";") and stack and stack[-1] == "{":
            out.append(Token(OP, i, end, ",", ((int(op == ";"), ((i, end, ",", ";"),)),)))
        else:
            out.append(Token(OP, i, end, op))
        i = end
    if stack and not lenient:
        raise LexError("unbalanced brackets")
    return out


def _hashes(tokens: list[Token], key: bytes) -> list[tuple[int, Token]]:
    """Each carrier with its keyed hash over its context's canonical forms."""
    out = []
    canons = [t.canon for t in tokens]
    for idx, tok in enumerate(tokens):
        if not tok.choices:
            continue
        ctx = "\x1f".join(canons[max(0, idx - CONTEXT) : idx + 1])
        h = hashlib.blake2b(ctx.encode("utf-8", "surrogatepass"), key=key, digest_size=8)
        out.append((int.from_bytes(h.digest(), "big"), tok))
    return out


def _starts_unit(h: int, r: int) -> bool:
    return (h >> 16) & ((1 << r) - 1) == 0


def _mask(h: int, k: int) -> int:
    return (h >> (32 + k)) & 1


# ---- the plan of a revision (upload) and serving ------------------------------------------


class Unit(msgspec.Struct, array_like=True, frozen=True):
    """One unit: the bit position it carries and its carriers (start, end, spelling for bit
    0, spelling for bit 1)."""

    pos: int
    carriers: tuple[tuple[int, int, str, str], ...]


class Plan(msgspec.Struct, frozen=True):
    """A revision's marks, stored with it (JSON): ``r`` and the units, in source order."""

    v: int
    r: int
    units: tuple[Unit, ...]


_plan_encoder = msgspec.json.Encoder()
_plan_decoder = msgspec.json.Decoder(Plan)


def _positions(h: int, k: int, r: int, unit: int) -> int:
    """The bit position choice ``k`` of a carrier votes for: with ``r = 0`` (a unit per
    carrier) each choice has its own, else the unit's."""
    return (h >> (6 * k)) % TAG_BITS if r == 0 else unit


def _units(carriers: list[tuple[int, Token]], r: int) -> list[Unit]:
    """The runs of spans (in source order) that carry the same bit position."""
    spans: list[tuple[int, int, int, str, str]] = []  # (start, pos, end, for bit 0, for bit 1)
    unit = -1
    for h, tok in carriers:
        if _starts_unit(h, r):
            unit = h % TAG_BITS
        if unit < 0:
            continue  # before the first unit: left as written
        for k, (_, choice) in enumerate(tok.choices):
            pos = _positions(h, k, r, unit)
            m = _mask(h, k)
            for start, end, s0, s1 in choice:
                spans.append((start, pos, end, s1 if m else s0, s0 if m else s1))
    spans.sort()
    units: list[Unit] = []
    run: list[tuple[int, int, str, str]] = []
    pos = -1
    for start, p, end, b0, b1 in spans:
        if p != pos and run:
            units.append(Unit(pos, tuple(run)))
            run = []
        pos = p
        run.append((start, end, b0, b1))
    if run:
        units.append(Unit(pos, tuple(run)))
    return units


def plan(source: str, keys: Keys) -> str:
    """The marks of one revision, as stored (JSON; ``""`` when the source carries none: a
    script the lexer cannot read with certainty, or without carriers)."""
    try:
        tokens = tokenize(source)
    except LexError:
        return ""
    carriers = _hashes(tokens, keys.layout)
    r = 0
    units = _units(carriers, r)
    while r < MAX_R and len(units) > MAX_UNITS:
        r += 1
        units = _units(carriers, r)
    if not units:
        return ""
    result = Plan(PLAN_VERSION, r, tuple(units))
    # Every spelling must lex to the same tokens as the source: else serve it unmarked.
    want = [t.canon for t in tokens]
    for bit in (0, 1):
        try:
            got = tokenize(Splicer(source, result).text(bit))
        except LexError:
            return ""
        if [t.canon for t in got] != want:
            return ""
    return _plan_encoder.encode(result).decode()


def load_plan(stored: str) -> Plan | None:
    if not stored:
        return None
    found = _plan_decoder.decode(stored)
    return found if found.v == PLAN_VERSION else None


Escape = Callable[[str], bytes]


class Splicer:
    """A revision's source cut into a head and one piece per unit, each piece precomputed in
    both spellings (``escape`` applied: the JSON-escaped text of a verdict); a key's copy is
    one join of the pieces its mark picks (C loops only: an ``itemgetter`` gathers each
    piece's selector from the key's ``tag_bits``, ``compress`` keeps the chosen pieces)."""

    __slots__ = ("_flat", "_select", "units")

    def __init__(self, source: str, marks: Plan, escape: Escape | None = None) -> None:
        esc = escape or _utf8
        units = marks.units
        self.units = len(units)
        starts = [u.carriers[0][0] for u in units] + [len(source)]
        flat = [esc(source[: starts[0]])]
        indices = [2 * TAG_BITS]  # the head: always
        for k, unit in enumerate(units):
            both = []
            for bit in (0, 1):
                parts = []
                at = starts[k]
                for start, end, s0, s1 in unit.carriers:
                    parts.append(source[at:start])
                    parts.append(s1 if bit else s0)
                    at = end
                parts.append(source[at : starts[k + 1]])
                both.append(esc("".join(parts)))
            flat += both
            indices += (2 * unit.pos, 2 * unit.pos + 1)
        self._flat = flat
        self._select = itemgetter(*indices)

    def splice(self, selectors: tuple[int, ...]) -> bytes:
        """The copy of the key whose ``tag_bits`` are ``selectors``."""
        return b"".join(compress(self._flat, self._select(selectors)))

    def text(self, bit: int) -> str:
        """Every unit with the same bit (a check of the plan)."""
        mark = tag_bits(0 if bit == 0 else 2**TAG_BITS - 1)
        return self.splice(mark).decode("utf-8", "surrogatepass")


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


# ---- reading a leak ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reading:
    """What a text's carriers say, for each ``r``: per bit position, the votes for 1 and 0."""

    votes: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]
    carriers: int


def read(text: str, keys: Keys) -> Reading:
    """Reads the votes of every carrier of ``text`` (a leak), for every ``r``."""
    carriers = _hashes(tokenize(text, lenient=True), keys.layout)
    votes = []
    for r in range(MAX_R + 1):
        if r and sum(_starts_unit(h, r) for h, _ in carriers) < MIN_UNITS:
            break  # too few units at this r (and beyond) to say anything: not tried
        ones = [0] * TAG_BITS
        zeros = [0] * TAG_BITS
        unit = -1
        for h, tok in carriers:
            if _starts_unit(h, r):
                unit = h % TAG_BITS
            if unit < 0:
                continue
            for k, (cls, _) in enumerate(tok.choices):
                pos = _positions(h, k, r, unit)
                if cls ^ _mask(h, k):
                    ones[pos] += 1
                else:
                    zeros[pos] += 1
        votes.append((tuple(ones), tuple(zeros)))
    return Reading(tuple(votes), len(carriers))


@dataclass(frozen=True, slots=True)
class Match:
    """The key a leak names: ``agree`` of the ``observed`` bit positions match its mark;
    ``false_match`` bounds the chance that a text not served to it matches any key this well."""

    ident: object
    agree: int
    observed: int
    false_match: float

    @property
    def confidence(self) -> float:
        return self.agree / self.observed if self.observed else 0.0


# _TAILS[n][k] = P(Binomial(n, 1/2) >= k), for n, k <= TAG_BITS.
_TAILS = tuple(
    tuple(sum(math.comb(n, i) for i in range(k, n + 1)) / 2.0**n for k in range(n + 1))
    for n in range(TAG_BITS + 1)
)


def identify(reading: Reading, candidates: Iterable[tuple[int, object]]) -> Match | None:
    """The candidate (mark, ident) whose mark the reading matches best, if it matches well
    enough: for each ``r``, each bit position the units voted on (a tie counts as unread)
    is decided by majority; a key's score is the number of decided positions equal to its
    mark. A text that was not served to a key matches its mark (an HMAC output) at each
    position with probability 1/2 independently, so the chance of a score of ``agree`` or
    more out of ``observed`` is the binomial tail; multiplied by the number of keys and of
    ``r`` tried (a union bound) it is ``false_match``, and only a match with
    ``false_match <= FALSE_MATCH_MAX`` is returned."""
    decoded = []
    for ones, zeros in reading.votes:
        value = known = 0
        for i in range(TAG_BITS):
            if ones[i] != zeros[i]:
                known |= 1 << i
                if ones[i] > zeros[i]:
                    value |= 1 << i
        if known:
            decoded.append((value, known, known.bit_count()))
    if not decoded:
        return None
    best: tuple[int, int, object] | None = None  # (agree, observed, ident)
    best_p = 2.0
    count = 0
    for mark, ident in candidates:
        count += 1
        for value, known, observed in decoded:
            agree = observed - ((value ^ mark) & known).bit_count()
            p = _TAILS[observed][agree]
            if p < best_p:
                best, best_p = (agree, observed, ident), p
    if best is None:
        return None
    false_match = min(1.0, best_p * count * len(decoded))
    if false_match > FALSE_MATCH_MAX:
        return None
    return Match(best[2], best[0], best[1], false_match)
