"""A hosting customer's DNS reaches its own zone only (schemas/hosting_reach.py).

A customer controls its own file only, merged through the hoster's pipeline whose key may
update every customer's zone. With ``dns.zone`` naming another customer's domain (or a
zone inside or above it), its records, and through its registry of hosts the A/AAAA of
names like ``www.<victim>``, landed in the other customer's zone; with ``dns.file`` naming
another customer's zone file it could rewrite that zone. The rule: no two files of a
hosting directory reach the same zone, or one inside the other, or one zone file, and no
customer's zone holds a name another file sends its callers to (a host's servers, named
in a zone of the hoster's that no file has); refused at load, naming both files, before
anything is read.

The property test writes real files and loads them through the real loader, with the
names spelt as a spec may spell them (any case, a trailing dot, IDNA labels), against an
oracle built on dnspython's names.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import dns.name
import pytest
import yaml
from fixtures.properties import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from sipctl.cli import run
from sipctl.errors import SpecError
from sipctl.schemas.loader import load_spec

HOST = {
    "version": 1,
    "domain": "pbx1.hoster.example",
    "hosting": {"name": "pbx1"},
    "transports": {"udp": {"port": 5060}},
    "servers": [{"host": "pbx1.hoster.example", "ipv4": ["203.0.113.10"]}],
    "asterisk": {"target": "dir:state", "guest_context": "guest-call"},
}
# The host's servers named in a zone of the hoster's that no file of the directory has.
INFRA_HOST = {**HOST, "servers": [{"host": "sip.infra.example", "ipv4": ["203.0.113.10"]}]}


def customer(domain: str, context: str, **dns: object) -> dict[str, object]:
    data: dict[str, object] = {
        "version": 1,
        "domain": domain,
        "host": "pbx1",
        "local_context": context,
        "users": {"director": 105},
    }
    if dns:
        data["dns"] = dns
    return data


def write(directory: Path, name: str, data: dict[str, object]) -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def rfc2136(zone: str | None = None) -> dict[str, object]:
    # a port nothing listens on: a plan that got as far as reading would fail otherwise
    found: dict[str, object] = {"provider": "rfc2136", "server": "127.0.0.1:9"}
    if zone is not None:
        found["zone"] = zone
    return found


# --- the property ------------------------------------------------------------------------

_LABELS = st.one_of(
    st.sampled_from(["alpha", "beta", "xn--bcher-kva", "xn--80ak6aa92e", "a-b", "b1", "hoster"]),
    st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True).filter(
        lambda label: "--" not in label[2:4] and not label.isdigit()
    ),
)


@st.composite
def spelt(draw: st.DrawFn, name: str) -> str:
    """``name`` as a spec may write it: any letter in either case, maybe a trailing dot."""
    cased = "".join(c.upper() if c.isalpha() and draw(st.booleans()) else c for c in name)
    return cased + ("." if draw(st.booleans()) else "")


@st.composite
def directories(draw: st.DrawFn) -> tuple[str, str, str, str | None]:
    """(victim's domain, attacker's domain, attacker's zone or None) with the attacker's
    zone drawn near the victim's names: the same, inside, above, beside, or its own."""
    victim = ".".join(draw(st.lists(_LABELS, min_size=1, max_size=2))) + ".example"
    parts = victim.split(".")
    where = draw(st.sampled_from(["same", "inside", "above", "beside", "own", "host", "server"]))
    if where == "same":
        zone = victim
    elif where == "inside":
        zone = draw(_LABELS) + "." + victim
    elif where == "above":
        zone = ".".join(parts[1:]) if len(parts) > 2 else victim
    elif where == "host":
        zone = "hoster.example"
    elif where == "server":  # the host's server's name, or the zone above it
        zone = draw(st.sampled_from(["infra.example", "sip.infra.example", "x.sip.infra.example"]))
    else:
        zone = draw(_LABELS) + ".other"
    below = draw(st.lists(_LABELS, max_size=2))
    domain = ".".join([*below, zone])
    given_zone = None if where == "own" or (not below and draw(st.booleans())) else zone
    return victim, domain, draw(spelt(domain)), (draw(spelt(given_zone)) if given_zone else None)


def _name(text: str) -> dns.name.Name:
    return dns.name.from_text(text.lower().rstrip(".") + ".")


def overlaps(zone: str, other: str) -> bool:
    a, b = _name(zone), _name(other)
    return a.is_subdomain(b) or b.is_subdomain(a)


def holds(zone: str, name: str) -> bool:
    return _name(name).is_subdomain(_name(zone))


@settings(max_examples=examples(60), deadline=None, derandomize=True, database=None)
@given(drawn=directories())
def test_a_customer_reaching_another_files_zone_is_refused_naming_both(
    drawn: tuple[str, str, str, str | None],
) -> None:
    victim, domain, written_domain, written_zone = drawn
    if domain == victim:
        return  # one domain twice: refused as such by the host's own check
    if overlaps(victim, "pbx1.hoster.example"):
        return  # the victim itself reaches the host's zone (hoster.example)
    zone = written_zone if written_zone is not None else written_domain
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        write(directory, "pbx1.yaml", INFRA_HOST)
        write(directory, "victim.yaml", customer(victim, "victim-phones"))
        dns = rfc2136(written_zone) if written_zone is not None else rfc2136()
        evil = write(directory, "evil.yaml", customer(written_domain, "evil-phones", **dns))
        expected = (
            overlaps(zone, victim)
            or overlaps(zone, "pbx1.hoster.example")
            or holds(zone, "sip.infra.example")
        )
        for path in (evil, directory / "pbx1.yaml"):
            try:
                load_spec(path)
            except SpecError as exc:
                assert expected, exc.message
                assert f"{evil}:" in exc.message, exc.message
                assert "victim.yaml" in exc.message or "pbx1.yaml" in exc.message
            else:
                assert not expected, (zone, victim)
        # The victim's own file stays valid, unless the other file's zone is its own domain's
        # too (then neither can tell which one is wrong: two domains, one inside the other).
        evil_owns = zone.lower().rstrip(".") == written_domain.lower().rstrip(".")
        try:
            load_spec(directory / "victim.yaml")
        except SpecError as exc:
            assert evil_owns and overlaps(zone, victim), exc.message
        else:
            assert not (evil_owns and overlaps(zone, victim)), (zone, victim)


# --- through the CLI ---------------------------------------------------------------------


@pytest.fixture()
def hoster(tmp_path: Path) -> Path:
    write(tmp_path, "pbx1.yaml", HOST)
    write(tmp_path, "beta.yaml", customer("beta.example", "beta-phones", **rfc2136()))
    return tmp_path


def test_a_zone_naming_another_customers_domain_is_refused_before_any_read(
    hoster: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The tryout's attack: x.beta.example in zone beta.example, its registry then naming
    www.beta.example. Refused by validate and plan alike, naming both files' lines; the
    plan reads nothing (its DNS server, port 9, would have failed it otherwise)."""
    evil = write(hoster, "evil.yaml", customer("x.beta.example", "e", **rfc2136("beta.example")))
    for command in ("validate", "plan"):
        assert run([command, "-f", str(evil)]) == 1
        err = capsys.readouterr().err
        assert (
            f"{evil}:10:3: dns.zone: beta.example is also the zone of {hoster}/beta.yaml "
            f"({hoster}/beta.yaml:2:1: domain: beta.example)" in err
        ), err
        assert "connect" not in err and "refused" not in err
    # The file naming a zone not its own is the one refused: beta.yaml's zone is its own
    # domain's, so a stranger's file naming it no longer makes beta.yaml invalid too (it
    # did: anyone could stop any customer's validate and plan; found by the tryout). The
    # directory, and the host whose customer evil.yaml is, hold the refused file.
    assert run(["validate", "-f", str(hoster / "beta.yaml")]) == 0, capsys.readouterr()
    capsys.readouterr()
    for target in (hoster, hoster / "pbx1.yaml"):
        assert run(["validate", "-f", str(target)]) == 1
        assert "is also the zone of" in capsys.readouterr().err


def test_a_strangers_file_naming_a_customers_zone_leaves_that_customer_valid(
    hoster: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The tryout's denial of service: evil.yaml (sip.alpha.example in zone alpha.example)
    beside alpha.example.yaml (its own zone) made validate of alpha.example.yaml fail too.
    Now evil.yaml alone is refused; the customer validates and plans."""
    zonefile = {"provider": "zonefile", "file": "alpha.example.zone", "create_file": True}
    alpha = write(hoster, "alpha.example.yaml", customer("alpha.example", "a", **zonefile))
    evil = write(
        hoster, "evil.yaml", customer("sip.alpha.example", "e", **rfc2136("alpha.example"))
    )
    assert run(["validate", "-f", str(evil)]) == 1
    assert "is also the zone of" in capsys.readouterr().err
    assert run(["validate", "-f", str(alpha)]) == 0, capsys.readouterr()
    capsys.readouterr()
    assert run(["plan", "-f", str(alpha)]) in (0, 2), capsys.readouterr()
    out = capsys.readouterr().out
    assert "+ dns NAPTR alpha.example " in out, out


def test_a_domain_inside_another_customers_is_refused(
    hoster: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    evil = write(hoster, "evil.yaml", customer("x.beta.example", "e", **rfc2136()))
    assert run(["plan", "-f", str(hoster)]) == 1
    err = capsys.readouterr().out  # a run of several: each domain's error in its table
    assert (
        f"{evil}:2:1: domain: x.beta.example lies inside beta.example, the zone of "
        f"{hoster}/beta.yaml" in err
    ), err


def test_a_zone_above_another_files_domain_is_refused(
    hoster: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A parent zone holding another file's domain (here the host's own) reaches its
    names: pbx1.hoster.example's A record would be the customer's to rewrite."""
    evil = write(
        hoster, "evil.yaml", customer("sip.hoster.example", "e", **rfc2136("hoster.example"))
    )
    assert run(["validate", "-f", str(evil)]) == 1
    err = capsys.readouterr().err
    assert (
        f"{evil}:10:3: dns.zone: hoster.example holds pbx1.hoster.example, the zone of "
        f"{hoster}/pbx1.yaml" in err
    ), err


def test_a_parent_zone_of_its_own_alone_is_fine(
    hoster: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """sip.alpha.example in zone alpha.example, which holds no other file's zone; beside
    it a second host, its customer and one company's spec of their own."""
    write(hoster, "alpha.yaml", customer("sip.alpha.example", "a", **rfc2136("alpha.example")))
    pbx2 = {"domain": "pbx2.hoster2.example", "hosting": {"name": "pbx2"}}
    write(hoster, "pbx2.yaml", {**HOST, **pbx2, "asterisk": {"target": "dir:state2"}})
    write(hoster, "gamma.yaml", {**customer("gamma.example", "g"), "host": "pbx2"})
    write(hoster, "company.yaml", {"version": 1, "domain": "company.example"})
    assert run(["validate", "-f", str(hoster)]) == 0, capsys.readouterr()
    assert "6 spec(s): 6 valid" in capsys.readouterr().out


def test_one_companys_spec_beside_the_hosts_is_no_customers_zone(
    hoster: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(hoster, "company.yaml", {"version": 1, "domain": "company.example"})
    evil = write(
        hoster, "evil.yaml", customer("sip.company.example", "e", **rfc2136("company.example"))
    )
    assert run(["validate", "-f", str(evil)]) == 1
    err = capsys.readouterr().err
    assert f"is also the zone of {hoster}/company.yaml" in err, err


@pytest.mark.parametrize("spelling", ["../{d}/zones/beta.zone", "zones/./beta.zone", "link.zone"])
def test_another_customers_zone_file_is_refused_however_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], spelling: str
) -> None:
    """Compared as resolved paths: through '..', './' or a symbolic link."""
    write(tmp_path, "pbx1.yaml", HOST)
    (tmp_path / "zones").mkdir()
    zonefile = {"provider": "zonefile", "create_file": True}
    write(tmp_path, "beta.yaml", customer("beta.example", "b", **zonefile, file="zones/beta.zone"))
    (tmp_path / "link.zone").symlink_to(tmp_path / "zones" / "beta.zone")
    named = spelling.format(d=tmp_path.name)
    evil = write(tmp_path, "evil.yaml", customer("evil.example", "e", **zonefile, file=named))
    assert run(["plan", "-f", str(evil)]) == 1
    err = capsys.readouterr().err
    assert (
        f"{evil}:10:3: dns.file: {named} is the zone file {tmp_path}/zones/beta.zone, which "
        f"{tmp_path}/beta.yaml edits too ({tmp_path}/beta.yaml:10:3: dns.file: zones/beta.zone)"
        in err
    ), err
    assert not (tmp_path / "zones" / "beta.zone").exists()  # nothing written


def test_a_run_over_the_directory_reads_each_file_a_few_times_not_once_per_customer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each customer's check needs every file of its directory: 1,000 customers read one
    by one would load 1,000,000 files. A run reads the directory once (reading_once)."""
    import sipctl.schemas.hosting as hosting
    from sipctl.reconciler.gitops.multi import load_all

    write(tmp_path, "pbx1.yaml", HOST)
    for n in range(30):
        write(tmp_path, f"c{n}.yaml", customer(f"c{n}.example", f"c{n}-phones", **rfc2136()))
    reads: list[Path] = []
    real = hosting.read_text

    def counted(path: Path) -> str:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(hosting, "read_text", counted)
    domains = load_all(sorted(tmp_path.glob("*.yaml")), load_spec)
    assert [d.message for d in domains if d.failed] == []
    assert len(reads) <= 10 * 31, len(reads)  # 214 at this writing; read per check: 2,043


def test_a_second_file_of_a_domain_is_refused_alone_and_with_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy of a customer's file (its domain, its zone file) planned alone reaches the
    other's zone; planned with it, the run refuses both up front as claiming the same names
    (nothing of either is read), which names the conflict better."""
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "pbx1.yaml", HOST)
    alpha = customer("alpha.example", "a-phones", provider="zonefile", file="a.zone")
    write(tmp_path, "alpha.example.yaml", alpha)
    write(tmp_path, "alpha-copy.yaml", alpha)
    assert run(["plan", "-f", "alpha-copy.yaml"]) == 1
    refused = capsys.readouterr().err
    assert "alpha-copy.yaml:2:1: domain: alpha.example is also the zone of alpha.example.yaml" in (
        refused
    ), refused
    assert run(["plan", "-f", "."]) == 1
    refused = capsys.readouterr().err
    assert "is also claimed by alpha-copy.yaml; each DNS name belongs to one spec" in refused
    assert "is also the zone of" not in refused, refused


@pytest.mark.parametrize("own_servers", [True, False])
def test_a_zone_holding_the_hosts_server_name_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], own_servers: bool
) -> None:
    """The tryout's attack: the host's servers are named in the hoster's zone infra.example,
    which no file of the directory has. A customer in zone infra.example published the A
    of sip.infra.example (the SRV target of every customer of pbx1) as a host of its
    registry: with its own servers of that name, at its own address (every customer's
    callers went there); with the host's inherited, as its own record, deleted with its
    file. Refused by the customer's, the host's and the directory's plan, naming both
    lines, and nothing is written."""
    write(tmp_path, "pbx1.yaml", INFRA_HOST)
    write(tmp_path, "alpha.yaml", customer("alpha.example", "a", **rfc2136()))
    zonefile = {"provider": "zonefile", "file": "infra.zone", "create_file": True}
    evil_data = customer("evil.infra.example", "e", **zonefile, zone="infra.example")
    if own_servers:
        evil_data["servers"] = [{"host": "sip.infra.example", "ipv4": ["198.51.100.66"]}]
    evil = write(tmp_path, "evil.yaml", evil_data)
    for target in (evil, tmp_path / "pbx1.yaml"):
        assert run(["plan", "-f", str(target)]) == 1
        err = capsys.readouterr().err
        assert (
            f"{evil}:11:3: dns.zone: infra.example holds sip.infra.example, where "
            f"{tmp_path}/pbx1.yaml sends its callers ({tmp_path}/pbx1.yaml:9:3: "
            "servers.0.host: sip.infra.example)" in err
        ), err
    assert run(["plan", "-f", str(tmp_path)]) == 1
    assert "holds sip.infra.example, where" in capsys.readouterr().out
    assert not (tmp_path / "infra.zone").exists()  # nothing written


