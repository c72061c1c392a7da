"""Which config keys hold a secret, by their name: the one rule for the read gate's sed, its
copy in ``read_gate.redact`` (plan's fingerprint of an admin's file) and the console's scrub
of every line sipctl prints (``output.without_passwords``: a live ``Set(TRUNK_PASSWORD=...)``
that audit or import quotes).

Pure, no imports of sipctl: ``output`` and the read gate both use it.
"""

from __future__ import annotations

import re

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
# path). camelCase parts (boxPin, userKey) cannot be told apart in the gate's sed, which
# reads names case-insensitively ("boxpin" is spelled like "turkey" or "pinned" there): such
# a name matches only through SECRET_WORDS (trunkPassword, authToken, apiKey). ``redact``
# and the console's scrub use this same expression, so all three agree on every name.
SECRET_WORDS = ("pass", "secret", "token", "cred", "apikey")
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


def python_rule(ere: str) -> str:
    """``ere`` (one of these rules, which use no other POSIX class) for Python's ``re``."""
    return ere.replace("[:space:]", C_SPACE)


_SECRET_NAME_RE = re.compile(python_rule(SECRET_NAME), re.IGNORECASE)


def secret_name(key: str) -> bool:
    """True when the config key ``key`` says by its name that its value is a secret."""
    return _SECRET_NAME_RE.fullmatch(key.strip(C_SPACE)) is not None
