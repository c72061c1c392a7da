"""Which config keys hold a secret, by their name: the one rule for the read gate's sed, its
copy in ``read_gate.redact`` (plan's fingerprint of an admin's file) and the console's scrub
of every line sipctl prints (``output.without_passwords``: a live ``Set(TRUNK_PASSWORD=...)``
that audit or import quotes).

Pure, no imports of sipctl: ``output`` and the read gate both use it.
"""

from __future__ import annotations

import re
from functools import cache

# Asterisk's own option names in the module configs the gate can send (pjsip.conf, sip.conf,
# extensions.conf, confbridge.conf, rtp.conf, http.conf; their samples in asterisk-config):
# passwords and their digests, PINs, tokens, and the lines whose value is a user:secret@...
# string (chan_sip's "register =>", "mwi =>" and "auth ="). Plan reads none of their values.
SECRET_KEYS = (
    "password", "password_digest", "secret", "md5secret", "md5_cred", "remotesecret",
    "pin", "adminpin", "admin_pin", "userpin", "user_pin", "turnpassword", "register",
    "mwi", "auth", "auth_token", "oauth_secret", "oauth_clientid", "refresh_token",
    "client_secret", "dbpass", "dbsecret", "passphrase",
)  # fmt: skip
# And any key whose NAME says it holds a secret, whatever the admin called it ([globals]
# TRUNK_PASSWORD, SIP_SECRET, API_TOKEN, DB_CREDS, PROVIDER_API_KEY, BOX_PIN, ...): a name
# holding one of SECRET_WORDS, or ending in one of SECRET_LAST_WORDS after a "_", "-" or
# "." (or being it), in any case. Not a bare "...key": http.conf's tlsprivatekey is a path
# plan reads (a test keeps every key plan reads out of this rule).
# A last word may carry a version after it (API_KEY_2, BOX_PIN2, DB_PWD_OLD: the old secret
# kept beside the new one), never another word (API_KEY_ID is a public name, priv_key_file a
# path). ``redact`` and the console's scrub use this same expression, so all three agree on
# every name.
# The names of HTTP headers (and of the config keys and variables that hold one) that carry
# a credential are secret names too: Authorization and Proxy-Authorization ("authoriz",
# "authoris"), Cookie and Set-Cookie, a Bearer's; X-Auth-Token, PRIVATE-TOKEN, Api-Key,
# X-API-Key and apikey already were (token, key, apikey). WWW-Authenticate is a challenge,
# no credential.
SECRET_WORDS = (
    "pass", "secret", "token", "cred", "apikey", "authoriz", "authoris", "cookie", "bearer",
)  # fmt: skip
SECRET_LAST_WORDS = ("key", "pin", "pwd", "pw")
VERSION_SUFFIXES = ("old", "new", "prev", "next", "bak", "backup")
NAME_CHAR = "[^=[:space:]]"  # a character of a key's name (it ends at a space or "=")
# The rule as a POSIX ERE (the gate's sed, C locale, with the I flag)
SECRET_NAME = (
    "(" + "|".join(SECRET_KEYS)
    + f"|{NAME_CHAR}*(" + "|".join(SECRET_WORDS) + f"){NAME_CHAR}*"
    + f"|({NAME_CHAR}*[_.-])?(" + "|".join(SECRET_LAST_WORDS) + ")"
    + "([_.-]?[0-9]+|[_.-](" + "|".join(VERSION_SUFFIXES) + "))?)"
)  # fmt: skip
C_SPACE = " \t\n\v\f\r"  # [[:space:]] in the C locale

# camelCase: a last word that starts a camelCase part (boxPin, userKey, adminPIN, newPw2).
# SECRET_NAME is read case-insensitively, where "boxpin" is spelled like "turkey" or
# "pinned"; this rule is read case-SENSITIVELY (the gate's sed runs it without the I flag):
# the last word written Capitalized or in CAPITALS right after a lower-case letter or a
# digit. Not a private key's name (tlsPrivateKey, in any case before "Key"): that is a
# file's path, and http.conf's tlsprivatekey, in any case, is a key plan reads.
_CAMEL_AFTER = "[a-z0-9]"
_NOT_A_KEY_NAME = "private"


def _variants(words: tuple[str, ...]) -> str:
    return "|".join(v for w in words for v in dict.fromkeys((w.capitalize(), w.upper())))


def _not_ending_in(word: str) -> str:
    """An ERE of a name's part before a camelCase last word (ending in _CAMEL_AFTER) that
    does not end in ``word`` in any case: shorter than it, or differing from it in one of
    its last len(word) characters (the first that differs)."""
    n = len(word)
    either = [f"{c.lower()}{c.upper()}" for c in word]
    alternatives = [f"{NAME_CHAR}{{0,{n - 2}}}{_CAMEL_AFTER}"]  # shorter
    for i in range(n):
        same = "".join(f"[{pair}]" for pair in either[:i])
        if i < n - 1:
            differs = f"[^{either[i]}=[:space:]]"
            rest = f"{NAME_CHAR}{{{n - 2 - i}}}{_CAMEL_AFTER}"
            alternatives.append(f"{NAME_CHAR}*{same}{differs}{rest}")
        else:  # the last: a lower-case letter or a digit, but not this one
            last = "".join(c for c in "abcdefghijklmnopqrstuvwxyz0123456789" if c != word[i])
            alternatives.append(f"{NAME_CHAR}*{same}[{last}]")
    return "(" + "|".join(alternatives) + ")"


_CAMEL_VERSION = (
    "([_.-]?[0-9]+|[_.-](" + "|".join(
        v for w in VERSION_SUFFIXES for v in (w, w.capitalize(), w.upper())
    ) + "))?"
)  # fmt: skip
# The rule as a POSIX ERE (the gate's sed, C locale, WITHOUT the I flag)
CAMEL_SECRET_NAME = (
    f"({_not_ending_in(_NOT_A_KEY_NAME)}({_variants(('key',))})"
    f"|{NAME_CHAR}*{_CAMEL_AFTER}({_variants(tuple(w for w in SECRET_LAST_WORDS if w != 'key'))})"
    f"){_CAMEL_VERSION}"
)


def python_rule(ere: str) -> str:
    """``ere`` (one of these rules, which use no other POSIX class) for Python's ``re``."""
    return ere.replace("[:space:]", C_SPACE)


_SECRET_NAME_RE = re.compile(python_rule(SECRET_NAME), re.IGNORECASE)


@cache  # compiled when first asked (0.5 ms), not at every start of the CLI
def _camel_secret_name_re() -> re.Pattern[str]:
    return re.compile(python_rule(CAMEL_SECRET_NAME))


def secret_name(key: str) -> bool:
    """True when the config key ``key`` says by its name that its value is a secret."""
    key = key.strip(C_SPACE)
    return (
        _SECRET_NAME_RE.fullmatch(key) is not None
        or _camel_secret_name_re().fullmatch(key) is not None
    )
