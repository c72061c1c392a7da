"""The one rule of secret names (``secret_names``: the console's scrub, saved plans' masking
and the read gate's sed) knows the names of HTTP headers that carry a credential: a live
dialplan's ``Set(CURLOPT(httpheader)=Authorization=Bearer TOKEN)`` that audit or import
quotes told the token, and ``Authorization``, ``Cookie``, a ``Bearer`` key were no secret
names. Harmless header names stay as they are. Found by the tryout.
"""

from __future__ import annotations

import pytest
from fixtures.properties import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from sipctl.output import without_passwords
from sipctl.providers.transport.read_gate import redact
from sipctl.secret_names import secret_name

# Header names (and the keys and variables that hold one) whose value is a credential.
_CREDENTIAL_HEADERS = st.sampled_from(
    ["Authorization", "Proxy-Authorization", "Authorisation", "Cookie", "Set-Cookie",
     "Bearer", "Bearer-Token", "X-Auth-Token", "X-Auth-Key", "Api-Key", "X-Api-Key", "apikey",
     "X-APIKEY", "PRIVATE-TOKEN", "X-Access-Token", "X-Vault-Token", "X-Amz-Security-Token",
     "Ocp-Apim-Subscription-Key", "X-Goog-Api-Key", "X-CSRF-Token", "Session-Cookie"]
)  # fmt: skip
_PREFIX = st.sampled_from(["", "X-", "X-Acme-", "HTTP_", "hdr_"])
_SCHEME = st.sampled_from(["", "Bearer ", "bearer ", "Basic ", "Token ", "Digest "])
_CREDENTIAL = st.text(
    "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789-_.+/=~", min_size=8
)


def _spelt(name: str, style: int) -> str:
    return (name, name.lower(), name.upper(), name.replace("-", "_"))[style]


@settings(max_examples=examples(300), deadline=None)
@given(
    name=_CREDENTIAL_HEADERS,
    prefix=_PREFIX,
    style=st.integers(0, 3),
    scheme=_SCHEME,
    credential=_CREDENTIAL,
)
def test_a_header_that_carries_a_credential_is_masked(
    name: str, prefix: str, style: int, scheme: str, credential: str
) -> None:
    header = _spelt(prefix + name, style)
    assert secret_name(header), header
    secret = "zQ" + credential
    # as the console (and a saved plan) shows a live dialplan's line: a variable set, a
    # header sent as HTTP writes it
    for line in (
        f"exten => _X.,1,Set({header}={scheme}{secret})",
        f"exten => _X.,1,Set(CURLOPT(httpheader)={header}={scheme}{secret})",
        f"exten => _X.,1,Set(CURLOPT(httpheader)={header}: {scheme}{secret})",
    ):
        shown = without_passwords(line)
        assert secret not in shown and "zQ" not in shown, shown
    # as the read gate answers a config line and a variable set in the dialplan
    for text in (
        f"{header} = {scheme}{secret}\n",
        f"same => n,Set({header}={scheme}{secret})",
        f"same => n,Set(CURLOPT(httpheader)={header}: {scheme}{secret})",
    ):
        assert b"zQ" not in redact(text.encode()), text


@pytest.mark.parametrize(
    "name",
    ["Content-Type", "Content-Length", "Accept", "Accept-Encoding", "User-Agent", "Host",
     "WWW-Authenticate", "Proxy-Authenticate", "Cache-Control", "Connection", "Date",
     "Location", "Referer", "Origin", "Server", "X-Forwarded-For", "X-Request-Id", "ETag",
     "outbound_auth", "auth_rejection_permanent", "Authentication-Results"],
)  # fmt: skip
def test_harmless_header_names_are_not_secret(name: str) -> None:
    assert not secret_name(name)
    for line in (f"Set(CURLOPT(httpheader)={name}=text/plain)", f"Set({name}=text/plain)",
                 f"Set(CURLOPT(httpheader)={name}: text/plain)"):  # fmt: skip
        assert without_passwords(line) == line


def test_a_scheme_word_is_not_itself_taken_for_the_value() -> None:
    """An auth scheme after an ordinary name is left as it is: only a secret's is masked."""
    assert without_passwords("Set(MODE=Bearer x)") == "Set(MODE=Bearer x)"
    assert without_passwords("Authorization=Basic dXNlcjpwdw==") == "Authorization=Basic ***"
    # a message that names a key with a colon after it is no header
    assert without_passwords("asterisk.secret_env: must be a name") == (
        "asterisk.secret_env: must be a name"
    )
