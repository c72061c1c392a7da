"""A host sipctl connects to (an ssh:// target's, dns.server's) is a host name or an IPv4
address in its one spelling.

The host of ``ssh://user@HOST`` was any run of letters, digits, dots and '-': ``127.1``,
``2130706433``, ``0x7f000001`` and ``010.1.1.1`` passed validate, and the C resolver reads
each as an address (inet_aton: 127.0.0.1, 8.1.1.1 for the octal one), while the runner
profile's ``to`` and the probe scope compared the text as written; ``999.1.1.1`` and
``pbx..ru`` passed too and failed only when plan connected, without file or line.
``names.check_connect_host`` refuses them at the key's line, for every key (dns.server
and the ACME directory's URL took them too). Proven against glibc's own
reading (``getaddrinfo`` with ``AI_NUMERICHOST``: no query is sent): an accepted host the
resolver takes for an address is that address as ``ipaddress`` writes it.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable

import pytest
from fixtures.properties import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from sipctl.schemas.targets import parse_target
from sipctl.schemas.values import check_acme_url, check_hostport

_label = st.one_of(
    st.integers(0, 4294967295).map(str),
    st.integers(0, 300).map(lambda n: f"0{n}"),
    st.integers(0, 2**32).map(lambda n: f"0x{n:x}"),
    st.from_regex(r"[a-z0-9][a-z0-9-]{0,10}", fullmatch=True),
    st.sampled_from(["", "-a", "a-", "0x", "0X1F"]),
)
_hosts = st.lists(_label, min_size=1, max_size=5).map(".".join)


def _numeric(host: str) -> str | None:
    """The address glibc's resolver reads ``host`` as without asking DNS (None: a name)."""
    try:
        info = socket.getaddrinfo(host, 22, socket.AF_INET, flags=socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError):
        return None
    return str(info[0][4][0])


def _target_host(host: str) -> str:
    return parse_target(f"ssh://root@{host}").host


def _server_host(host: str) -> str:
    return check_hostport(f"{host}:53").rsplit(":", 1)[0].lower()


def _acme_host(host: str) -> str:
    return check_acme_url(f"https://{host}/directory").split("/")[2].lower()


@settings(max_examples=examples(500), deadline=None)
@given(_hosts, st.sampled_from([_target_host, _server_host, _acme_host]))
def test_an_accepted_host_is_the_address_or_the_name_it_reads_as(
    host: str, accepted: Callable[[str], str]
) -> None:
    try:
        written = accepted(host)
    except ValueError:
        return  # refused at the key's line
    read = _numeric(written)
    if read is not None:
        assert written == read == str(ipaddress.IPv4Address(read))
    else:
        labels = written.removesuffix(".").split(".")
        assert all(label and not label.startswith("-") for label in labels)


@pytest.mark.parametrize(
    "host", ["127.1", "2130706433", "0x7f000001", "010.1.1.1", "999.1.1.1", "pbx..ru", "-pbx.ru"]
)
def test_a_host_the_resolver_reads_otherwise_is_refused(host: str) -> None:
    with pytest.raises(ValueError):
        parse_target(f"ssh://root@{host}")
    with pytest.raises(ValueError):
        check_hostport(f"{host}:53")
    with pytest.raises(ValueError):  # the ACME directory's host passed (found by the tryout)
        check_acme_url(f"https://{host}/directory")


@pytest.mark.parametrize("port", ["0", "65536", "99999"])
def test_an_acme_directorys_port_is_one_a_connection_can_use(port: str) -> None:
    with pytest.raises(ValueError, match="its port must be 1 to 65535"):
        check_acme_url(f"https://acme.example:{port}/directory")
    assert check_acme_url("https://acme.example:14000/dir") == "https://acme.example:14000/dir"


@pytest.mark.parametrize("host", ["pbx", "pbx.mysite.ru", "PBX.mysite.ru.", "192.0.2.7"])
def test_names_and_plain_addresses_stay_targets(host: str) -> None:
    assert parse_target(f"ssh://root@{host}").host == host.lower()
