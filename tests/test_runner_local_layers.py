"""A spec may make the runner itself a layer's target only with the admin's consent
(reconciler/runner_places.py, ``local_layer_problems``).

``target: local`` (asterisk, firewall, fail2ban) and a ``local:`` ``webrtc.publish`` make
sipctl run this machine's programs and show their answers in a merge request's plan, and
make apply rewrite this machine's firewall, even when the layer names no path
(``firewall: {target: local, persist: null}``). Where the run is strict (a runner profile,
or CI) each such layer must be one of the profile's ``local_layers``; on an admin's own
machine nothing changes.

The property test draws every combination of sections, targets (own, inherited from
asterisk, the default) and consented layers, and compares the refusals with an oracle that
derives each layer's target from the spec's text and with the target the host lock takes
for the same layer (reconciler/gitops/locking.py, a second reader of the same rule). The
CLI tests run sipctl as a pipeline does, the firewall's plan against the real iptables
inside a network namespace the test made.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from fixtures.common import run_sipctl
from fixtures.netns import Netns
from fixtures.properties import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from sipctl.reconciler.bindings import Runner
from sipctl.reconciler.gitops.locking import host_places
from sipctl.reconciler.runner_places import layer_targets, local_layer_problems, place_problems
from sipctl.schemas.loader import load_spec_text
from sipctl.schemas.profiles import LOCAL_LAYERS, RunnerProfile

DOMAIN = "mysite.test"
SOURCE = "/srv/checkout/sipctl.yaml"
ABSENT = "absent"  # no such section
TARGETS = (None, "local", "dir:state/pbx", f"ssh://root@pbx.{DOMAIN}")  # None: no target key
PUBLISHES = (None, "local:/var/www/html/call", "dir:web:/call", f"ssh://pbx.{DOMAIN}:/var/www")
_EXTRA = {
    "asterisk": "  config_dir: /etc/asterisk\n",
    "firewall": "  persist: null\n",
    "fail2ban": "  logpath: /var/log/asterisk/messages.log\n",
}


def spec_text(sections: dict[str, str | None], publish: str | None) -> str:
    """A spec of the drawn sections (block YAML, one key a line), each with its target when
    one is drawn; ``webrtc.publish`` (with what a page needs) when drawn."""
    text = f"version: 1\ndomain: {DOMAIN}\nusers: {{director: 105}}\n"
    if publish is not None:
        text += f"servers: [{{host: pbx.{DOMAIN}, ipv4: [192.0.2.1]}}]\n"
        text += "transports: {udp: {port: 5060}, wss: {port: 8089}}\n"
    for name, target in sections.items():
        text += f"{name}:\n"
        if target is not None:
            text += f"  target: {yaml.safe_dump(target).splitlines()[0]}\n"
        text += _EXTRA[name]
        if name == "asterisk" and publish is not None:
            text += "  tls: {cert_file: /etc/a.pem, key_file: /etc/a.key}\n"
    if publish is not None:
        text += f"webrtc:\n  publish: {yaml.safe_dump(publish).splitlines()[0]}\n"
    return text


def line_of(text: str, wanted: str) -> int:
    return text.splitlines().index(wanted) + 1


def expected(
    text: str, sections: dict[str, str | None], publish: str | None
) -> dict[str, tuple[str, str]]:
    """Each layer whose target is this machine -> (file:line:col, key) its refusal names:
    the layer's own target, else asterisk's (written, or its section for the default),
    else its own section (the default, local)."""
    found: dict[str, tuple[str, str]] = {}

    def at(section: str) -> tuple[str, str, str]:  # (target, line:col, key)
        own = sections[section]
        if own is not None:
            line = text.splitlines().index(f"{section}:") + 2  # target is its first key
            return own, f"{line}:3", f"{section}.target"
        return "local", f"{line_of(text, section + ':')}:1", f"{section}.target"

    for layer in ("asterisk", "firewall", "fail2ban"):
        if layer not in sections:
            continue
        own = layer == "asterisk" or sections[layer] is not None or "asterisk" not in sections
        target, place, key = at(layer if own else "asterisk")
        if target == "local":
            found[layer] = (f"{SOURCE}:{place}", key)
    if publish is not None and publish.startswith("local:"):
        found["webrtc"] = (f"{SOURCE}:{line_of(text, 'webrtc:') + 1}:3", "webrtc.publish")
    return found


section_targets = st.sampled_from((ABSENT, *TARGETS))


@settings(max_examples=examples(400), deadline=None)
@given(
    asterisk=section_targets,
    firewall=section_targets,
    fail2ban=section_targets,
    publish=st.sampled_from(PUBLISHES),
    allowed=st.lists(st.sampled_from(LOCAL_LAYERS), unique=True),
)
def test_a_layer_on_this_machine_needs_the_profiles_consent(
    asterisk: str | None,
    firewall: str | None,
    fail2ban: str | None,
    publish: str | None,
    allowed: list[str],
) -> None:
    """Refused exactly the layers whose target is this machine and that ``local_layers``
    does not list, each naming the key that makes it local (file:line:col) and the whole
    ``local_layers`` line to paste (what the profile lists and what is missing, in one
    order); none on an admin's own machine; every such layer without a profile in CI."""
    drawn = {"asterisk": asterisk, "firewall": firewall, "fail2ban": fail2ban}
    sections = {name: target for name, target in drawn.items() if target != ABSENT}
    publish = publish if "asterisk" in sections else None  # a page needs asterisk's TLS
    text = spec_text(sections, publish)
    loaded = load_spec_text(text, SOURCE, Path("/srv/checkout"))
    want = expected(text, sections, publish)

    # the lock's reader of a layer's target agrees on which layers are this machine's
    locked = {p.layer: p.target == "local" for p in host_places(loaded)}
    targets = {t.layer: t.target == "local" for t in layer_targets(loaded.spec)}
    assert {k: v for k, v in targets.items() if k != "webrtc"} == locked
    assert {layer for layer, local in targets.items() if local} == set(want)

    profile = RunnerProfile(
        version=1, local_layers=tuple(allowed), local_paths=("/",), dir_targets=("/",)
    )
    problems = local_layer_problems(loaded, Runner(True, profile, "/admin/p.yaml"))
    refused = [layer for layer in LOCAL_LAYERS if layer in want and layer not in allowed]
    assert len(problems) == len(refused), problems
    paste = [layer for layer in LOCAL_LAYERS if layer in allowed or layer in refused]
    for layer, problem in zip(refused, problems, strict=True):
        where, key = want[layer]
        assert problem.startswith(f"{where}: {key}: "), (problem, text)
        assert f"the {layer} layer would be this machine (" in problem, problem
        assert problem.endswith(f"\n    local_layers: [{', '.join(paste)}]"), problem
    # the places of those layers are the profile's: the consent alone decides here
    assert place_problems(loaded, Runner(True, profile, "/admin/p.yaml")) == problems

    assert local_layer_problems(loaded, Runner(False, None, "")) == []
    ci = Runner(True, None, "no runner profile (SIPCTL_PROFILE) and CI is set")
    assert len(local_layer_problems(loaded, ci)) == len(want)


