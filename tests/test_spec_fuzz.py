"""Hundreds of malformed specs: each gets a human error and exit 1, never a traceback."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from fixtures.properties import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipctl.cli import run

VALID: dict[str, Any] = {
    "version": 1,
    "domain": "mysite.ru",
    "transports": {"udp": {"port": 5060}, "tcp": {"port": 5060}, "tls": {"port": 5061}},
    "servers": [{"host": "asterisk.mysite.ru", "ipv4": ["203.0.113.10"], "priority": 10}],
    "users": {"director": 105, "alex": 106},
    "dns": {
        "provider": "rfc2136",
        "server": "127.0.0.1:53",
        "tsig": {"name": "sipctl", "secret_env": "SIPCTL_TSIG_SECRET"},
    },
    "asterisk": {
        "target": "local",
        "rtp": {"start": 10000, "end": 20000},
        "tls": {"cert_file": "/etc/a.pem", "key_file": "/etc/a.key"},
    },
    "firewall": {"backend": "iptables", "extra": ["tcp/443"]},
    "fail2ban": {"maxretry": 5},
}

HOSTILE = [
    "_X.",
    "a;b",
    'x"y',
    "a\nb",
    "}",
    "${SHELL}",
    "h",
    "-1",
    "\x00",
    "😀",
    "a b",
    "[",
    "_.",
    "x" * 5000,
    "../../etc/passwd",
    "ssh://",
    "dir:",
    "' OR 1=1",
    "#include x",
    "a,b",
    "",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(HOSTILE),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found.extend(_paths(value, (*prefix, i)))
    return found


ALL_PATHS = _paths(VALID)


@st.composite
def malformed_spec(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["replace", "delete", "extra", "hostile_user", "raw", "huge"]))
    data = copy.deepcopy(VALID)
    if kind == "raw":
        return draw(st.text(max_size=200)) + draw(st.sampled_from(["", ":", "- [", "{{", "\t"]))
    if kind == "huge":
        data["users"] = {f"u{i}": "9" * draw(st.integers(21, 400)) for i in range(50)}
        return yaml.safe_dump(data)
    if kind == "hostile_user":
        data["users"][draw(st.sampled_from(HOSTILE))] = draw(
            st.sampled_from([105, "10x", "", None])
        )
        return yaml.safe_dump(data, allow_unicode=True)
    path = draw(st.sampled_from(ALL_PATHS))
    parent: Any = data
    for part in path[:-1]:
        parent = parent[part]
    if kind == "replace":
        parent[path[-1]] = draw(values.filter(lambda v: v != parent[path[-1]]))
    elif kind == "delete":
        if path in (("version",), ("domain",)) or isinstance(parent, list):
            parent.clear() if isinstance(parent, list) else parent.pop(path[-1])
        else:
            return yaml.safe_dump(data) + "bogus_key: 1\n"
        if isinstance(parent, dict):
            return yaml.safe_dump(data)
    else:
        target = parent if isinstance(parent, dict) else data
        target[draw(st.text(min_size=1, max_size=10).filter(lambda k: k not in target))] = 1
    try:
        return yaml.safe_dump(data, allow_unicode=True)
    except yaml.YAMLError:
        return "version: 1\ndomain: [\n"


@settings(max_examples=examples(520), deadline=None, suppress_health_check=list(HealthCheck))
@given(text=malformed_spec())
def test_malformed_specs_get_a_human_error(
    text: str, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    path: Path = tmp_path_factory.mktemp("fuzz") / "sipctl.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    code = run(["validate", "-f", str(path)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert "unexpected error" not in err, err
    if code == 0:
        # The mutation happened to be harmless (e.g. a value replaced by an equal one).
        assert "valid" in out
        return
    assert code == 1, (code, err)
    assert err.startswith("Error: "), err
    assert str(path) in err


def test_the_valid_base_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "sipctl.yaml"
    path.write_text(yaml.safe_dump(VALID))
    assert run(["validate", "-f", str(path)]) == 0
