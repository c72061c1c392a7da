"""The one rule every string of a spec obeys: it is one line of visible text.

sipctl writes spec values into files that other programs parse line by line: fail2ban's and
Asterisk's INI readers, zone files, iptables-restore and nft scripts, shell command lines on a
host. Each of them has its own idea of where a line ends (Python's ``str.splitlines`` - used by
fail2ban's reader - breaks at ``\\r``, ``\\v``, ``\\f``, ``\\x1c``-``\\x1e``, U+0085, U+2028 and
U+2029 as well as ``\\n``), and several stop at NUL. So no spec string - key or value, in any
section, including sections added later - may carry:

- a C0 or C1 control character, DEL included (``\\x00``-``\\x1f``, ``\\x7f``-``\\x9f``): every
  line break above is one of them, and so are tab, escape and NUL;
- U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR;
- a lone surrogate (no file can hold it as UTF-8);
- a bidirectional-text control (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069): they
  make a value read differently in a pull request than in the file (the "Trojan Source"
  trick), and no host name, path or command needs them;
- U+FEFF, an invisible character that some readers take for the start of a file.

The rule is enforced by the loader on every scalar of the YAML, keys included, before any
model is built (so the error names ``file:line:col``), and again by the base model of
``schemas/spec.py`` on every string field, for specs built in Python.
"""

from __future__ import annotations

import re
import unicodedata

FORBIDDEN_PATTERN = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff"
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]"
)


def forbidden_characters(text: str) -> list[str]:
    """The forbidden characters of ``text``, each once, in order of appearance."""
    found: list[str] = []
    for match in FORBIDDEN_PATTERN.finditer(text):
        if match.group() not in found:
            found.append(match.group())
    return found


def describe_character(char: str) -> str:
    """``U+000D (CARRIAGE RETURN)``: a name a reader can look up, never the raw character."""
    name = unicodedata.name(char, "")
    if not name:
        name = _CONTROL_NAMES.get(char, "a control character")
    return f"U+{ord(char):04X} ({name})"


def text_problem(text: str) -> str | None:
    """Why ``text`` may not be a spec string, or None when it may."""
    bad = forbidden_characters(text)
    if not bad:
        return None
    shown = ", ".join(describe_character(c) for c in bad)
    return (
        f"contains {shown}: spec values must be one line of visible text (no line breaks, "
        "control or bidirectional characters), because sipctl writes them into config files "
        "that would read them as a new line"
    )


def check_text(value: str) -> str:
    """Raise ValueError when ``value`` breaks the rule; else return it unchanged."""
    if FORBIDDEN_PATTERN.search(value) is None:
        return value
    problem = text_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


# unicodedata has no names for control characters; these are the ones people know.
_CONTROL_NAMES = {
    "\x00": "NUL",
    "\t": "TAB",
    "\n": "LINE FEED",
    "\x0b": "VERTICAL TAB",
    "\x0c": "FORM FEED",
    "\r": "CARRIAGE RETURN",
    "\x1b": "ESCAPE",
    "\x1c": "FILE SEPARATOR",
    "\x1d": "GROUP SEPARATOR",
    "\x1e": "RECORD SEPARATOR",
    "\x7f": "DELETE",
    "\x85": "NEXT LINE",
}
