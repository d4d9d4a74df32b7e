"""Turn Lark's exceptions (and what they miss) into located syntax diagnostics."""
from __future__ import annotations

import re

from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

from ..diagnostics import Diagnostic, Span

KEYWORDS = {"import", "group", "const", "rep", "model", "block", "input", "output",
            "repeat", "return", "true", "false"}

_TERMINAL_NAMES = {
    "LPAR": "`(`", "RPAR": "`)`", "LSQB": "`[`", "RSQB": "`]`", "LBRACE": "`{`", "RBRACE": "`}`",
    "COMMA": "`,`", "EQUAL": "`=`", "COLON": "`:`", "PLUS": "`+`", "MINUS": "`-`", "STAR": "`*`",
    "SLASH": "`/`", "DOT": "`.`", "AT": "`@`", "__ANON_0": "`->`", "__ANON_1": "`**`",
    "NAME": "a name", "INT": "an integer", "FLOAT": "a number", "IRREPS": "irreps like 32x1o",
    "STRING": "a string", "_NL": "end of line", "$END": "end of file",
}

_PAIRS = {"(": ")", "[": "]", "{": "}"}


def describe_terminal(name: str) -> str:
    if name in _TERMINAL_NAMES:
        return _TERMINAL_NAMES[name]
    if name.isupper() and name.lower() in KEYWORDS:
        return f"`{name.lower()}`"
    return name.lower()


def _describe_expected(expected) -> str:
    names = sorted({describe_terminal(t) for t in expected if not t.startswith("__ANON") or t in _TERMINAL_NAMES})
    if len(names) > 6:
        names = names[:6] + ["..."]
    return ", ".join(names)


def _point(file: str, line: int, column: int, width: int = 1) -> Span:
    return Span(file, line, column, line, column + width)


def check_brackets(file: str, text: str) -> list[Diagnostic]:
    """Unbalanced (, [ and { anywhere in the file, outside comments and strings."""
    diags = []
    stack: list[tuple[str, int, int]] = []
    line, col = 1, 1
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "#":
            while i < n and text[i] != "\n":
                i += 1
                col += 1
            continue
        if c == '"':
            j = text.find('"', i + 1)
            nl = text.find("\n", i + 1)
            if j != -1 and (nl == -1 or j < nl):
                col += j - i + 1
                i = j + 1
                continue
        if c in _PAIRS:
            stack.append((c, line, col))
        elif c in _PAIRS.values():
            if stack and _PAIRS[stack[-1][0]] == c:
                stack.pop()
            else:
                opener = f"`{stack[-1][0]}` opened at {file}:{stack[-1][1]}:{stack[-1][2]}" if stack else "nothing open"
                diags.append(Diagnostic("E0004", f"unbalanced `{c}`", _point(file, line, col),
                                        "no matching opening bracket",
                                        notes=[f"innermost open bracket: {opener}"]))
                return diags
        if c == "\n":
            line, col = line + 1, 1
        else:
            col += 1
        i += 1
    for opener, l, c in stack[:1]:
        diags.append(Diagnostic("E0004", f"unclosed `{opener}`", _point(file, l, c),
                                f"this `{opener}` is never closed",
                                hints=[f"add a matching `{_PAIRS[opener]}`"]))
    return diags


def from_lark(file: str, text: str, err) -> Diagnostic:
    if isinstance(err, UnexpectedCharacters):
        ch = text[err.pos_in_stream] if 0 <= err.pos_in_stream < len(text) else "?"
        shown = ch if ch.isprintable() else repr(ch)
        hints = []
        if ch in "'":
            hints.append('strings use double quotes: "file.eq"')
        elif not ch.isprintable() or ord(ch) > 127:
            hints.append("specs are plain ASCII text outside comments")
        return Diagnostic("E0002", f"unexpected character `{shown}`", _point(file, err.line, err.column),
                          "not part of the language", hints=hints)
    if isinstance(err, UnexpectedEOF):
        lines = text.split("\n")
        return Diagnostic("E0003", "unexpected end of file", _point(file, len(lines), len(lines[-1]) + 1),
                          "the file ends in the middle of a statement")
    if isinstance(err, UnexpectedToken):
        tok = err.token
        if tok.type == "$END":
            lines = text.rstrip("\n").split("\n")
            return Diagnostic("E0003", "unexpected end of file", _point(file, len(lines), len(lines[-1]) + 1),
                              f"expected {_describe_expected(err.expected)}")
        shown = "end of line" if tok.type == "_NL" else f"`{tok}`"
        span = Span.of_token(file, tok) if tok.type != "_NL" else _point(file, tok.line, tok.column)
        hints = _hints_for(tok, err.expected, text)
        return Diagnostic("E0001", f"unexpected {shown}", span,
                          f"expected {_describe_expected(err.expected)}", hints=hints)
    raise TypeError(f"not a Lark parse error: {err!r}")


def _hints_for(tok, expected, text) -> list[str]:
    hints = []
    if "NAME" in expected and str(tok) in KEYWORDS:
        hints.append(f"`{tok}` is a keyword; choose another name")
    if tok.type == "_NL" and "RBRACE" in expected:
        pass
    if tok.type == "COLON" and "EQUAL" in expected:
        hints.append("types are declared on inputs and outputs only; write `name = expression`")
    if tok.type == "EQUAL" and "COLON" in expected:
        hints.append("an input needs a type: `input x : 16x0e @node`")
    line = text.split("\n")[tok.line - 1] if tok.line else ""
    if re.search(r"\b\d+e[+]\d", line):
        hints.append("floats in exponent form need a dot or a capital E (1.0e+3, 1E3); `0e+1o` is read as irreps")
    return hints