def test_a_zone_holding_the_hosts_webrtc_host_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """webrtc.host is where every customer's page opens its WebSocket: a customer whose
    zone holds it would publish its address (and could get a certificate for it)."""
    tls = {"cert_file": "/etc/asterisk/keys/pbx1.pem", "key_file": "/etc/asterisk/keys/pbx1.key"}
    host = {
        **HOST,
        "transports": {"udp": {"port": 5060}, "wss": {"port": 8089}},
        "asterisk": {**HOST["asterisk"], "tls": tls},  # type: ignore[dict-item]
        "webrtc": {"host": "wss.infra.example"},
    }
    write(tmp_path, "pbx1.yaml", host)
    evil_data = customer("wss.infra.example", "e", **rfc2136())
    evil_data["servers"] = [{"host": "wss.infra.example", "ipv4": ["198.51.100.66"]}]
    evil = write(tmp_path, "evil.yaml", evil_data)
    assert run(["validate", "-f", str(evil)]) == 1
    err = capsys.readouterr().err
    assert (
        f"{evil}:2:1: domain: wss.infra.example holds wss.infra.example, where "
        f"{tmp_path}/pbx1.yaml sends its callers" in err
    ), err
    assert "webrtc.host: wss.infra.example" in err, err


def test_two_threads_runs_over_their_directories_are_their_own(tmp_path: Path) -> None:
    """A fleet worker runs activities in threads, each loading a hosting unit in a copy of
    its own under ``reading_once``. One thread's run ending must not end another's: the
    copy of a customer's file that a run selected is compared as a claim of that run (not
    refused as another file's zone) until that run ends, whoever else started and ended
    one meanwhile. The interleaving is fixed by events: B opens, A opens, B loads and
    ends, then A loads."""
    import threading

    from sipctl.schemas.hosting_reach import reading_once

    def unit(name: str, domain: str) -> list[Path]:
        directory = tmp_path / name
        directory.mkdir()
        write(directory, "pbx1.yaml", HOST)
        mine = customer(domain, f"{name}-phones", provider="zonefile", file=f"{name}.zone")
        return [write(directory, f"{domain}.yaml", mine), write(directory, "copy.yaml", mine)]

    files = {"a": unit("a", "alpha.example"), "b": unit("b", "beta.example")}
    opened = {name: threading.Event() for name in files}
    b_ended = threading.Event()
    loaded: dict[str, list[str]] = {"a": [], "b": []}
    failed: list[BaseException] = []

    def wait(event: threading.Event) -> None:
        assert event.wait(30), "the other thread never got there"

    def work(name: str) -> None:
        try:
            if name == "a":
                wait(opened["b"])
            with reading_once(files[name]):
                opened[name].set()
                if name == "a":
                    wait(b_ended)
                else:
                    wait(opened["a"])
                for path in files[name]:
                    loaded[name].append(load_spec(path).spec.domain)
            if name == "b":
                b_ended.set()
        except BaseException as exc:  # shown by the test's thread
            failed.append(exc)
            for event in (*opened.values(), b_ended):
                event.set()

    threads = [threading.Thread(target=work, args=(name,)) for name in files]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [str(exc) for exc in failed] == []
    assert loaded == {"a": ["alpha.example"] * 2, "b": ["beta.example"] * 2}
    # outside any run, the copy is another file of the domain: refused, naming both
    with pytest.raises(SpecError, match="is also the zone of"):
        load_spec(files["a"][1])
