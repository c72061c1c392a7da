"""Where a zone file and the files it $INCLUDEs may be (providers/dns/zone_places.py).

``dns.file`` is written by whoever writes the spec (a merge request, a hosting customer),
and apply rewrites that file. So it must resolve inside the spec's own directory or a
directory the runner profile's ``zone_files`` lists; an ``$INCLUDE`` obeys the same places,
is read through sipctl's one read of a local file (regular, at most MAX_READ_BYTES) and is
handed to dnspython as a private copy.

The property tests write real trees with symbolic links and compare the decision with a
containment oracle built on pathlib's ``resolve`` and ``is_relative_to``, through the real
loader and the real provider; and the copies with dnspython's own reading of the same
zone, ``$INCLUDE`` and all.
"""

from __future__ import annotations

import os
from pathlib import Path

import dns.exception
import dns.zone
import pytest
import yaml
from fixtures.properties import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipctl.cli import run
from sipctl.errors import ProviderError, RefusedError
from sipctl.providers.base import RunContext
from sipctl.providers.dns.zone_places import check_zone_file
from sipctl.providers.dns.zonefile import ZoneFileProvider
from sipctl.reconciler.render.dns import render_dns
from sipctl.schemas.loader import load_spec_text

ZONE = "mysite.test"
SOA = (
    f"$ORIGIN {ZONE}.\n@ 3600 IN SOA ns1 hostmaster 1 3600 600 86400 300\n@ 3600 IN NS ns1\n"
    "ns1 3600 IN A 127.0.0.1\n"
)
PARTS = (".", "..", "spec", "allowed", "other", "up", "to_other", "back", "to_allowed")
FILES = ("x.zone", "evil.zone", "missing.zone")


def spec_text(file: str) -> str:
    return (
        f"version: 1\ndomain: {ZONE}\nservers: [{{host: asterisk.{ZONE}, ipv4: [203.0.113.10]}}]\n"
        f"dns:\n  provider: zonefile\n  file: {yaml.safe_dump(file).splitlines()[0]}\n"
    )


def tree(root: Path) -> dict[str, str]:
    """spec/ (the spec's directory), allowed/ (the profile's zone_files, named through a
    link), other/; links between them; a zone and an included file in each. The env of a
    run under that profile."""
    for name in ("spec", "allowed", "other"):
        (root / name).mkdir()
        (root / name / "x.zone").write_text(SOA)
        (root / name / "inc.zone").write_text("included 3600 IN A 192.0.2.7\n")
    (root / "spec" / "up").symlink_to("..")
    (root / "spec" / "to_other").symlink_to(root / "other")
    (root / "allowed" / "back").symlink_to("../spec")
    (root / "other" / "to_allowed").symlink_to("../allowed")
    (root / "spec" / "evil.zone").symlink_to("../other/x.zone")
    (root / "allowed" / "evil.zone").symlink_to(root / "spec" / "x.zone")
    (root / "via").symlink_to(root / "allowed")
    profile = root / "runner-profile.yaml"
    profile.write_text(f"version: 1\nzone_files: [{root / 'via'}]\n")
    return {**os.environ, "SIPCTL_PROFILE": str(profile)}


def oracle(root: Path, written: str) -> bool:
    """Allowed: the path, resolved by pathlib, is inside spec/ or allowed/."""
    resolved = (root / "spec" / written).resolve()
    return any(resolved.is_relative_to((root / d).resolve()) for d in ("spec", "allowed"))


@st.composite
def written_paths(draw: st.DrawFn, root: Path) -> str:
    parts = draw(st.lists(st.sampled_from(PARTS), max_size=5))
    path = "/".join([*parts, draw(st.sampled_from(FILES))])
    return f"{root}/{path}" if draw(st.booleans()) else path


@pytest.fixture(scope="module")
def places_tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("places")
    return root, tree(root)


