"""Locate and load the Lark grammar (installed as package data `eqdsl.grammar`)."""
from __future__ import annotations

import functools
from importlib import resources

from lark import Lark

from .postlex import BracketNewlines


def grammar_text() -> str:
    return resources.files("eqdsl.grammar").joinpath("eq.lark").read_text(encoding="utf-8")


@functools.lru_cache(maxsize=1)
def lark_parser() -> Lark:
    # The basic lexer keeps keywords reserved everywhere (`input model : 0e` is an error, not a
    # value named model); newlines are left out of spans so braced blocks end at their `}`.
    return Lark(grammar_text(), parser="lalr", lexer="basic", propagate_positions=_not_newline,
                maybe_placeholders=True, postlex=BracketNewlines())


def _not_newline(node) -> bool:
    return getattr(node, "type", None) != "_NL"
