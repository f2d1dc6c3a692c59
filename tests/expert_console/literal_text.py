"""Find user-facing text written into the console's JavaScript instead of asked from the catalogs.

A small tokenizer (strings, template literals, comments, regex literals, identifiers, punctuation) and a few
patterns over its tokens: the values of `text`, `title`, `placeholder`, `aria-label`, `alt` and `label` in object
literals, the children of `el(...)`, what is assigned to `textContent`/`title`/`placeholder`, the text given to
`setText`, `setAttribute("title"|…)`, `alert`/`confirm`/`prompt` and the done-message of `decide`. A literal is
user-facing when it holds a letter (Latin or Han) and is not on the short allow-list; literals inside any call's
parentheses (`t("nav.home")`, `formatDate(x)`) are that call's arguments, not text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

# Symbols and units that are not words in any language (the lead decides additions).
ALLOWED = frozenset({"mm", "cm", "cm/s", "ms", "s", "dB", "kbit/s", "fps", "px", "Hz", "ICA/CCA", "PSV", "EDV"})
# Reads as words: a capitalised word, two words in a row, or any Han character.
PROSE = re.compile(r"^[A-Z][a-z]|[A-Za-z]{2,}[,:;!?…]? +[A-Za-z]|[\u3400-\u9fff]")
# Calls whose string arguments are never shown to a user: catalog keys, selectors, the console, exceptions a page
# catches and shows through errorText.
NOT_SHOWN = frozenset(
    {"t", "has", "log", "warn", "error", "info", "debug", "Error", "TypeError", "RangeError", "querySelector"}
    | {"querySelectorAll", "closest", "matches", "getElementById", "fetch", "addEventListener", "removeEventListener"}
    | {"removeAttribute", "getAttribute", "hasAttribute", "createElement", "toggle", "add", "remove", "contains"}
)
LETTER = re.compile(r"[A-Za-z\u3400-\u9fff]")
KEYWORDS = frozenset({"if", "for", "while", "switch", "return", "typeof", "await", "catch", "in", "of", "new", "case"})
TEXT_KEYS = frozenset({"text", "title", "placeholder", "aria-label", "alt", "label"})
ASSIGNED = frozenset({"textContent", "innerText", "title", "placeholder", "alt", "ariaLabel"})
ATTRIBUTES = frozenset({"title", "placeholder", "aria-label", "alt"})
DIALOGS = frozenset({"alert", "confirm", "prompt"})


@dataclass(frozen=True)
class Token:
    kind: str  # "str" (a quoted string or a template's fixed text), "id", "punct"
    value: str
    line: int


def tokens(source: str) -> list[Token]:
    out: list[Token] = []
    i, line, n = 0, 1, len(source)
    while i < n:
        c = source[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif source.startswith("//", i):
            i = source.find("\n", i)
            i = n if i < 0 else i
        elif source.startswith("/*", i):
            end = source.find("*/", i + 2)
            end = n if end < 0 else end + 2
            line += source.count("\n", i, end)
            i = end
        elif c in "\"'":
            j = i + 1
            while j < n and source[j] != c:
                j += 2 if source[j] == "\\" else 1
            out.append(Token("str", source[i + 1 : j], line))
            i = j + 1
        elif c == "`":
            j, depth, fixed = i + 1, 0, []
            while j < n and not (source[j] == "`" and depth == 0):
                if source[j] == "\\":
                    j += 2
                    continue
                if source.startswith("${", j) and depth == 0:
                    depth, j = 1, j + 2
                    continue
                if depth:
                    depth += {"{": 1, "}": -1}.get(source[j], 0)
                else:
                    fixed.append(source[j])
                j += 1
            out.append(Token("str", "".join(fixed), line))
            line += source.count("\n", i, j)
            i = j + 1
        elif c == "/" and _regex_may_start(out):
            j, in_class = i + 1, False
            while j < n and (source[j] != "/" or in_class) and source[j] != "\n":
                if source[j] == "\\":
                    j += 1
                elif source[j] == "[":
                    in_class = True
                elif source[j] == "]":
                    in_class = False
                j += 1
            i = j + 1
            while i < n and source[i].isalpha():
                i += 1
            out.append(Token("id", "/regex/", line))
        elif c.isalnum() or c in "_$":
            j = i
            while j < n and (source[j].isalnum() or source[j] in "_$"):
                j += 1
            out.append(Token("id", source[i:j], line))
            i = j
        else:
            out.append(Token("punct", c, line))
            i += 1
    return out


def _regex_may_start(previous: list[Token]) -> bool:
    if not previous:
        return True
    last = previous[-1]
    if last.kind == "punct":
        return last.value not in ")]}"
    return last.kind == "id" and last.value in KEYWORDS | {"return"}


# Not words: a URL or path, a CSS function (`translate(…)`).
NOT_WORDS = re.compile(r"^(/|https?:|\w+\()")
# A line that says its literals are data (a vocabulary the server or the edge defines), not text.
DATA_MARK = "i18n: data"


def is_text(value: str) -> bool:
    return bool(LETTER.search(value)) and value.strip() not in ALLOWED and not NOT_WORDS.match(value.strip())


def _closing(toks: list[Token], start: int) -> int:
    """The index of the bracket closing the one at `start`."""
    depth = 0
    for k in range(start, len(toks)):
        if toks[k].kind == "punct" and toks[k].value in "([{":
            depth += 1
        elif toks[k].kind == "punct" and toks[k].value in ")]}":
            depth -= 1
            if depth == 0:
                return k
    return len(toks) - 1


def _is_call(toks: list[Token], k: int) -> bool:
    before = toks[k - 1] if k else None
    return (
        toks[k].value == "("
        and before is not None
        and ((before.kind == "id" and before.value not in KEYWORDS) or before.value in ")]")
    )


def loose_literals(toks: list[Token], start: int, end: int) -> Iterator[int]:
    """The indexes of the string tokens in [start, end) outside any call's parentheses and any function body, save
    the operands of a comparison (`role === "expert"`), class names and fonts (`className = "…"`, `ctx.font = …`)."""
    k = start
    while k < end:
        tok = toks[k]
        if tok.kind == "punct" and tok.value == "(" and _is_call(toks, k):
            k = _closing(toks, k) + 1
            continue
        if tok.kind == "punct" and tok.value == "{" and k and toks[k - 1].value in (">",):  # an arrow's body
            k = _closing(toks, k) + 1
            continue
        if tok.kind == "str" and not _compared(toks, k) and not _class_name(toks, k):
            yield k
        k += 1


def _object_key(toks: list[Token], k: int) -> str:
    """The key of the object property whose value holds token k ("" when it is in none)."""
    depth = 0
    for j in range(k - 1, 0, -1):
        v = toks[j].value if toks[j].kind == "punct" else ""
        if v and v in ")]}":
            depth += 1
        elif v and v in "([":
            if depth == 0:
                return ""
            depth -= 1
        elif v == "{" or (v in (",", ";") and depth == 0):
            if depth == 0:
                after = toks[j + 1 : j + 3]
                return after[0].value if len(after) == 2 and after[1].value == ":" else ""
            depth -= 1
    return ""


def _enclosing_call(toks: list[Token], k: int) -> str:
    """The name of the call whose parentheses hold token k ("" outside any call)."""
    depth = 0
    for j in range(k - 1, -1, -1):
        v = toks[j].value if toks[j].kind == "punct" else ""
        if v and v in ")]}":
            depth += 1
        elif v and v in "([{":
            if depth == 0 and v == "(" and _is_call(toks, j):
                return toks[j - 1].value
            depth = max(0, depth - 1)
    return ""


def _compared(toks: list[Token], k: int) -> bool:
    before = "".join(t.value for t in toks[max(0, k - 3) : k] if t.kind == "punct")
    after = "".join(t.value for t in toks[k + 1 : k + 4] if t.kind == "punct")
    return before.endswith(("==", "!=")) or after.startswith(("==", "!="))


def _class_name(toks: list[Token], k: int) -> bool:
    return k > 1 and toks[k - 1].value == "=" and toks[k - 2].value in ("className", "font")


def _arguments(toks: list[Token], open_paren: int) -> list[tuple[int, int]]:
    """The [start, end) token ranges of a call's arguments."""
    close = _closing(toks, open_paren)
    ranges, depth, start = [], 0, open_paren + 1
    for k in range(open_paren + 1, close):
        v = toks[k].value if toks[k].kind == "punct" else ""
        if v and v in "([{":
            depth += 1
        elif v and v in ")]}":
            depth -= 1
        elif v == "," and depth == 0:
            ranges.append((start, k))
            start = k + 1
    if start < close:
        ranges.append((start, close))
    return ranges


