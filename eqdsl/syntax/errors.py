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

# Terminals that can start an expression; when the parser accepts (most of) them,
# "expected an expression" says more than a list of seven token kinds.
_EXPR_START = {"NAME", "INT", "FLOAT", "IRREPS", "STRING", "LPAR", "LSQB", "MINUS", "TRUE", "FALSE"}
_EXPR_CORE = {"NAME", "INT", "IRREPS", "LPAR"}
# After a complete operand: any binary operator or postfix (`->`, `.`, `[...]`) could follow.
_OPERATORS = {"PLUS", "MINUS", "STAR", "SLASH", "__ANON_1"}
_POSTFIX = {"__ANON_0", "DOT", "LSQB"}
# Tokens that cannot end a statement: a line ending with one of them continues on the next line
# only inside (...), and a line starting with one of them was probably meant to continue the previous one.
_CONTINUATION = {"PLUS", "MINUS", "STAR", "SLASH", "__ANON_0", "__ANON_1", "DOT", "COMMA", "AT", "EQUAL", "COLON"}

_PAIRS = {"(": ")", "[": "]", "{": "}"}
_TRIVIA = re.compile(r"(?:[ \t\f\r\n]|#[^\n]*|\\\r?\n)*")
_CONTINUE_HINT = ("a statement ends at the end of its line: to continue it on the next line, "
                  "put the expression in (...) or end the line with `\\`")


def describe_terminal(name: str) -> str:
    if name in _TERMINAL_NAMES:
        return _TERMINAL_NAMES[name]
    if name.isupper() and name.lower() in KEYWORDS:
        return f"`{name.lower()}`"
    return name.lower()


def _describe_expected(expected) -> str:
    expected = {t for t in expected if not t.startswith("__ANON") or t in _TERMINAL_NAMES}
    lead = []
    if _EXPR_CORE <= expected:
        expected -= _EXPR_START
        lead.append("an expression")
    elif len(expected & _OPERATORS) >= 3:
        expected -= _OPERATORS | _POSTFIX
        lead.append("an operator")
    names = sorted({describe_terminal(t) for t in expected},
                   key=lambda s: (s.startswith("end of"), not s.startswith(("a ", "an ")), s))
    names = lead + names
    if not names:
        return "nothing more"
    if len(names) > 8:
        return ", ".join(names[:7]) + ", ..."
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " or " + names[-1]


def _point(file: str, line: int, column: int, width: int = 1) -> Span:
    return Span(file, line, column, line, column + width)


def check_brackets(file: str, text: str) -> list[Diagnostic]:
    """Unbalanced (, [ and { anywhere in the file, outside comments and strings.

    A closer that matches an outer open bracket means an inner one was never
    closed: the error points at that opener.  A closer that matches nothing open
    is reported where it stands.  At the end of the file the innermost bracket
    still open is reported.
    """
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
            elif any(_PAIRS[o] == c for o, _, _ in stack):
                # `c` closes an outer bracket, so the innermost one was never closed.
                opener, ol, oc = stack[-1]
                outer = next((o, l2, c2) for o, l2, c2 in reversed(stack) if _PAIRS[o] == c)
                return [Diagnostic("E0004", f"unclosed `{opener}`", _point(file, ol, oc),
                                   f"this `{opener}` is never closed",
                                   notes=[f"`{c}` at {file}:{line}:{col} closes the `{outer[0]}` at "
                                          f"{outer[1]}:{outer[2]} while this `{opener}` is still open"],
                                   hints=[f"add a matching `{_PAIRS[opener]}`"])]
            else:
                notes, hints = [], []
                if stack:
                    o, ol, oc = stack[-1]
                    notes.append(f"the innermost open bracket is the `{o}` at {file}:{ol}:{oc}")
                    if ol == line:
                        hints.append(f"did you mean `{_PAIRS[o]}`?")
                    else:
                        hints.append(f"remove this `{c}`, or add the `{_opening(c)}` it closes")
                else:
                    hints.append(f"remove this `{c}`, or add the `{_opening(c)}` it closes")
                return [Diagnostic("E0004", f"unmatched closing `{c}`", _point(file, line, col),
                                   "no matching opening bracket", notes=notes, hints=hints)]
        if c == "\n":
            line, col = line + 1, 1
        else:
            col += 1
        i += 1
    if stack:
        opener, ol, oc = stack[-1]
        notes = [f"also unclosed: `{o}` at {file}:{l2}:{c2}" for o, l2, c2 in reversed(stack[:-1])]
        return [Diagnostic("E0004", f"unclosed `{opener}`", _point(file, ol, oc),
                           f"this `{opener}` is never closed", notes=notes,
                           hints=[f"add a matching `{_PAIRS[opener]}`"])]
    return []


def _opening(closer: str) -> str:
    return next(o for o, c in _PAIRS.items() if c == closer)


def _accepted(err: UnexpectedToken) -> set:
    """The terminals the parser could take here (Lark's `expected` also lists always-accepted ones)."""
    try:
        acc = err.accepts
    except Exception:  # the interactive parser is a nicety; never let it hide the real error
        acc = None
    return set(acc) if acc else set(err.expected or ())


def _previous(err: UnexpectedToken, text: str):
    """The token before the offending one (re-lexed: the basic lexer keeps no history)."""
    history = getattr(err, "token_history", None) or []
    if history and history[-1] is not None:
        return history[-1]
    start = err.token.start_pos
    if start is None:
        return None
    from .grammar import lark_parser
    try:
        tokens = list(lark_parser().lex(text[:start]))
    except Exception:  # the prefix parsed, so this is unexpected; the hint is only a nicety
        return None
    return tokens[-1] if tokens else None


