"""Per-key watermarks (store/watermark.py): a marked copy behaves exactly as the original in
Lua 5.1 and Luau, and names its key after the transformations a leaker applies."""

import random
import re
from pathlib import Path

import pytest

from store import watermark as wm
from tests.support.lua import CORPUS, run_file

KEYS = wm.keys_from(b"test server secret")
PROJECT = "6f1c2a52-8d0e-4b7e-9a51-0c2d3e4f5a6b"
OTHER = "0b7e9a51-6f1c-4b7e-8d0e-2a520c2d3e4f"
KEY_IDS = ["KEY-AAAA1111", "KEY-BBBB2222", "KEY-CCCC3333", "KEY-DDDD4444"]
# The vendor's keys: those of PROJECT and a few of another project of theirs.
CANDIDATES = [(wm.tag(KEYS, PROJECT, k), (PROJECT, k)) for k in KEY_IDS] + [
    (wm.tag(KEYS, OTHER, k), (OTHER, k)) for k in [*KEY_IDS[:2], "KEY-EEEE5555"]
]
PRELUDE = (
    'local L7_ScriptName = "Hub"\nlocal L7_ScriptVersion = "1.2.3"\nlocal L7_TotalExecutions = 7\n'
)


def serve(source: str, key_id: str, project_id: str = PROJECT) -> str:
    plan = wm.load_plan(wm.plan(source, KEYS))
    assert plan is not None
    bits = wm.tag_bits(wm.tag(KEYS, project_id, key_id))
    return wm.Splicer(source, plan).splice(bits).decode()


def who(text: str) -> object:
    match = wm.identify(wm.read(text, KEYS), CANDIDATES)
    return None if match is None else match.ident


def run(interpreter: str, text: str, tmp_path: Path) -> str:
    return run_file(interpreter, text, tmp_path)


def combined() -> str:
    """The whole corpus as one script (each file in a block of its own): a script the size
    of a real hub, whose every half holds plenty of literals."""
    return "".join(f"do\n{path.read_text()}\nend\n" for path in CORPUS)


# ---- the transformations a leaker applies -------------------------------------------------


def _gaps(text: str) -> list[tuple[str, str]]:
    """(gap before the token, token) pairs: a gap is the whitespace and comments between two
    tokens."""
    out = []
    at = 0
    for tok in wm.tokenize(text, lenient=True):
        out.append((text[at : tok.start], text[tok.start : tok.end]))
        at = tok.end
    return out


def reindent(text: str) -> str:
    lines = text.splitlines()
    return "\n".join("\t" * (i % 5) + line.lstrip() for i, line in enumerate(lines)) + "\n"


def respace(text: str) -> str:
    """Every gap between tokens replaced by other whitespace (comments kept), CRLF endings."""
    rng = random.Random(7)
    out = []
    for gap, tok in _gaps(text):
        comments = re.findall(r"--\[(=*)\[.*?\]\1\]|--[^\n]*", gap, re.S)
        filler = [rng.choice([" ", "  ", "\t", "\n", "\n\n    "]) for _ in range(len(comments) + 1)]
        if "\n" in gap and not any("\n" in f for f in filler):
            filler[-1] = "\n"  # a line comment needs its line end; so may a statement
        mixed = [filler[0]] + [c + "\n" + f for c, f in zip(comments, filler[1:], strict=True)]
        out.append("".join(mixed) + tok)
    return "".join(out).replace("\r\n", "\n").replace("\n", "\r\n")


def strip_comments(text: str) -> str:
    out = []
    for gap, tok in _gaps(text):
        if "--" in gap:
            gap = "\n" if "\n" in gap else " "
        out.append(gap + tok)
    return "".join(out) + "\n"


def minify(text: str) -> str:
    """All comments and line breaks gone: one line of tokens."""
    return " ".join(tok for _, tok in _gaps(text))


