"""The spec of dns.provider octodns: octoDNS's provider config, secrets only as env/NAME."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fixtures.common import sipctl_in_process
from fixtures.properties import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from sipctl.errors import SpecError
from sipctl.schemas.loader import load_spec_text
from sipctl.schemas.profiles import RUNNER_PROFILE_ENV

BASE = "version: 1\ndomain: mysite.ru\ndns:\n  provider: octodns\n"


def _problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_spec_text(text, source="sipctl.yaml")
    return info.value.problems or [info.value.message]


def test_octodns_config_is_kept_as_written() -> None:
    loaded = load_spec_text(
        BASE + "  octodns:\n    class: octodns_route53.Route53Provider\n"
        "    access_key_id: env/AWS_ACCESS_KEY_ID\n    secret_access_key: env/AWS_SECRET\n"
        "    max_changes: 500\n    ssl_verify: false\n",
        source="sipctl.yaml",
    )
    assert loaded.spec.dns is not None and loaded.spec.dns.octodns is not None
    assert loaded.spec.dns.octodns.provider_class == "octodns_route53.Route53Provider"
    assert loaded.spec.dns.octodns.arguments() == {
        "access_key_id": "env/AWS_ACCESS_KEY_ID",
        "secret_access_key": "env/AWS_SECRET",
        "max_changes": 500,
        "ssl_verify": False,
    }


@pytest.mark.parametrize("key", ["api_key", "secret_access_key", "token", "password"])
def test_inline_credentials_are_refused_without_echoing_them(key: str) -> None:
    (problem,) = _problems(BASE + f"  octodns:\n    class: a.B\n    {key}: s3cr3tVALUE\n")
    assert problem.startswith("sipctl.yaml:5:3: dns.octodns:")
    assert f"{key}: env/NAME" in problem
    assert "s3cr3tVALUE" not in problem


_SECRET_WORDS = ("key", "secret", "token", "password", "credential", "auth", "private")


@settings(max_examples=examples(60), deadline=None)
@given(
    word=st.sampled_from(_SECRET_WORDS),
    around=st.tuples(st.sampled_from(["", "api_", "x-", "client_"]), st.sampled_from(["", "_id"])),
    value=st.text("ABCDEFGHJKLMNPQRSTUVWXYZ23456789", min_size=8, max_size=30),
    nested=st.sampled_from(["", "headers", "options"]),
)
def test_an_inline_credential_at_any_depth_is_refused_without_echoing_it(
    word: str, around: tuple[str, str], value: str, nested: str
) -> None:
    """A key naming a secret, at the top of dns.octodns or inside one of its mappings, takes
    env/NAME only: refused by the loader, and the value is never in the message."""
    key = around[0] + word + around[1]
    entry = f"{key}: {value}" if not nested else f"{nested}: {{{key}: {value}}}"
    (problem,) = _problems(BASE + f"  octodns:\n    class: a.B\n    {entry}\n")
    assert problem.startswith("sipctl.yaml:5:3: dns.octodns:"), problem
    assert "inline credential" in problem and value not in problem
    written = f"{nested}.{key}" if nested else key
    assert f"{written}: env/NAME" in problem
    allowed = entry.replace(value, "env/SOME_NAME")
    load_spec_text(BASE + f"  octodns:\n    class: a.B\n    {allowed}\n", source="sipctl.yaml")


def _secret_names() -> st.SearchStrategy[str]:
    """Names the one rule of secret names (secret_names) reads as a secret's: any word of
    SECRET_WORDS inside a name, a last word of SECRET_LAST_WORDS after '_', '-' or '.' or
    alone, any of SECRET_KEYS, each in any case or camelCase (boxPin)."""
    from sipctl.secret_names import SECRET_KEYS, SECRET_LAST_WORDS, SECRET_WORDS

    part = st.sampled_from(["", "db", "admin", "my_", "x-", "user"])
    inside = st.builds(lambda a, w, b: a + w + b, part, st.sampled_from(SECRET_WORDS), part)
    last = st.builds(lambda a, w: f"{a}_{w}" if a else w, part, st.sampled_from(SECRET_LAST_WORDS))
    camel = st.builds(
        lambda a, w: a + w.capitalize(),
        st.sampled_from(["box", "admin", "user"]),
        st.sampled_from(SECRET_LAST_WORDS),
    )
    spelt = st.one_of(inside, last).flatmap(
        lambda name: st.sampled_from([name, name.upper(), name.capitalize()])
    )
    return st.one_of(spelt, camel, st.sampled_from(SECRET_KEYS))


@settings(max_examples=examples(100), deadline=None)
@given(key=_secret_names(), value=st.text("ABCDEFGHJKLMNPQRSTUVWXYZ23456789", min_size=8))
def test_every_name_the_console_hides_takes_env_name_in_dns_octodns(key: str, value: str) -> None:
    """An argument the console's scrub and the read gate take for a secret's by its name
    (pwd, pin, passphrase, dbpass, boxPin) is an inline credential in dns.octodns too: they
    passed validate with the secret written in the spec (found by the tryout)."""
    from sipctl.secret_names import secret_name

    assert secret_name(key), key
    entry = f"{key}: {value}"
    (problem,) = _problems(BASE + f"  octodns:\n    class: a.B\n    {entry}\n")
    assert "inline credential" in problem and value not in problem, problem
    assert f"{key}: env/NAME" in problem
    load_spec_text(
        BASE + f"  octodns:\n    class: a.B\n    {key}: env/SOME_NAME\n", source="s.yaml"
    )


@pytest.mark.parametrize(
    "entry",
    [
        "url: 'https://user:pa55word@pdns.example.net/api'",
        "endpoints: [https://pdns.example.net/, 'https://u:pa55word@pdns.example.net/']",
        "options: {base: 'https://admin:pa55word@pdns.example.net:8081'}",
    ],
)
def test_a_url_with_a_password_is_an_inline_credential(entry: str) -> None:
    (problem,) = _problems(BASE + f"  octodns:\n    class: a.B\n    {entry}\n")
    assert "a URL with a password is an inline credential" in problem
    assert "pa55word" not in problem


@pytest.mark.parametrize(
    ("extra", "where", "words"),
    [
        ("", "sipctl.yaml:3:1: dns:", "needs 'octodns'"),
        ("  octodns:\n    api_key: env/K\n", "sipctl.yaml:5:3: dns.octodns.class:", "missing"),
        ("  octodns:\n    class: nodots\n", "sipctl.yaml:6:5: dns.octodns.class:", "module.Class"),
        (
            "  octodns:\n    class: a.B\n    x: {a: {b: 1}}\n",
            "sipctl.yaml:7:5: dns.octodns.x:",
            "list",
        ),
        ("  octodns:\n    class: a.B\n    id: mine\n", "sipctl.yaml:5:3: dns.octodns:", "'id'"),
        (
            "  server: 127.0.0.1\n  octodns:\n    class: a.B\n",
            "sipctl.yaml:3:1: dns:",
            "do not apply",
        ),
    ],
)
def test_bad_octodns_sections_are_file_line_errors(extra: str, where: str, words: str) -> None:
    (problem,) = _problems(BASE + extra)
    assert problem.startswith(where), problem
    assert words in problem


def test_octodns_section_needs_provider_octodns() -> None:
    text = "version: 1\ndomain: mysite.ru\ndns:\n  server: 127.0.0.1\n  octodns:\n    class: a.B\n"
    (problem,) = _problems(text)
    assert "belongs to provider octodns" in problem


def test_install_hints_name_the_extra() -> None:
    from sipctl.providers.dns.octodns_plugin import install_hint

    assert install_hint("octodns_route53") == "pip install 'sipctl[route53]'"
    assert install_hint("octodns_powerdns.sub") == "pip install 'sipctl[powerdns]'"
    assert install_hint("octodns_cloudflare") == "pip install 'sipctl[cloudflare]'"
    assert "sipctl[octodns]" in install_hint("octodns_ns1")


def test_the_octodns_provider_does_not_import_octodns_until_used() -> None:
    import subprocess
    import sys

    code = (
        "import sys; import sipctl.providers.dns.octodns, sipctl.cli; "
        "print(any(m == 'octodns' or m.startswith('octodns.') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_provider_that_says_its_record_types_only_once_configured_is_refused_in_words(
    tmp_path: Path,
) -> None:
    """octoDNS's own YamlProvider: SUPPORTS is a property, and it rewrites its whole file;
    validate and plan said 'unexpected error (TypeError ...)'."""
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(
        "version: 1\ndomain: mysite.ru\nusers: {director: 105}\n"
        "servers: [{host: sip.mysite.ru, ipv4: [127.0.0.1]}]\n"
        "dns:\n  provider: octodns\n  octodns:\n"
        "    class: octodns.provider.yaml.YamlProvider\n    directory: ./zones\n"
    )
    (tmp_path / "zones").mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("CI", RUNNER_PROFILE_ENV)}
    for command in ("validate", "plan"):
        result = sipctl_in_process(command, "-f", str(spec), env=env, cwd=tmp_path)
        said = result.stdout + result.stderr
        assert result.returncode == 1, said
        assert "sipctl.yaml:8:" in said and "dns.octodns.class" in said, said
        assert "dns.provider: zonefile" in said, said
        assert "unexpected" not in said and "Traceback" not in said, said


@pytest.mark.parametrize(
    "entry",
    [
        "host: 0x7f000001",
        "host: '127.1:8081'",
        "server: 2130706433",
        "api_host: 010.1.1.1",
        "endpoint: 'https://0x7f000001:8081/api'",
        "endpoint_url: 'http://127.1/'",
        "options: {base: 'https://2130706433/api'}",
        "nameservers: [ns1.example.net, 0x7f000001]",
        "host: pbx..example",
    ],
)
def test_a_host_an_octodns_argument_names_obeys_the_one_host_rule(entry: str) -> None:
    """host, server, endpoint and URL-valued arguments passed validate with a host the C
    resolver reads as an address (inet_aton: 0x7f000001 is 127.0.0.1), unlike dns.server's
    (found by the tryout): the same rule, names.check_connect_host, refuses them."""
    (problem,) = _problems(BASE + f"  octodns:\n    class: a.B\n    {entry}\n")
    assert problem.startswith("sipctl.yaml:5:3: dns.octodns:"), problem
    assert "the host of" in problem


@pytest.mark.parametrize(
    "entry",
    [
        "host: 127.0.0.1",
        "host: pdns.example.net",
        "host: 'pdns.example.net:8081'",
        "host: '::1'",
        "server: env/PDNS_HOST",
        "endpoint: 'https://[2001:db8::1]:8081/api'",
        "url: 'https://pdns.example.net:8081/api/v1'",
        "port: 8081",
        "timeout: 10",
    ],
)
def test_plain_hosts_and_urls_stay_octodns_arguments(entry: str) -> None:
    load_spec_text(BASE + f"  octodns:\n    class: a.B\n    {entry}\n", source="sipctl.yaml")
