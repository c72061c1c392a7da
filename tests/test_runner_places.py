"""Where on the machine running sipctl a spec may have it write (reconciler/runner_places.py).

A ``dir:PATH`` target (any layer, and ``webrtc.publish``) and the paths of a layer whose
target is ``local`` are written by whoever writes the spec: a merge request. Where the run is
strict (a runner profile, or CI), each must resolve, through ``~``, ``..`` and symbolic
links, inside the spec's own directory or a directory the runner profile lists
(``dir_targets``, ``local_paths``), and not inside a ``.git`` directory below that place;
on an admin's own machine the spec is the admin's.

The property test writes a real tree with links and compares the decision with a
containment oracle built on pathlib's ``resolve`` and ``is_relative_to``, and the place the
rule judged with the root the real ``dir:`` transport writes below. The CLI tests run
``sipctl validate`` and ``plan`` as a pipeline would, against ``dir:`` targets (no server).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from fixtures.common import sipctl_in_process
from fixtures.properties import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipctl.providers.base import RunContext
from sipctl.providers.transport.local import DirTransport
from sipctl.reconciler.bindings import Runner
from sipctl.reconciler.runner_places import place_problems, spec_places
from sipctl.schemas.loader import load_spec_text
from sipctl.schemas.profiles import RunnerProfile
from sipctl.schemas.targets import parse_target

DOMAIN = "mysite.test"
PARTS = (
    *(".", "..", "spec", "allowed", "other", "up", "to_other", "back", "to_allowed", "x"),
    *(".git", ".GIT", "git"),  # a checkout's own repository, in any case, and a lookalike
)
SECTIONS = ("asterisk", "firewall", "fail2ban", "publish")


def spec_text(directory: str, section: str) -> str:
    """A spec whose ``section`` has the target ``dir:directory``."""
    target = f"dir:{directory}"
    quoted = yaml.safe_dump(target).splitlines()[0]
    head = f"version: 1\ndomain: {DOMAIN}\nusers: {{director: 105}}\n"
    if section == "publish":
        return (
            head + f"servers: [{{host: pbx.{DOMAIN}, ipv4: [192.0.2.1]}}]\n"
            "transports: {udp: {port: 5060}, wss: {port: 8089}}\n"
            "asterisk:\n  target: ssh://pbx.mysite.test\n"
            "  tls: {cert_file: /etc/a.pem, key_file: /etc/a.key}\n"
            f"webrtc:\n  publish: {yaml.safe_dump(target + ':/call').splitlines()[0]}\n"
        )
    return head + f"{section}:\n  target: {quoted}\n"


def tree(root: Path) -> Path:
    """spec/ (the spec's directory), allowed/ (the profile's dir_targets and local_paths,
    relative to the profile and named through a link), other/, home/ (``~``); links between them. The
    runner profile's path."""
    for name in ("spec", "spec/.git", "allowed", "other", "home"):
        (root / name).mkdir()
    (root / "spec" / "up").symlink_to("..")
    (root / "spec" / "to_other").symlink_to(root / "other")
    (root / "allowed" / "back").symlink_to("../spec")
    (root / "other" / "to_allowed").symlink_to("../allowed")
    (root / "home" / "to_allowed").symlink_to("../allowed")
    (root / "via").symlink_to(root / "allowed")
    (root / "admin").mkdir()
    profile = root / "admin" / "runner-profile.yaml"
    profile.write_text(
        "version: 1\ndir_targets: [../via]\nlocal_paths: [../via]\n"
        "local_layers: [asterisk, firewall, fail2ban, webrtc]\n"
    )
    return profile


def oracle(root: Path, written: str) -> bool:
    """Allowed: the directory, resolved by pathlib (``~`` is ``home/``), is inside spec/ or
    allowed/, and no part of it below that place is named .git in any case."""
    path = Path(written.replace("~", str(root / "home"), 1) if written[:1] == "~" else written)
    resolved = (root / "spec" / path).resolve()
    return any(
        resolved.is_relative_to(place)
        and ".git" not in (p.lower() for p in resolved.relative_to(place).parts)
        for place in ((root / d).resolve() for d in ("spec", "allowed"))
    )


def in_git(root: Path, path: str) -> bool:
    """``path`` (resolved) is inside spec/ or allowed/, through a .git below it."""
    return any(
        Path(path).is_relative_to(place) and not oracle(root, path)
        for place in ((root / d).resolve() for d in ("spec", "allowed"))
    )


@st.composite
def written_dirs(draw: st.DrawFn, root: Path) -> str:
    parts = draw(st.lists(st.sampled_from(PARTS), min_size=1, max_size=5))
    start = draw(st.sampled_from(["", f"{root}/", "~/"]))
    return start + "/".join(parts)


@pytest.fixture(scope="module")
def places_tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("places")
    return root, tree(root)


