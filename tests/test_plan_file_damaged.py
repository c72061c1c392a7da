"""A saved plan file is data from elsewhere (a CI artifact, a hand edit): whatever one of its
values holds, ``show`` (and ``apply PLAN``, which reads it the same way) either shows it or
refuses it in words, exit 1, and never ends in an unexpected error.

The plan is real: a zone file and a dir: target applied, the spec changed, planned with
--out; then one value anywhere in it is replaced by any JSON value.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fixtures.properties import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipctl.cli import run

ZONE = """\
$TTL 3600
@ IN SOA ns1.mysite.ru. hostmaster.mysite.ru. 1 3600 600 86400 300
@ IN NS ns1.mysite.ru.
ns1 IN A 192.0.2.1
"""

SPEC = """\
version: 1
domain: mysite.ru
servers:
  - host: asterisk.mysite.ru
    ipv4: [IPV4]
users:
  director: EXTENSION
dns:
  provider: zonefile
  file: mysite.ru.zone
asterisk:
  target: dir:pbx
firewall:
  target: dir:pbx
  persist: /etc/iptables.up
"""


@pytest.fixture(scope="module")
def saved_plan(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A plan of every action: records and files created, updated in place and deleted."""
    where = tmp_path_factory.mktemp("plan")
    (where / "mysite.ru.zone").write_text(ZONE)
    spec = where / "sipctl.yaml"
    spec.write_text(SPEC.replace("IPV4", "203.0.113.10").replace("EXTENSION", "105"))
    assert run(["apply", "-f", str(spec), "--auto-approve", "--no-verify"]) == 0
    spec.write_text(SPEC.replace("IPV4", "203.0.113.11").replace("EXTENSION", "106"))
    assert run(["plan", "-f", str(spec), "--out", str(where / "plan.json")]) == 0
    data: dict[str, Any] = json.loads((where / "plan.json").read_text())
    assert any(c["action"] == "update" for t in data["targets"] for c in t["changes"])
    return data


def _places(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in the document a value sits (the spec's text aside: it is a spec)."""
    found = [path] if path else []
    if isinstance(value, dict):
        for key, item in value.items():
            if key != "text":
                found += _places(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _places(item, (*path, index))
    return found


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(
    max_examples=examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data(), value=JSON, view=st.sampled_from([[], ["--markdown"], ["--json"]]))
def test_any_value_of_a_saved_plan_is_shown_or_refused_in_words(
    saved_plan: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
    data: st.DataObject,
    value: Any,
    view: list[str],
) -> None:
    place = data.draw(st.sampled_from(_places(saved_plan)))
    damaged = json.loads(json.dumps(saved_plan))
    holder = damaged
    for step in place[:-1]:
        holder = holder[step]
    holder[place[-1]] = value
    path = tmp_path_factory.mktemp("damaged") / "plan.json"
    path.write_text(json.dumps(damaged))
    capsys.readouterr()
    code = run(["show", str(path), "--no-color", *view])
    out, err = capsys.readouterr()
    assert code in (0, 1), (place, value, out, err)
    assert "unexpected error" not in err, (place, value, err)
    if code == 1:
        assert str(path) in err, err  # the refusal names the file
