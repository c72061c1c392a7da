"""The one reader of the JSON sipctl is handed: saved plans and plan directories, fleet
documents, the records sipctl keeps in DNS, zone files and on hosts, ``nft -j`` output and
PowerDNS's answers.

``json.loads`` parses by recursion: a few thousand brackets (``[[[[...``) end in a
RecursionError, and a value a few hundred levels deep parses, then ends in one in the first
walk over it. ``read_json`` counts the nesting before it parses (strings skipped) and
refuses more than ``MAX_JSON_DEPTH`` levels with a ``JsonTooDeep``: a
``json.JSONDecodeError`` (so a ``ValueError``), which says where, and which every reader
that turns unreadable JSON into its own words (or into "no record") already handles.
"""

from __future__ import annotations

import json
import re
from typing import Any

# No JSON sipctl writes or reads comes near it: a spec is 20 levels at most, and a plan or a
# record adds a handful around the spec's values; nft's and PowerDNS's answers are a dozen.
MAX_JSON_DEPTH = 64

# A string (skipped whole: a bracket inside one is text), and a bracket.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")
_TOKEN = re.compile(f"{_STRING.pattern}|[\\[\\]{{}}]", re.DOTALL)


class JsonTooDeep(json.JSONDecodeError):
    """The text nests sections or lists deeper than ``MAX_JSON_DEPTH``."""


def read_json(raw: str | bytes | bytearray) -> Any:
    """``raw`` parsed as JSON (bytes in the encoding ``json.loads`` detects); a
    ``json.JSONDecodeError`` when it is no JSON, a ``JsonTooDeep`` when it nests deeper than
    ``MAX_JSON_DEPTH`` (a ``UnicodeDecodeError`` when its bytes are no text). A number of
    thousands of digits, which ``json.loads`` refuses with a bare ValueError, is a
    ``json.JSONDecodeError`` too."""
    text = raw if isinstance(raw, str) else bytes(raw).decode(json.detect_encoding(raw))
    if _nested_too_deep(text):
        raise JsonTooDeep(
            f"nested more than {MAX_JSON_DEPTH} levels deep", text, _too_deep_at(text)
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except ValueError:  # an integer of more digits than Python converts (4300)
        raise json.JSONDecodeError(
            "a number of more digits than any value sipctl reads", text, 0
        ) from None


def _nested_too_deep(text: str) -> bool:
    """Whether ``text`` opens more than ``MAX_JSON_DEPTH`` sections or lists inside each
    other. The strings and every other character are dropped by ``re`` (in C) before the
    brackets left are counted: a 5 MB plan is counted in a quarter of its parse's time."""
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return False
    depth = 0
    for bracket in _NOT_A_BRACKET.sub("", _STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return True
        else:
            depth -= 1
    return False


def _too_deep_at(text: str) -> int:
    """Where in ``text`` the first bracket deeper than ``MAX_JSON_DEPTH`` opens."""
    depth = 0
    for token in _TOKEN.finditer(text):
        bracket = token.group()
        if bracket in ("[", "{"):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return token.start()
        elif bracket in ("]", "}"):
            depth -= 1
    return 0