@settings(
    max_examples=examples(300),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_a_dir_target_is_allowed_exactly_inside_its_places(
    places_tree: tuple[Path, Path], data: st.DataObject
) -> None:
    """For every layer's ``dir:`` target: refused exactly when the oracle says the
    directory is outside the spec's directory and the profile's ``dir_targets``; the
    refusal names the spec's line, key, the resolved path and the line to add. The place
    judged is where the real ``dir:`` transport writes."""
    root, profile_path = places_tree
    written = data.draw(written_dirs(root))
    section = data.draw(st.sampled_from(SECTIONS))
    loaded = load_spec_text(
        spec_text(written, section), str(root / "spec" / "s.yaml"), root / "spec"
    )
    profile = RunnerProfile.model_validate(yaml.safe_load(profile_path.read_text()))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(root / "home"))
        problems = place_problems(loaded, Runner(True, profile, str(profile_path)))
        (place,) = spec_places(loaded)
        transport = DirTransport(parse_target(f"dir:{written}"), RunContext(base_dir=root / "spec"))
        assert os.path.realpath(transport.root) == place.path
    if oracle(root, written):
        assert problems == [], problems
        return
    (problem,) = problems
    key = "webrtc.publish" if section == "publish" else f"{section}.target"
    line = 10 if section == "publish" else 5
    assert problem.startswith(f"{root}/spec/s.yaml:{line}:3: {key}: "), problem
    assert place.path in problem and f'dir_targets: ["{place.path}"]' in problem, problem
    if in_git(root, place.path):
        assert ", inside the git directory " in problem, problem
    else:
        assert f"outside the spec's directory {root / 'spec'}" in problem, problem


LOCAL_PARTS = tuple(p for p in PARTS if p not in (".", ".."))  # a host path has neither