@settings(
    max_examples=examples(300),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_the_zone_files_place_agrees_with_resolved_containment(
    places_tree: tuple[Path, dict[str, str]], data: st.DataObject
) -> None:
    root, env = places_tree
    written = data.draw(written_paths(root))
    loaded = load_spec_text(spec_text(written), str(root / "spec" / "s.yaml"), root / "spec")
    try:
        check_zone_file(loaded, env)
    except RefusedError as exc:
        assert not oracle(root, written), exc.message
        assert exc.message.startswith(f"{root}/spec/s.yaml:6:3: dns.file: ")
        assert str((root / "spec" / written).resolve()) in exc.message
        assert "zone_files" in exc.message and exc.hint and "sipctl docs security" in exc.hint
    else:
        assert oracle(root, written), written
    try:  # the provider decides on the path it would edit, resolved its own way: the same
        ZoneFileProvider(loaded, RunContext(base_dir=root / "spec", env=env))
    except RefusedError:
        assert not oracle(root, written), written
    else:
        assert oracle(root, written), written


@settings(
    max_examples=examples(100),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_an_include_obeys_the_same_places(
    places_tree: tuple[Path, dict[str, str]], data: st.DataObject
) -> None:
    """The zone (beside the spec) $INCLUDEs a drawn path: refused before it is opened
    exactly when the oracle says it is outside; read otherwise (a missing file is an error
    naming it, never a traceback)."""
    root, env = places_tree
    written = data.draw(written_paths(root)).replace("x.zone", "inc.zone")
    zone = root / "spec" / "with-include.zone"
    zone.write_text(f'{SOA}$INCLUDE "{written}"\n')
    loaded = load_spec_text(
        spec_text("with-include.zone"), str(root / "spec" / "s.yaml"), root / "spec"
    )
    provider = ZoneFileProvider(loaded, RunContext(base_dir=root / "spec", env=env))
    try:
        provider.read(render_dns(loaded.spec))
    except RefusedError as exc:
        assert not oracle(root, written), exc.message
        assert f"{zone}:5: $INCLUDE {written}" in exc.message
    except ProviderError as exc:
        assert oracle(root, written), exc.message
        assert "cannot read it" in exc.message or "not a valid zone" in exc.message, exc.message
    else:
        assert oracle(root, written), written


# --- the copies change nothing dnspython reads -----------------------------------------

LINES = (
    "$INCLUDE inc.zone",
    "$include inc.zone sub",
    '$INCLUDE "inc.zone" ; a comment',
    "$INCLUDE nested.zone",
    "; $INCLUDE /etc/shadow",
    " $INCLUDE inc.zone",
    'txt IN TXT ( "a"\n$INCLUDE inc.zone )',
    'txt2 IN TXT "$INCLUDE inc.zone"',
    "$INCLUDE inc.zone other.mysite.test.",
    '$INCLUDE "in c.zone"',
    '$INCLUDE "in c.zone"sub',
    'x IN TXT "a;b" ; $INCLUDE inc.zone',
    "$GENERATE 1-2 g$ A 192.0.2.$",
    "$INCLUDE",
    "$TTL 300",
    "$ORIGIN sub.mysite.test.",
    "a IN A 192.0.2.1",
    "b 60 IN A 192.0.2.2",
    "  IN A 192.0.2.3",
)


@settings(max_examples=examples(200), deadline=None)
@given(
    lines=st.lists(st.sampled_from(LINES), max_size=8),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_the_copies_read_as_dnspython_reads_the_files(lines: list[str], newline: str) -> None:
    """A zone of drawn lines (directives at the start of an entry or not, in a comment, in
    parentheses, in quotes; LF or CRLF) parses to the same records through sipctl's copies
    as through dnspython opening the files itself, or both fail; an $INCLUDE spread over
    lines by parentheses is refused in words."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "inc.zone").write_text("inc 3600 IN A 192.0.2.8\n")
        (base / "nested.zone").write_text("nest IN A 192.0.2.9\n$INCLUDE inc.zone\n")
        (base / "in c.zone").write_text("spaced 60 IN A 192.0.2.10\n")
        text = SOA + newline.join(lines) + newline
        (base / "z.zone").write_text(text, newline="")
        loaded = load_spec_text(spec_text("z.zone"), str(base / "s.yaml"), base)
        provider = ZoneFileProvider(loaded, RunContext(base_dir=base, env={}))
        cwd = Path.cwd()
        os.chdir(base)  # dnspython opens a relative $INCLUDE from here
        try:
            theirs = dns.zone.from_text(text, ZONE, relativize=False, allow_include=True)
        except (dns.exception.DNSException, OSError):
            theirs = None
        finally:
            os.chdir(cwd)
        try:
            ours = provider._parse(text)
        except ProviderError as exc:
            assert theirs is None or "one line" in exc.message, exc.message
            return
        assert theirs is not None and ours.to_text() == theirs.to_text()


# --- what a user sees ---------------------------------------------------------------------


def test_validate_and_plan_refuse_a_zone_file_elsewhere_before_reading_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SIPCTL_PROFILE", raising=False)
    (tmp_path / "repo").mkdir()
    (tmp_path / "bind").mkdir()
    fifo = tmp_path / "bind" / "db.mysite"
    os.mkfifo(fifo)  # a read would hang: nothing is read
    spec = tmp_path / "repo" / "sipctl.yaml"
    spec.write_text(spec_text(str(fifo)))
    for command in ("validate", "plan"):
        assert run([command, "-f", str(spec)]) == 3
        err = capsys.readouterr().err
        assert (
            f"{spec}:6:3: dns.file: {fifo}, outside the spec's directory {tmp_path}/repo (no "
            "runner profile lists zone_files): move the zone file into the spec's directory "
            "and name it relative to the spec, or have the admin allow its directory in the "
            f"runner profile (zone_files: [{tmp_path}/bind])"
        ) in err, err
        assert "sipctl docs security" in err
    profile = tmp_path / "profile.yaml"
    profile.write_text(f"version: 1\nzone_files: [{tmp_path}/bind]\n")
    fifo.unlink()
    fifo.write_text(SOA)
    monkeypatch.setenv("SIPCTL_PROFILE", str(profile))
    assert run(["validate", "-f", str(spec)]) == 0


def test_a_relative_zone_file_beside_the_spec_needs_no_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SIPCTL_PROFILE", raising=False)
    (tmp_path / "zones").mkdir()
    (tmp_path / "zones" / "mysite.zone").write_text(SOA)
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(spec_text("zones/mysite.zone"))
    assert run(["plan", "-f", str(spec)]) == 0


def test_an_include_that_is_a_fifo_or_too_large_is_refused_without_hanging(
    tmp_path: Path,
) -> None:
    from sipctl.providers.bookkeeping import MAX_READ_BYTES

    fifo = tmp_path / "fifo.inc"
    os.mkfifo(fifo)
    big = tmp_path / "big.inc"
    with big.open("wb") as handle:
        handle.truncate(MAX_READ_BYTES + 1)  # sparse: no disk used
    loaded = load_spec_text(spec_text("z.zone"), str(tmp_path / "s.yaml"), tmp_path)
    for name, said in ((fifo, "not a regular file"), (big, "more than the 64 MiB sipctl reads")):
        (tmp_path / "z.zone").write_text(f"{SOA}$INCLUDE {name.name}\n")
        provider = ZoneFileProvider(loaded, RunContext(base_dir=tmp_path, env={}))
        with pytest.raises(ProviderError, match=said) as raised:
            provider.read(render_dns(loaded.spec))
        assert raised.value.message.startswith(f"{tmp_path}/z.zone:5: $INCLUDE {name}")


def test_a_hosting_customer_moved_keeps_its_zone_file_through_the_profile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A customer file moved to another host's directory, naming its zone file where it
    was: refused until the admin lists that directory in the runner profile."""
    monkeypatch.delenv("SIPCTL_PROFILE", raising=False)
    old, new = tmp_path / "hoster1", tmp_path / "hoster2"
    for directory, name in ((old, "pbx1"), (new, "pbx2")):
        directory.mkdir()
        host = {
            "version": 1,
            "domain": f"{name}.hoster.example",
            "hosting": {"name": name},
            "transports": {"udp": {"port": 5060}},
            "servers": [{"host": f"{name}.hoster.example", "ipv4": ["203.0.113.10"]}],
            "asterisk": {"target": "dir:state"},
        }
        (directory / f"{name}.yaml").write_text(yaml.safe_dump(host))
    (old / "zones").mkdir()
    (old / "zones" / "alpha.example.zone").write_text(SOA.replace(ZONE, "alpha.example"))
    alpha = new / "alpha.example.yaml"
    alpha.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "domain": "alpha.example",
                "host": "pbx2",
                "local_context": "alpha-phones",
                "users": {"director": 105},
                "dns": {"provider": "zonefile", "file": "../hoster1/zones/alpha.example.zone"},
            }
        )
    )
    assert run(["validate", "-f", str(alpha)]) == 3
    err = capsys.readouterr().err
    assert f"is {old}/zones/alpha.example.zone, outside the spec's directory {new}" in err, err
    profile = tmp_path / "profile.yaml"
    profile.write_text(f"version: 1\nzone_files: [{old}/zones]\n")
    monkeypatch.setenv("SIPCTL_PROFILE", str(profile))
    assert run(["validate", "-f", str(alpha)]) == 0, capsys.readouterr().err