def halves(text: str) -> list[str]:
    """The first, the second and the middle half, by lines (by characters for a text of a
    few lines)."""
    lines = text.splitlines(keepends=True)
    if len(lines) < 20:
        lines = list(text)
    h = len(lines) // 2
    return ["".join(lines[:h]), "".join(lines[h:]), "".join(lines[h // 2 : h // 2 + h])]


# ---- behaviour ------------------------------------------------------------------------------


def test_corpus_is_big_enough() -> None:
    assert len(CORPUS) >= 10


@pytest.mark.lua
@pytest.mark.parametrize("interpreter", ["lua5.1", "luau"])
@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_marked_copies_behave_as_the_original(path: Path, interpreter: str, tmp_path: Path) -> None:
    source = path.read_text()
    expected = run(interpreter, source, tmp_path)
    assert expected.strip()
    copies = {serve(source, k) for k in KEY_IDS[:3]}
    assert len(copies) == 3 and source not in copies  # each key's copy is its own
    for copy in copies:
        assert run(interpreter, copy, tmp_path) == expected


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_marks_touch_only_literals_and_separators(path: Path) -> None:
    """Comments, long strings, names, keywords and line structure are as written; only
    literal spellings and table separators differ."""
    source = path.read_text()
    copy = serve(source, KEY_IDS[0])
    assert copy.count("\n") == source.count("\n")
    before, after = _gaps(source), _gaps(copy)
    assert [g for g, _ in before] == [g for g, _ in after]  # whitespace and comments
    changed = [(a, b) for (_, a), (_, b) in zip(before, after, strict=True) if a != b]
    assert changed
    for a, b in changed:
        assert a[0] in "\"'0123456789,;" and b[0] in "\"'0123456789,;"


# ---- survival -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
@pytest.mark.parametrize("key_id", KEY_IDS[:3])
def test_whole_script_transformations_name_the_key(path: Path, key_id: str) -> None:
    copy = serve(path.read_text(), key_id)
    leaks = {
        "as served": PRELUDE + copy,
        "prelude removed": copy,
        "re-indented": reindent(PRELUDE + copy),
        "whitespace and line endings": respace(copy),
        "comments removed": strip_comments(copy),
        "minified": minify(PRELUDE + copy),
    }
    for how, leak in leaks.items():
        assert who(leak) == (PROJECT, key_id), how


@pytest.mark.parametrize("key_id", KEY_IDS)
def test_any_half_names_the_key(key_id: str) -> None:
    copy = serve(combined(), key_id)
    for transformed in (copy, strip_comments(reindent(copy)), minify(copy)):
        for half in halves(transformed):
            assert who(half) == (PROJECT, key_id)
    # Cut anywhere, even inside a string or a comment.
    rng = random.Random(key_id)
    for _ in range(6):
        start = rng.randrange(len(copy) // 2)
        assert who(copy[start : start + len(copy) // 2]) == (PROJECT, key_id)


def test_the_same_key_id_in_another_project_is_another_mark() -> None:
    copy = serve(combined(), KEY_IDS[0], project_id=OTHER)
    assert who(copy) == (OTHER, KEY_IDS[0])


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_unmarked_texts_name_no_one(path: Path) -> None:
    source = path.read_text()
    assert who(source) is None
    assert who(serve(source, "KEY-SERVED-TO-NO-ONE")) is None
    assert who(serve(source, KEY_IDS[0], project_id="another-vendors-project")) is None


def test_the_whole_unmarked_corpus_names_no_one() -> None:
    text = combined()
    assert who(text) is None
    assert who(serve(text, "KEY-NOBODY")) is None
    assert who("") is None
    assert who("print('hello')") is None


def test_the_match_says_how_sure_it_is() -> None:
    copy = serve(combined(), KEY_IDS[1])
    match = wm.identify(wm.read(copy, KEYS), CANDIDATES)
    assert match is not None
    assert match.agree == match.observed >= 60 and match.confidence == 1.0
    assert match.false_match < 1e-12
    # Re-spelling a fifth of the literals (each one decimal, double-quoted) lowers the
    # agreement, not the answer.
    rng = random.Random(1)
    tokens = _gaps(copy)
    out = []
    for gap, tok in tokens:
        if tok.startswith("0x") and rng.random() < 0.2:
            tok = str(int(tok, 16))
        elif tok.startswith("'") and "'" not in tok[1:-1] and '"' not in tok and rng.random() < 0.2:
            tok = '"' + tok[1:-1] + '"'
        out.append(gap + tok)
    match = wm.identify(wm.read("".join(out), KEYS), CANDIDATES)
    assert match is not None and match.ident == (PROJECT, KEY_IDS[1])
    assert match.confidence > 0.9


def test_an_unreadable_source_is_served_unmarked() -> None:
    assert wm.plan("print('unfinished)", KEYS) == ""
    assert wm.plan("local t = {1, 2", KEYS) == ""
    assert wm.plan("local x = y", KEYS) == ""  # no carrier
    assert wm.load_plan("") is None


def test_a_copy_is_one_join_of_precomputed_pieces() -> None:
    """Serving splices; the copy for one key is the same every time and independent of the
    escape the pieces were stored with."""
    source = combined()
    plan = wm.load_plan(wm.plan(source, KEYS))
    assert plan is not None and 0 < len(plan.units) <= wm.MAX_UNITS
    bits = wm.tag_bits(wm.tag(KEYS, PROJECT, KEY_IDS[0]))
    raw = wm.Splicer(source, plan).splice(bits)
    upper = wm.Splicer(source, plan, lambda s: s.upper().encode()).splice(bits)
    assert upper == raw.decode().upper().encode()
    assert raw == wm.Splicer(source, plan).splice(bits)