@settings(
    max_examples=examples(200),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_a_local_layers_path_is_allowed_exactly_inside_its_places(
    places_tree: tuple[Path, Path], data: st.DataObject
) -> None:
    """A ``local`` layer's path (``fail2ban.config_dir`` under the tree, through its
    links): refused exactly when the oracle says it is outside the spec's directory and
    the profile's ``local_paths``, with the resolved directory to list."""
    root, profile_path = places_tree
    parts = data.draw(st.lists(st.sampled_from(LOCAL_PARTS), min_size=1, max_size=5))
    written = f"{root}/{'/'.join(parts)}"
    text = f"version: 1\ndomain: {DOMAIN}\nfail2ban:\n  target: local\n  config_dir: {written}\n"
    text += f"  logpath: {root}/spec/messages.log\n"
    loaded = load_spec_text(text, str(root / "spec" / "s.yaml"), root / "spec")
    profile = RunnerProfile.model_validate(yaml.safe_load(profile_path.read_text()))
    problems = place_problems(loaded, Runner(True, profile, str(profile_path)))
    if oracle(root, written):
        assert problems == [], problems
        return
    (problem,) = problems
    resolved = str(Path(written).resolve())
    assert problem.startswith(f"{root}/spec/s.yaml:5:3: fail2ban.config_dir: {written}"), problem
    assert f'local_paths: ["{resolved}"]' in problem, problem
    git = ", inside the git directory " in problem
    assert git == in_git(root, resolved), problem


def test_an_admins_own_run_is_not_strict(tmp_path: Path) -> None:
    """No runner profile and no CI: a spec's dir: target and local paths are its own."""
    loaded = load_spec_text(
        spec_text("/", "asterisk") + "fail2ban: {target: local}\n", "s.yaml", tmp_path
    )
    assert len(spec_places(loaded)) == 3  # dir:/, /etc/fail2ban, its log's directory
    assert place_problems(loaded, Runner(False, None, "")) == []


# --- as a pipeline runs it -------------------------------------------------------------


def _checkout(tmp_path: Path, spec: str) -> tuple[Path, Path]:
    specs = tmp_path / "checkout"
    specs.mkdir()
    (specs / "sipctl.yaml").write_text(spec)
    profile = tmp_path / "admin" / "runner-profile.yaml"
    profile.parent.mkdir()
    profile.write_text("version: 1\n")
    return specs / "sipctl.yaml", profile


FIREWALL = "firewall: {{target: '{target}', persist: /etc/iptables/rules.v4, extra: [tcp/443]}}\n"


def test_a_merge_request_cannot_point_a_dir_target_out_of_its_checkout(tmp_path: Path) -> None:
    """Under a runner profile, ``dir:../elsewhere`` is refused by validate and by plan
    (exit 3) before anything is written there; once the admin lists it, plan runs; a
    ``dir:`` inside the checkout needs nothing; without a profile or CI the spec's own
    place is used."""
    head = f"version: 1\ndomain: {DOMAIN}\n"
    spec, profile = _checkout(tmp_path, head + FIREWALL.format(target="dir:../elsewhere"))
    elsewhere = tmp_path / "elsewhere"
    env = {**os.environ, "SIPCTL_PROFILE": str(profile)}
    for command in ("validate", "plan"):
        done = sipctl_in_process(command, "-f", str(spec), env=env)
        assert done.returncode == 3, done.stdout + done.stderr
        assert (
            f"{spec}:3:12: firewall.target: dir:../elsewhere is {elsewhere} (every file of "
            "the layer is written below it), outside the spec's directory "
            f"{spec.parent} (the runner profile {profile} lists no dir_targets); nothing was "
            "read or written" in done.stderr
        ), done.stderr
        assert f'    dir_targets: ["{elsewhere}"]' in done.stderr, done.stderr
        assert not elsewhere.exists()
    ci = {k: v for k, v in os.environ.items() if k != "SIPCTL_PROFILE"} | {"CI": "true"}
    done = sipctl_in_process("validate", "-f", str(spec), env=ci)
    assert done.returncode == 3 and "(no runner profile lists dir_targets)" in done.stderr
    done = sipctl_in_process("plan", "-f", str(spec))  # an admin's own machine
    assert done.returncode == 0, done.stdout + done.stderr
    profile.write_text("version: 1\ndir_targets: [../elsewhere]\n")  # from the profile's dir
    done = sipctl_in_process("plan", "-f", str(spec), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    spec.write_text(head + FIREWALL.format(target="dir:state/pbx"))
    profile.write_text("version: 1\n")
    done = sipctl_in_process("plan", "-f", str(spec), env=env)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_link_in_the_checkout_is_followed_to_where_it_points(tmp_path: Path) -> None:
    """A link committed beside the spec (``web -> /etc``) is where it points: a ``dir:``
    publish target through it is outside the checkout."""
    spec, _profile = _checkout(tmp_path, spec_text("web", "publish"))
    (spec.parent / "web").symlink_to("/etc")
    done = sipctl_in_process("validate", "-f", str(spec), env={**os.environ, "CI": "true"})
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"{spec}:10:3: webrtc.publish: dir:web:/call is /etc (" in done.stderr, done.stderr
    assert '    dir_targets: ["/etc"]' in done.stderr


def test_a_local_layers_paths_need_the_profiles_local_paths(tmp_path: Path) -> None:
    """``target: local`` under a runner profile: each path the layer names on this machine
    is refused until ``local_paths`` holds it (a file's directory is what to list); a
    link on the way is followed."""
    web = tmp_path / "www"
    web.mkdir()
    (tmp_path / "www-link").symlink_to(web)
    spec_body = (
        f"version: 1\ndomain: {DOMAIN}\nusers: {{director: 105}}\n"
        f"servers: [{{host: pbx.{DOMAIN}, ipv4: [192.0.2.1]}}]\n"
        "transports: {udp: {port: 5060}, wss: {port: 8089}}\n"
        "asterisk:\n  target: local\n  config_dir: /etc/asterisk\n"
        "  tls: {cert_file: /etc/asterisk/keys/a.pem, key_file: /etc/asterisk/keys/a.key,\n"
        "        ca_list_file: /etc/ssl/certs/clients.pem}\n"
        "fail2ban: {logpath: /var/log/asterisk/messages.log}\n"
        f"webrtc: {{publish: 'local:{tmp_path}/www-link/call'}}\n"
    )
    spec, profile = _checkout(tmp_path, spec_body)
    env = {**os.environ, "SIPCTL_PROFILE": str(profile)}
    done = sipctl_in_process("validate", "-f", str(spec), env=env)
    assert done.returncode == 3, done.stdout + done.stderr
    err = done.stderr
    assert f"{spec}: 10 uses of this machine the runner profile does not allow" in err, err
    assert err.count("    local_layers: [asterisk, fail2ban, webrtc]\n") == 3, err
    profile.write_text("version: 1\nlocal_layers: [asterisk, fail2ban, webrtc]\n")
    done = sipctl_in_process("validate", "-f", str(spec), env=env)
    assert done.returncode == 3, done.stdout + done.stderr
    err = done.stderr
    assert "local_layers:" not in err, err
    assert f"{spec}: 7 uses of this machine the runner profile does not allow" in err, err
    assert (
        f"{spec}:8:3: asterisk.config_dir: /etc/asterisk (target local: on this machine), " in err
    ), err
    for line in (
        'local_paths: ["/etc/asterisk"]',  # config_dir
        'local_paths: ["/etc/asterisk/keys"]',  # the certificate's and the key's directory
        'local_paths: ["/etc/ssl/certs"]',  # the CA list Asterisk reads
        'local_paths: ["/etc/fail2ban"]',
        'local_paths: ["/var/log/asterisk"]',
        f'local_paths: ["{web}/call"]',  # the link resolved
    ):
        assert line in err, err
    profile.write_text(
        "version: 1\nlocal_paths: [/etc/asterisk, /etc/ssl/certs, /etc/fail2ban, /var/log/asterisk, "
        f"{tmp_path}/www]\nlocal_layers: [asterisk, fail2ban, webrtc]\n"
    )
    done = sipctl_in_process("validate", "-f", str(spec), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