def test_a_relative_directory_of_the_profile_is_taken_from_the_profiles_directory(
    tmp_path: Path,
) -> None:
    (tmp_path / "ci").mkdir()
    (tmp_path / "ci" / "zones").mkdir()
    profile = tmp_path / "ci" / "profile.yaml"
    profile.write_text("version: 1\nzone_files: [zones]\n")
    (tmp_path / "specs").mkdir()
    spec = tmp_path / "specs" / "s.yaml"
    loaded = load_spec_text(spec_text("../ci/zones/x.zone"), str(spec), spec.parent)
    places = check_zone_file(loaded, {"SIPCTL_PROFILE": str(profile)})
    assert places.allowed == (str(tmp_path / "ci" / "zones"),)


def test_an_include_loop_or_a_nest_too_deep_is_refused_in_words(tmp_path: Path) -> None:
    loaded = load_spec_text(spec_text("z.zone"), str(tmp_path / "s.yaml"), tmp_path)
    (tmp_path / "z.zone").write_text(f"{SOA}$INCLUDE loop.inc\n")
    (tmp_path / "loop.inc").write_text("a IN A 192.0.2.1\n$INCLUDE loop.inc\n")
    provider = ZoneFileProvider(loaded, RunContext(base_dir=tmp_path, env={}))
    with pytest.raises(ProviderError, match="include themselves") as raised:
        provider.read(render_dns(loaded.spec))
    # the line of the included file that includes, by its own name (not sipctl's copy)
    assert raised.value.message.startswith(f"{tmp_path}/loop.inc:2: $INCLUDE ")