# --- as a pipeline runs it -------------------------------------------------------------

FIREWALL_ONLY = f"version: 1\ndomain: {DOMAIN}\nfirewall: {{target: local, persist: null}}\n"


def _env(**extra: str) -> dict[str, str]:
    """This process's environment without a runner profile or CI, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "SIPCTL_PROFILE")}
    return {**env, **extra, "NO_COLOR": "1"}


def _in(netns: Netns, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``sipctl ARGS`` with every program it starts inside the test's namespace."""
    argv = netns.argv(sys.executable, "-m", "sipctl", *args)
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)


def test_a_merge_request_cannot_make_the_runner_its_firewall(netns: Netns, tmp_path: Path) -> None:
    """``firewall: {target: local, persist: null}`` names no path, yet would show the
    runner's firewall in the merge request's plan: in CI and under a profile without
    ``local_layers`` validate and plan refuse it (exit 3) before iptables is read; with
    ``local_layers: [firewall]`` the plan reads the (namespace's) firewall; on an admin's
    own machine it plans as before."""
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(FIREWALL_ONLY)
    profile = tmp_path / "runner-profile.yaml"
    profile.write_text("version: 1\nlocal_paths: [/]\n")  # places are not consent
    marker = "-A INPUT -s 192.0.2.77/32 -j ACCEPT"  # the runner's own rule
    netns.run("iptables", "-A", "INPUT", "-s", "192.0.2.77", "-j", "ACCEPT")
    for env in (_env(CI="true"), _env(SIPCTL_PROFILE=str(profile))):
        for command in ("validate", "plan"):
            done = _in(netns, env, command, "-f", str(spec))
            assert done.returncode == 3, done.stdout + done.stderr
            assert f"{spec}:3:12: firewall.target: local: the firewall layer would be this " in (
                done.stderr
            ), done.stderr
            assert "nothing was read or run" in done.stderr
            assert "\n    local_layers: [firewall]\n" in done.stderr, done.stderr
            assert "firewall" not in done.stdout and "Plan:" not in done.stdout, done.stdout
    profile.write_text("version: 1\nlocal_layers: [firewall]\n")
    for env in (_env(SIPCTL_PROFILE=str(profile)), _env()):  # consented; an admin's machine
        done = _in(netns, env, "plan", "-f", str(spec))
        assert done.returncode in (0, 2), done.stdout + done.stderr
        assert "# firewall at local\n" in done.stdout, done.stdout
        assert "Plan: 6 to add, 0 to change, 0 to destroy." in done.stdout, done.stdout
    assert marker in netns.run("iptables-save", "-t", "filter").stdout  # nothing applied


def test_verify_asks_no_fail2ban_of_the_runner_without_consent(tmp_path: Path) -> None:
    """verify of a spec whose fail2ban (no asterisk section) is this machine: refused in CI
    before any lookup or fail2ban-client (verify checked the bindings only with an
    asterisk section, so a fail2ban-only spec reached fail2ban through its target
    unchecked)."""
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(
        f"version: 1\ndomain: {DOMAIN}\nfail2ban:\n  logpath: /var/log/asterisk/messages.log\n"
    )
    done = run_sipctl("verify", "-f", str(spec), env=_env(CI="true"))
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"{spec}:3:1: fail2ban.target: local (the default): the fail2ban layer " in (
        done.stderr
    ), done.stderr
    assert "\n    local_layers: [fail2ban]\n" in done.stderr, done.stderr