def _code_end(line: str) -> int:
    """Length of `line` without its comment and trailing blanks (a `#` inside a string is not a comment)."""
    in_string = False
    for i, c in enumerate(line):
        if c == '"':
            in_string = not in_string
        elif c == "#" and not in_string:
            line = line[:i]
            break
    return len(line.rstrip(" \t\f\r\\"))


def _end_of_file(file: str, text: str, upto: int | None = None) -> Span:
    """Just after the last character of code before `upto` (comments and blank lines skipped)."""
    lines = text[:upto].split("\n")
    for i in range(len(lines) - 1, -1, -1):
        end = _code_end(lines[i])
        if end:
            return _point(file, i + 1, end + 1)
    return _point(file, 1, 1)


def from_lark(file: str, text: str, err) -> Diagnostic:
    if isinstance(err, UnexpectedCharacters):
        ch = text[err.pos_in_stream] if 0 <= err.pos_in_stream < len(text) else "?"
        shown = ch if ch.isprintable() else repr(ch).strip("'")
        hints = []
        if ch == "'":
            hints.append('strings use double quotes: "file.eq"')
        elif ch == '"':
            hints.append('a string ends on the line it starts: "file.eq"')
        elif not ch.isprintable() or ord(ch) > 127:
            hints.append("specs are plain ASCII text outside comments")
        return Diagnostic("E0002", f"unexpected character `{shown}`", _point(file, err.line, err.column),
                          "not part of the language", hints=hints)
    if isinstance(err, UnexpectedEOF):
        return Diagnostic("E0003", "unexpected end of file", _end_of_file(file, text),
                          "the file ends in the middle of a statement")
    if isinstance(err, UnexpectedToken):
        tok = err.token
        expected = _accepted(err)
        prev = _previous(err, text)
        at_eof = tok.type == "$END" or (
            tok.type == "_NL" and tok.start_pos is not None and _TRIVIA.fullmatch(text, min(tok.start_pos, len(text))))
        if at_eof:
            hints = [h for h in _hints_for(tok, prev, expected, text) if h != _CONTINUE_HINT]
            end = _end_of_file(file, text, tok.start_pos if tok.type == "_NL" else None)
            return Diagnostic("E0003", "unexpected end of file", end,
                              f"the file ends here; expected {_describe_expected(expected)}", hints=hints)
        shown = "end of line" if tok.type == "_NL" else f"`{tok}`"
        span = Span.of_token(file, tok) if tok.type != "_NL" else _point(file, tok.line, tok.column)
        return Diagnostic("E0001", f"unexpected {shown}", span,
                          f"expected {_describe_expected(expected)}", hints=_hints_for(tok, prev, expected, text))
    raise TypeError(f"not a Lark parse error: {err!r}")


def _is_keyword(tok) -> bool:
    return tok is not None and tok.type.isupper() and tok.type.lower() in KEYWORDS and str(tok) == tok.type.lower()


def _hints_for(tok, prev, expected, text) -> list[str]:
    hints = []
    if "NAME" in expected and _is_keyword(tok):
        hints.append(f"`{tok}` is a keyword; choose another name")
    elif "NAME" in expected and _is_keyword(prev) and tok.type in ("EQUAL", "COLON", "LPAR", "_NL"):
        hints.append(f"`{prev}` is a keyword and cannot be used as a name here")
    if tok.type == "COLON" and "EQUAL" in expected:
        hints.append("types are declared on inputs and outputs only; write `name = expression`")
    if tok.type == "EQUAL" and "COLON" in expected:
        hints.append("an input needs a type: `input x : 16x0e @node`")
    adjacent = prev is not None and prev.type == "INT" and getattr(prev, "end_pos", None) == tok.start_pos
    if adjacent and tok.type == "NAME" and re.fullmatch(r"[eE]\d+", str(tok)):
        hints.append(f"write the number as {prev}.0{tok} or {prev}E{str(tok)[1:]}; a lowercase `e` after an integer "
                     "starts an irrep")
    elif adjacent and tok.type == "NAME" and str(tok).startswith("x"):
        hints.append("irreps are written MULxIRREP without spaces, e.g. 32x0e or 16x1o (SO3: 16x1)")
    if tok.type == "_NL" and "LBRACE" in expected:
        hints.append("put `{` on the same line as the `model`, `block` or `repeat` it opens")
    elif tok.type == "_NL" and (_EXPR_CORE <= expected or (prev is not None and prev.type in _CONTINUATION)):
        hints.append(_CONTINUE_HINT)
    elif prev is not None and prev.type == "_NL" and tok.type in _CONTINUATION - {"EQUAL", "COLON", "COMMA"}:
        hints.append(_CONTINUE_HINT)
    if tok.type == "RBRACE" and "_NL" in expected:
        hints.append("a statement ends at a newline: put `}` on a line of its own")
    if prev is not None and prev.type == "AT":
        hints.append("placements are written @node, @edge or @graph")
    line = text.split("\n")[tok.line - 1] if tok.line and 0 < tok.line <= text.count("\n") + 1 else ""
    if re.search(r"\b\d+e\+\d+(?![\dxeo])", line):
        hints.append("floats in exponent form need a dot or a capital E (1.0e+3, 1E3); `0e+1o` is read as irreps")
    return hints