def test_a_hosting_customer_naming_another_directorys_zone_is_refused_and_it_is_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The brief's case: the rule of a hosting directory (no two files edit one zone file)
    cannot see a zone file of another directory; the place rule refuses it before it is
    read, the run over the directory plans the other files (and, one file refused, applies
    none), and nothing of the victim's zone changes."""
    monkeypatch.delenv("SIPCTL_PROFILE", raising=False)
    victim = tmp_path / "other-hoster" / "state" / "victim.example.zone"
    victim.parent.mkdir(parents=True)
    victim.write_text(SOA.replace(ZONE, "victim.example"))
    kept = victim.read_text()
    hoster = tmp_path / "hoster"
    hoster.mkdir()
    host = {
        "version": 1,
        "domain": "pbx1.hoster.example",
        "hosting": {"name": "pbx1"},
        "transports": {"udp": {"port": 5060}},
        "servers": [{"host": "pbx1.hoster.example", "ipv4": ["203.0.113.10"]}],
        "asterisk": {"target": "dir:state/pbx1"},
    }
    (hoster / "pbx1.yaml").write_text(yaml.safe_dump(host))
    for domain, file in (("evil.example", str(victim)), ("good.example", "state/good.zone")):
        customer = {
            "version": 1,
            "domain": domain,
            "host": "pbx1",
            "local_context": f"{domain.split('.')[0]}-phones",
            "users": {"director": 105},
            "dns": {"provider": "zonefile", "file": file, "create_file": True},
        }
        (hoster / f"{domain}.yaml").write_text(yaml.safe_dump(customer))
    assert run(["apply", "-f", str(hoster), "--auto-approve", "--no-verify"]) != 0
    said = capsys.readouterr()
    shown = said.out + said.err
    assert f"{hoster}/evil.example.yaml:" in shown, shown
    assert f"dns.file: {victim}, outside the spec's directory {hoster}" in shown, shown
    assert "good.example" in shown and "not applied" in shown, "planned, then held back"
    assert victim.read_text() == kept, "the other directory's zone is untouched"
    assert not (victim.parent / "victim.example.zone.sipctl.bak").exists()
