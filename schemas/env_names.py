"""How a message names an environment variable that a spec names for a secret
(``dns.tsig.secret_env``, an ``env/NAME`` argument of ``dns.octodns``): the one rule.

A spec names the variable, never the secret; but a secret pasted where the name belongs
(``secret_env: Qk7ZpXw2LmN9vR4tYb8H``) is a valid variable name, nobody has set such a
variable, and "set the environment variable Qk7ZpXw2LmN9vR4tYb8H" printed the secret in the
CI log, the ``--json`` document and the fleet's workflow history. So a message shows the
name only when it looks like a name a person writes: words of letters, each with at most 4
digits after them (or 1 to 4 digits alone, not first), joined by ``_``, all UPPER_SNAKE_CASE
(``SIPCTL_TSIG_SECRET``, ``API_KEY_2``) or all lower_snake_case (``aws_secret_access_key``),
words of at most 16 letters, the name at most 64 characters. Any other name (mixed case or
camelCase, digits among the letters, a long run of letters) is never shown: the message
names the spec's file, line and key instead, and says to put the secret in the environment
and the variable's NAME in the spec. A real name that the rule hides (``tsigSecret``,
``K8S_TOKEN``) costs only that: its message names the key that holds it.
"""

from __future__ import annotations

import re

_UPPER_WORD = "[A-Z]{1,16}[0-9]{0,4}"
_LOWER_WORD = "[a-z]{1,16}[0-9]{0,4}"
_NAME_RE = re.compile(
    rf"{_UPPER_WORD}(?:_(?:{_UPPER_WORD}|[0-9]{{1,4}}))*"
    rf"|{_LOWER_WORD}(?:_(?:{_LOWER_WORD}|[0-9]{{1,4}}))*"
)
MAX_SHOWN_NAME = 64
# What the advice names as an example of a variable
EXAMPLE_NAME = "SIPCTL_TSIG_SECRET"


def looks_like_a_name(name: str) -> bool:
    """True when ``name`` looks like a variable's name a person wrote (see above)."""
    return len(name) <= MAX_SHOWN_NAME and _NAME_RE.fullmatch(name) is not None


def variable_named(name: str, key: str) -> str:
    """The variable ``name`` as a message names it: ``name``, or, when it may be a secret,
    "the variable that KEY names" (``key``: the spec's key that names it, as a message
    writes it, e.g. ``dns.tsig.secret_env``)."""
    return name if looks_like_a_name(name) else f"the variable that {key} names"


def hidden_name_advice(name: str, key: str, prefix: str = "") -> str:
    """What to do, said after a message that could not show ``name`` ("" when it shows);
    ``prefix``: what the spec writes before a variable's name there (``env/``)."""
    if looks_like_a_name(name):
        return ""
    example = _example(key)
    return (
        "; its name is not shown: it does not look like a variable's name (UPPER_SNAKE_CASE "
        "or lower_snake_case) and may be the secret itself. Put the secret in the "
        f"environment and the variable's NAME in the spec ({key}: {prefix}{example}, "
        f"with {example} set to the secret); if it was the secret, take it out of the "
        "repository's history and make a new one"
    )


def _example(key: str) -> str:
    """A variable's name to show as an example for ``key``: ``SIPCTL_TSIG_SECRET``, or
    ``SIPCTL_`` and the key's last part (``dns.octodns.api_key``: ``SIPCTL_API_KEY``)."""
    if key.endswith("secret_env"):
        return EXAMPLE_NAME
    last = re.sub("[^A-Z0-9]+", "_", key.rsplit(".", 1)[-1].upper()).strip("_")
    return f"SIPCTL_{last}" if last else EXAMPLE_NAME


def unset_variable(name: str, where: str, key: str, holds: str, prefix: str = "") -> str:
    """The error for the variable ``name`` that ``key`` names at ``where`` (file:line:col)
    and that is not set; ``holds``: what it should hold (``the base64 secret of key 'x'``);
    ``prefix``: as in ``hidden_name_advice``."""
    variable = name if looks_like_a_name(name) else "it names"
    return (
        f"{where}: {key}: the environment variable {variable} is not set (it holds {holds})"
        f"{hidden_name_advice(name, key, prefix)}"
    )