def _value_end(toks: list[Token], start: int) -> int:
    depth = 0
    for k in range(start, len(toks)):
        v = toks[k].value if toks[k].kind == "punct" else ""
        if v and v in "([{":
            depth += 1
        elif v and v in ")]}":
            if depth == 0:
                return k
            depth -= 1
        elif depth == 0 and v and v in ",;":
            return k
    return len(toks)


def findings(source: str) -> list[tuple[int, str]]:
    """(line, literal) for each user-facing literal the patterns find."""
    toks = tokens(source)
    found: dict[tuple[int, str], None] = {}
    data_lines = {n for n, line in enumerate(source.splitlines(), 1) if DATA_MARK in line}

    def flag(start: int, end: int) -> None:
        for tok in (toks[i] for i in loose_literals(toks, start, end)):
            if is_text(tok.value):
                found[(tok.line, tok.value)] = None

    for k, tok in enumerate(toks):
        nxt = toks[k + 1] if k + 1 < len(toks) else None
        if nxt is None:
            break
        key = tok.value if tok.kind in ("id", "str") else None
        # an object's text-bearing key: {text: "Save"}, {"aria-label": "Close"}
        if key in TEXT_KEYS and nxt.value == ":" and nxt.kind == "punct" and k and toks[k - 1].value in "{,":
            flag(k + 2, _value_end(toks, k + 2))
        # node.textContent = "…", node.title = "…"
        elif key in ASSIGNED and tok.kind == "id" and nxt.value == "=" and toks[k + 2].value != "=" and k:
            if toks[k - 1].value == ".":
                flag(k + 2, _value_end(toks, k + 2))
        elif tok.kind == "id" and nxt.value == "(" and (k == 0 or toks[k - 1].value != "."):
            args = _arguments(toks, k + 1)
            if tok.value == "el":
                for start, end in args[2:]:
                    flag(start, end)
            elif tok.value in DIALOGS or tok.value == "setText":
                for start, end in args[-1:]:
                    flag(start, end)
            elif tok.value == "decide":
                for start, end in args[2:3]:
                    flag(start, end)
        elif tok.kind == "id" and tok.value == "setAttribute" and nxt.value == "(":
            args = _arguments(toks, k + 1)
            if len(args) == 2 and toks[args[0][0]].kind == "str" and toks[args[0][0]].value in ATTRIBUTES:
                flag(*args[1])
        elif tok.kind == "id" and tok.value in DIALOGS and nxt.value == "(" and toks[k - 1].value == ".":
            for start, end in _arguments(toks, k + 1)[-1:]:
                flag(start, end)
    # anything else that reads as prose (a table of labels, a TEXT constant, an argument of a helper that shows it)
    loose = set(loose_literals(toks, 0, len(toks)))
    for k, tok in enumerate(toks):
        if tok.kind != "str" or not PROSE.search(tok.value) or not is_text(tok.value):
            continue
        before = toks[k - 1].value if k else ""
        if before in ("from", "import") or _object_key(toks, k) in ("class", "type"):
            continue
        if _compared(toks, k) or _class_name(toks, k):
            continue
        if k in loose or _enclosing_call(toks, k) not in NOT_SHOWN:
            found[(tok.line, tok.value)] = None
    return sorted(item for item in found if item[0] not in data_lines)


T_CALL = re.compile(r"""(?<![\w.$])t\(\s*(["'])([^"'`]+)\1""")


def catalog_keys_used(source: str) -> list[tuple[int, str]]:
    """(line, key) of each `t("<ns>.<key>")` with a literal key."""
    return [(source.count("\n", 0, m.start()) + 1, m.group(2)) for m in T_CALL.finditer(source)]
