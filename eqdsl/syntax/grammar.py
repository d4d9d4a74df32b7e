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
    return Lark(grammar_text(), parser="lalr", lexer="contextual", propagate_positions=True,
                maybe_placeholders=True, postlex=BracketNewlines())
