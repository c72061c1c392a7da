"""A customer's phones are in a context of the hoster's, never in one sipctl writes.

A customer's ``local_context`` is where its users' extensions are dialled, and sipctl adds
an ``include`` of the customer's rooms to it. It was accepted as the host's entry context
(``guest-call``: the customer's phones among the guests), as ``sipctl-domains``, or as
another customer's ``sipctl-guest-<digest>``. The rule: every context sipctl writes on a
hosting PBX is refused as a customer's ``local_context`` (``schemas/names.py``'s reserved
contexts and prefixes), and so is its host's entry context, each at the line of the key.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
import yaml
from fixtures.properties import examples
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sipctl.cli import run
from sipctl.errors import SpecError
from sipctl.reconciler.asterisk_conf import normalize_dialplan
from sipctl.reconciler.render.asterisk import dialplan_text
from sipctl.reconciler.render.asterisk_names import described_names, names_from_dialplan
from sipctl.schemas.loader import load_spec, load_spec_text

HOST = {
    "version": 1,
    "domain": "pbx1.hoster.example",
    "hosting": {"name": "pbx1"},
    "transports": {"udp": {"port": 5060}},
    "servers": [{"host": "pbx1.hoster.example", "ipv4": ["203.0.113.10"]}],
    "asterisk": {"target": "dir:state", "guest_context": "guest-call"},
}


def customer(domain: str, local_context: str) -> dict[str, object]:
    return {
        "version": 1,
        "domain": domain,
        "host": "pbx1",
        "local_context": local_context,
        "users": {"director": 105},
        "rooms": {"meeting": {"max_members": 5}},
    }


def write(directory: Path, name: str, data: dict[str, object]) -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


_label = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", fullmatch=True).filter(
    lambda label: "--" not in label[2:4]
)
domains = st.lists(_label, min_size=1, max_size=2).map(lambda ls: ".".join(ls) + ".example")
domains = domains.filter(lambda d: len(d) <= 79)


def _apart(names: list[str]) -> bool:
    """No customer's domain inside another's: a hosting directory refuses that (its DNS
    would reach into the other's zone)."""
    return not any(a.endswith("." + b) for a in names for b in names)


customer_domains = st.lists(
    domains, min_size=1, max_size=3, unique_by=lambda d: d.replace("-", "")
).filter(_apart)


@settings(max_examples=examples(25), deadline=None, derandomize=True, database=None)
@example(names=["a" * 63 + ".example", "b-" * 30 + "b.example"])  # digests of long domains
@given(names=customer_domains)
def test_no_context_sipctl_writes_is_a_customers_local_context(names: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        host = write(directory, "pbx1.yaml", HOST)
        for i, domain in enumerate(names):
            write(directory, f"c{i}.yaml", customer(domain, f"phones-{i}"))
        text = dialplan_text(load_spec(host).spec)
    own = {f"phones-{i}" for i in range(len(names))}
    written = set(re.findall(r"^\[([^\]]+)\]", text, re.M)) - own
    assert {"guest-call", "sipctl-domains"} <= written
    for context in sorted(written - {"guest-call"}):  # the entry context: the next test
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", context):
            continue  # not a context name a spec can write at all
        with pytest.raises(SpecError) as info:
            load_spec_text(
                yaml.safe_dump(customer("x.example", context), sort_keys=False), source="c.yaml"
            )
        assert info.value.message.startswith("c.yaml:4:1: local_context: ")
        assert "reserved" in info.value.message, info.value.message


def test_the_hosts_entry_context_is_no_customers_local_context(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "pbx1.yaml", HOST)
    write(tmp_path, "alpha.yaml", customer("alpha.example", "Guest-Call"))
    assert run(["validate", "-f", str(tmp_path / "pbx1.yaml")]) == 1
    shown = capsys.readouterr().err
    assert f"{tmp_path}/alpha.yaml:4:1: local_context: guest-call is the entry context" in shown
    assert "pbx1.yaml:" in shown and "asterisk.guest_context" in shown


def test_two_customers_of_one_domain_are_named_with_their_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "pbx1.yaml", HOST)
    write(tmp_path, "a.yaml", customer("alpha.example", "a-phones"))
    write(tmp_path, "b.yaml", customer("Alpha.Example.", "b-phones"))
    write(tmp_path, "c.yaml", customer("al-pha.example", "c-phones"))
    assert run(["validate", "-f", str(tmp_path / "pbx1.yaml")]) == 1
    shown = capsys.readouterr().err
    assert f"{tmp_path}/b.yaml:2:1: domain: alpha.example is also the domain of " in shown
    assert f"{tmp_path}/a.yaml:2:1, another customer of pbx1" in shown


def test_a_host_no_file_declares_is_named_with_the_hosts_there_are(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "pbx1.yaml", HOST)
    path = write(tmp_path, "a.yaml", {**customer("alpha.example", "a-phones"), "host": "pbx9"})
    assert run(["validate", "-f", str(path)]) == 1
    shown = capsys.readouterr().err
    assert f"{path}:3:1: host: no file beside a.yaml has 'hosting: {{name: pbx9}}'" in shown
    assert "pbx1 (" in shown


@settings(max_examples=examples(20), deadline=None, derandomize=True, database=None)
@example(names=["a" * 63 + ".example", "b-" * 30 + "b.example"])  # digests of long domains
@given(names=customer_domains)
def test_a_plan_names_each_customers_users_by_its_domain(names: list[str]) -> None:
    """The plan reads users back from the dialplan; a customer's guest context is named by
    a digest of a long domain, and the plan said ``director@<digest>``."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        host = write(directory, "pbx1.yaml", HOST)
        for i, domain in enumerate(names):
            write(directory, f"c{i}.yaml", customer(domain, f"phones-{i}"))
        spec = load_spec(host).spec
    read = names_from_dialplan(normalize_dialplan(dialplan_text(spec)))
    assert read == described_names(spec)
    assert {f"user director@{d}" for d in names} <= set(read)


def test_two_host_files_of_one_name_are_refused_naming_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A host file copied for a new PBX, its hosting.name left as it was, served every
    customer a second time while their DNS pointed at the first host only."""
    write(tmp_path, "pbx1.yaml", HOST)
    write(tmp_path, "pbx2.yaml", {**HOST, "domain": "pbx2.hoster.example"})
    customer_file = write(tmp_path, "alpha.yaml", customer("alpha.example", "a-phones"))
    for path in (tmp_path / "pbx1.yaml", tmp_path / "pbx2.yaml", customer_file):
        assert run(["validate", "-f", str(path)]) == 1, path
        shown = capsys.readouterr().err
        assert (
            f"{tmp_path}/pbx2.yaml:4:3: hosting.name: pbx1 is also the name of the host file "
            f"{tmp_path}/pbx1.yaml:4:3" in shown
        ), shown
    (tmp_path / "pbx2.yaml").write_text(
        (tmp_path / "pbx2.yaml").read_text().replace("name: pbx1", "name: pbx2")
    )
    for path in (tmp_path / "pbx1.yaml", tmp_path / "pbx2.yaml", customer_file):
        assert run(["validate", "-f", str(path)]) == 0, capsys.readouterr()


def test_a_binding_no_customer_file_declares_is_said_not_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A deleted customer's line left in hosting.local_contexts: validate warns and plan
    notes it at the host file's line, naming the domain and what to do; neither fails."""
    bindings = {"alpha.example": "a-phones", "Gone.Example": "g-phones"}
    host = write(
        tmp_path, "pbx1.yaml", {**HOST, "hosting": {"name": "pbx1", "local_contexts": bindings}}
    )
    write(tmp_path, "alpha.yaml", customer("alpha.example", "a-phones"))
    stale = (
        f"{host}:7:5: hosting.local_contexts binds Gone.Example to g-phones, but no customer "
        "file of pbx1 beside this file declares domain: gone.example; if that customer is "
        "gone, remove the line"
    )
    assert run(["validate", "-f", str(host)]) == 0
    shown = capsys.readouterr()
    assert stale in shown.err and "alpha.example binds" not in shown.err
    assert run(["plan", "-f", str(host)]) in (0, 2)
    planned = capsys.readouterr()
    assert stale in planned.out + planned.err

    write(tmp_path, "gone.yaml", customer("gone.example", "g-phones"))  # declared again
    assert run(["validate", "-f", str(host)]) == 0
    assert "hosting.local_contexts binds" not in capsys.readouterr().err


def test_a_binding_the_host_spells_otherwise_is_named_at_its_own_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bindings = {"Alpha.Example.": "a-phones"}
    host = write(
        tmp_path, "pbx1.yaml", {**HOST, "hosting": {"name": "pbx1", "local_contexts": bindings}}
    )
    write(tmp_path, "alpha.yaml", customer("alpha.example", "b-phones"))
    assert run(["validate", "-f", str(host)]) == 1
    shown = capsys.readouterr().err
    assert f"binds alpha.example to: a-phones (hosting.local_contexts, {host}:6:5)" in shown
