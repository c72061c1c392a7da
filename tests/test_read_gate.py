"""The read-only plan login against a real sshd whose plan key is tied to the read gate by
``command=`` (``providers/transport/read_gate.py``), on a whole PBX in a network namespace
(``fixtures/pbx_host.py``: Asterisk 22, fail2ban-server, iptables).

- a no-op plan through the gate equals the plan through the normal root login, target by
  target, with the same fingerprints (so a saved plan applies with the write key);
- hostile requests, written by hand and by Hypothesis, never run anything outside the table
  (a canary file is never made, Asterisk is never stopped) and never read outside the
  allow-list (a secret file never shows), and are refused whole;
- a path of the table that is a symbolic link (to the secret) is refused, not followed;
- apply with the read-only login refuses at once, before any lock or write.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import secrets
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest
import yaml
from fixtures import host_profile
from fixtures.host_profile import ENV as HOST_PROFILE_ENV
from fixtures.pbx_host import PbxHost, exchanges, install_read_gate, pbx_host
from fixtures.properties import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipctl.errors import ProviderError, RefusedError
from sipctl.providers.base import RunContext
from sipctl.providers.transport.gate_table import host_gates
from sipctl.providers.transport.read_gate import (
    GATE_REFUSED,
    READ_ONLY_ENV,
    SSH_COMMAND,
    program_line,
)
from sipctl.reconciler.engine import make_plan
from sipctl.reconciler.gitops.guarded import lock_and_apply
from sipctl.schemas.loader import LoadedSpec, load_spec_text

pytestmark = [pytest.mark.asterisk, pytest.mark.netns, pytest.mark.sshd, pytest.mark.slow]

SECRET = "sipctl-test-secret-" + secrets.token_hex(8)
PASSWORD = "trunk-password-" + secrets.token_hex(8)


@dataclasses.dataclass
class Gated:
    host: PbxHost
    gate: Path
    plan_key: Path
    canary: Path
    secret: Path
    table_lines: list[str]

    def spec(self, read_only: bool) -> dict[str, Any]:
        spec = self.host.spec()
        if read_only:
            for section in ("asterisk", "firewall", "fail2ban"):
                spec[section]["ssh"]["key_file"] = str(self.plan_key)
        return spec

    def loaded(
        self, read_only: bool = False, asterisk: dict[str, Any] | None = None, tls: bool = False
    ) -> LoadedSpec:
        spec = self.spec(read_only)
        spec["asterisk"].update(asterisk or {})
        if tls:  # a certificate and its key on the host (the certificate layer checks them)
            spec["transports"]["tls"] = {"port": 5061}
            files = {"cert_file": str(self.host.work / "tls" / "sip.crt")}
            spec["asterisk"]["tls"] = {**files, "key_file": str(self.host.work / "tls" / "sip.key")}
        text = yaml.safe_dump(spec, sort_keys=False)
        source = str(self.host.work / "sipctl.yaml")
        return load_spec_text(text, source=source, base_dir=self.host.work)

    def ctx(self, read_only: bool) -> RunContext:
        # the gate was rendered once for the module, with the session's host profile path
        env = {"USER": "root", HOST_PROFILE_ENV: str(host_profile.session().path)}
        if read_only:
            env[READ_ONLY_ENV] = "1"
        return RunContext(base_dir=self.host.work, env=env)

    def send(self, body: bytes, command: str = SSH_COMMAND) -> tuple[int, bytes, bytes]:
        """One raw request with the plan key (as an attacker holding it would send it)."""
        with self.host.link.b.entered():
            client = paramiko.SSHClient()
            client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
            client.connect(
                self.host.sshd.host,
                port=self.host.sshd.port,
                username="root",
                pkey=paramiko.PKey.from_path(self.plan_key),
                allow_agent=False,
                look_for_keys=False,
                timeout=10,
            )
            try:
                stdin, stdout, stderr = client.exec_command(command, timeout=60)
                stdin.write(body)
                stdin.channel.shutdown_write()
                out, err = stdout.read(), stderr.read()
                return stdout.channel.recv_exit_status(), out, err
            finally:
                client.close()


@pytest.fixture(scope="module")
def gated() -> Iterator[Gated]:
    with pbx_host() as host:
        work = host.work
        canary = work / "canary"
        secret = work / "secret"
        secret.write_text(SECRET + "\n")
        secret.chmod(0o600)
        # the admin's own secrets in the admin's own files, which plan reads
        config_dir = Path(host.asterisk.spec_section()["config_dir"])
        with (config_dir / "pjsip.conf").open("a") as pjsip:
            pjsip.write(f"\n[trunk-auth]\ntype = auth\nusername = pbx\npassword = {PASSWORD}\n")
        with (config_dir / "sip.conf").open("a") as sip:
            sip.write(f"\n[general]\nregister => pbx:{PASSWORD}@trunk.example\n")
        # and under names of the admin's own: a key whose name says it holds a secret
        with (config_dir / "extensions.conf").open("a") as dialplan:
            dialplan.write(f"\n[globals]\nTRUNK_PASSWORD={PASSWORD}\n;Old_Sip-Token = {PASSWORD}\n")
            dialplan.write(f"[trunk-out]\nexten => _00X.,1,Set(TRUNK_TOKEN={PASSWORD})\n")
        tls = work / "tls"
        tls.mkdir()
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", str(tls / "sip.key"), "-out", str(tls / "sip.crt"),
             "-days", "30", "-subj", "/CN=mysite.ru", "-addext", "subjectAltName=DNS:mysite.ru"],
            check=True, capture_output=True,
        )  # fmt: skip
        first = Gated(host, work / "sipctl-read-gate", work / "plan_ed25519", canary, secret, [])
        ctx = first.ctx(read_only=False)
        try:
            with host.link.b.entered():
                lock_and_apply(first.loaded(), ctx)
            # one gate for both specs of this host: the plain one and one with TLS
            specs = [first.loaded(), first.loaded(tls=True)]
            install_read_gate(host, specs, ctx, sources=("10.0.0.0/8",))
            (gate,) = host_gates(specs, ctx).values()
        finally:
            ctx.close()
        table = gate.table
        first.table_lines = [
            *(f"f {p}" for p in table.files),
            *(f"k {p}" for p in table.keys),
            *(program_line(argv) for argv in table.programs),
            *(f"s {name}" for name in table.scripts),
        ]
        yield first


def _plan_json(gated: Gated, read_only: bool, loaded: LoadedSpec | None = None) -> dict[str, Any]:
    ctx = gated.ctx(read_only)
    try:
        with gated.host.link.b.entered():
            plan = make_plan(loaded or gated.loaded(read_only), ctx).plan
    finally:
        ctx.close()
    data: dict[str, Any] = plan.to_json()
    for volatile in ("created_at", "spec"):  # the key file differs, and the time
        data.pop(volatile, None)
    return data


def test_a_plan_through_the_gate_equals_the_plan_through_the_root_login(gated: Gated) -> None:
    with exchanges() as normal_log:
        normal = _plan_json(gated, read_only=False)
    with exchanges() as log:
        through_gate = _plan_json(gated, read_only=True)
    # only requests: the first line of each exchange's stdin is a request's head
    assert all(f": {SSH_COMMAND} @sipctl-" in e.what for e in log), log
    assert len(log) == len(normal_log), "one request per round trip of the normal login"
    assert through_gate == normal
    assert not any(t["changes"] for t in normal["targets"]), "a no-op plan"


def test_a_plan_with_a_tls_key_through_the_gate_equals_the_root_login_s(gated: Gated) -> None:
    """The key's state (it matches the certificate) and its fingerprint come from the gate's
    public key and sha256; the key itself never leaves the host."""
    plans = []
    for read_only in (False, True):
        ctx = gated.ctx(read_only)
        try:
            with gated.host.link.b.entered():
                # the certificate layer alone: this Asterisk serves no TLS (a live problem)
                loaded = gated.loaded(read_only, tls=True)
                plan = make_plan(loaded, ctx, ["certificate"]).plan.to_json()
        finally:
            ctx.close()
        plans.append({k: v for k, v in plan.items() if k not in ("created_at", "spec")})
    assert plans[0] == plans[1]
    certificate = [t for t in plans[0]["targets"] if t["layer"] == "certificate"]
    assert certificate, plans[0]["targets"]
    key = gated.host.work / "tls" / "sip.key"
    status, out, err = gated.send(_request([".", f"k {key}"]))
    assert status == 0, err
    answer = out.decode().splitlines()[-1].split()
    assert answer[1] == "K" and answer[4] == hashlib.sha256(key.read_bytes()).hexdigest()
    body = [line for line in key.read_bytes().splitlines() if b"PRIVATE" not in line]
    assert not any(line in out for line in body)
    status, out, _ = gated.send(_request([f"f {key}", "."]))
    assert (status, out) == (GATE_REFUSED, b""), "a key is never a file of the table"


def test_drift_through_the_gate_equals_drift_through_the_root_login(gated: Gated) -> None:
    from sipctl.reconciler.gitops.drift import find_drift

    reports = []
    for read_only in (False, True):
        ctx = gated.ctx(read_only)
        try:
            with gated.host.link.b.entered():
                plan_run = make_plan(gated.loaded(read_only), ctx)
                reports.append(find_drift(plan_run, ctx).to_json())
        finally:
            ctx.close()
    assert reports[0] == reports[1]
    assert not reports[0]["drifted"] and not reports[0]["unrecorded"], reports[0]


def test_the_plan_key_answers_nothing_but_requests(gated: Gated) -> None:
    status, out, err = gated.send(b"", command="cat /etc/shadow")
    assert status == GATE_REFUSED and out == b""
    assert b"only answers sipctl's read requests" in err
    assert not gated.canary.exists()


def _request(lines: list[str], marker: str = "@sipctl-0123456789abcdef@") -> bytes:
    return ("\n".join([f"{SSH_COMMAND} {marker}", *lines, "end"]) + "\n").encode()


def _hostile(gated: Gated) -> list[str]:
    canary = shlex.quote(str(gated.canary))
    some_file = next(line for line in gated.table_lines if line.startswith("f "))
    program = next(line for line in gated.table_lines if line.startswith("p "))
    return [
        f"f {gated.secret}",
        "f /etc/shadow",
        f"{some_file}/../../../../etc/shadow",
        f"{some_file}; touch {canary}",
        f"{some_file}$(touch {canary})",
        f"{some_file}`touch {canary}`",
        f"{program}; touch {canary}",
        f"{program} && touch {canary}",
        f"p sh -c 'touch {canary}'",
        f"p touch {canary}",
        program.replace("pjsip show", "core stop now").replace("core show", "core stop now"),
        "p asterisk -rx 'core stop now'",
        "s firewall-iptables; touch " + canary,
        "s ../../bin/sh",
        "k /etc/shadow",
        "*",
        "f *",
        "p *",
        some_file + "*",
        "",
        "f " + "/" * 5000 + "etc/shadow",
        "x" * 100_000,
    ]


def test_hand_written_hostile_lines_are_refused_whole(gated: Gated) -> None:
    some_file = next(line for line in gated.table_lines if line.startswith("f "))
    for hostile in _hostile(gated):
        status, out, err = gated.send(_request([some_file, hostile]))
        assert status == GATE_REFUSED, (hostile[:80], err)
        assert out == b"", "nothing is answered (not even the allowed line before it)"
        assert b"sipctl-read-gate: refused:" in err
    assert not gated.canary.exists()


def test_a_bad_marker_or_a_cut_request_is_refused(gated: Gated) -> None:
    some_file = next(line for line in gated.table_lines if line.startswith("f "))
    for marker in ["@sipctl-$(touch x)@", "@sipctl-0123@", "@sipctl-0123456789abcdeg@", ""]:
        status, out, _ = gated.send(_request([some_file], marker))
        assert (status, out) == (GATE_REFUSED, b"")
    status, out, err = gated.send(_request([some_file])[: -len(b"end\n")])
    assert (status, out) == (GATE_REFUSED, b"") and b"before its end line" in err


_ALPHABET = st.sampled_from(list("fkps .;&|$`()'\"\\/*?[]~\n\r\x00\t-_abcdefz0123456789<>"))


@st.composite
def _requests(draw: st.DrawFn, table: list[str], hostile: list[str]) -> list[str]:
    pieces = st.one_of(
        st.sampled_from(table),
        st.sampled_from(hostile),
        st.text(_ALPHABET, max_size=60),
        st.tuples(st.sampled_from(table), st.text(_ALPHABET, max_size=12)).map("".join),
    )
    return draw(st.lists(pieces, min_size=1, max_size=6))


def test_requests_never_run_or_read_outside_the_table(gated: Gated) -> None:
    table = set(gated.table_lines)
    # the firewall script is slow-ish: a property over files and programs
    quick = sorted(line for line in table if not line.startswith("s "))

    @settings(
        max_examples=examples(40),
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(_requests(quick, _hostile(gated)))
    def check(lines: list[str]) -> None:
        body = _request(lines)
        sent = body.split(b"\n")[1:-2]  # the lines as the gate reads them (no head, no end)
        status, out, err = gated.send(body)
        assert not gated.canary.exists(), lines
        assert SECRET.encode() not in out and SECRET.encode() not in err
        in_table = all(line.replace(b"\x00", b"").decode("utf-8", "replace") in table
                       for line in sent)  # fmt: skip
        if status == GATE_REFUSED:
            assert out == b"", "refused whole: nothing answered"
        else:
            assert status == 0 and in_table, (lines, err)

    check()
    _asterisk_still_runs(gated)


def _asterisk_still_runs(gated: Gated) -> None:
    argv = [*gated.host.asterisk.program, "-rx", "core show uptime"]
    status, out, _ = gated.send(_request([program_line(argv)]))
    assert out == b""
    # not in the table: refused; the normal login says it runs
    assert status == GATE_REFUSED
    ctx = gated.ctx(read_only=False)
    try:
        with gated.host.link.b.entered():
            asterisk = gated.loaded().spec.asterisk
            assert asterisk is not None
            transport = ctx.transports.get(asterisk.target, asterisk.ssh)
            result = transport.run_programs([argv])[0]
    finally:
        ctx.close()
    assert result.ok and "System uptime" in result.stdout, result


def test_a_table_path_that_is_a_link_is_refused_not_followed(gated: Gated) -> None:
    config = Path(gated.loaded().spec.asterisk.config_dir)  # type: ignore[union-attr]
    http = config / "http.conf"
    original = http.read_bytes() if http.exists() else None
    moved = config.parent / "asterisk-real"
    try:
        http.unlink(missing_ok=True)
        http.symlink_to(gated.secret)
        with pytest.raises(ProviderError) as caught:
            _plan_json(gated, read_only=True)
        assert "symbolic link" in caught.value.message and str(http) in caught.value.message
        assert SECRET not in caught.value.message
        http.unlink()
        # a link in a directory above: config_dir reached through a linked directory
        config.rename(moved)
        config.symlink_to(moved)
        (moved / "http.conf").write_text(SECRET)  # what following the link would hand out
        status, out, _ = gated.send(_request([f"f {http}", "."]))
        assert status == 0 and b" L\n" in out and SECRET.encode() not in out
    finally:
        if config.is_symlink():
            config.unlink()
            (moved / "http.conf").unlink(missing_ok=True)
            moved.rename(config)
        http.unlink(missing_ok=True)
        if original is not None:
            http.write_bytes(original)


def test_apply_with_the_read_only_login_refuses_before_anything(gated: Gated) -> None:
    ctx = gated.ctx(read_only=True)
    try:
        with (
            exchanges() as log,
            gated.host.link.b.entered(),
            pytest.raises(RefusedError) as caught,
        ):
            lock_and_apply(gated.loaded(read_only=True), ctx)
    finally:
        ctx.close()
    assert READ_ONLY_ENV in caught.value.message and "nothing was done" in caught.value.message
    assert log == [], "not even a connection"


def test_an_outdated_gate_names_the_line_and_what_to_run(gated: Gated) -> None:
    changed = gated.loaded(read_only=True, asterisk={"reject_sound": "vm-goodbye"})
    with pytest.raises(ProviderError) as caught:
        _plan_json(gated, True, changed)
    message = caught.value.message
    assert "the read gate refused" in message and "core show sound vm-goodbye" in message
    assert "sipctl read-gate -f SPEC" in (caught.value.hint or "")


def test_a_spec_s_first_goto_target_plans_through_the_same_gate_and_converges(
    gated: Gated,
) -> None:
    """``route: goto`` adds the guest jumps' check (``dialplan show``) to plan's reads. The
    gate, rendered before the spec had any goto target, lists it already: the merge
    request's plan passes it and is right, one apply converges (the plan after it, through
    the gate, has no changes), and nobody renders the gate again for it."""
    goto = {"route": "goto"}
    first = _plan_json(gated, True, gated.loaded(read_only=True, asterisk=goto))
    assert first["refusals"] == []
    [asterisk] = [t for t in first["targets"] if t["layer"] == "asterisk"]
    assert asterisk["changes"], "the guest dialplan gains its Goto"
    assert any("guest jumps checked in the running Asterisk" in n for n in asterisk["notes"])
    ctx = gated.ctx(read_only=False)
    try:
        with gated.host.link.b.entered():
            lock_and_apply(gated.loaded(asterisk=goto), ctx)
        after = _plan_json(gated, True, gated.loaded(read_only=True, asterisk=goto))
        assert [t["changes"] for t in after["targets"] if t["changes"]] == []
    finally:
        with gated.host.link.b.entered():
            lock_and_apply(gated.loaded(), ctx)  # back as it was, for the other tests
        ctx.close()


def test_the_read_only_mode_with_a_normal_key_says_the_key_is_not_gated(gated: Gated) -> None:
    spec = gated.spec(read_only=False)
    text = yaml.safe_dump(spec, sort_keys=False)
    loaded = load_spec_text(text, source=str(gated.host.work / "x.yaml"), base_dir=gated.host.work)
    with pytest.raises(ProviderError) as caught:
        _plan_json(gated, True, loaded)
    assert "not tied to sipctl's read gate" in caught.value.message


def test_the_admin_s_secret_values_are_hidden_and_the_plan_unchanged(gated: Gated) -> None:
    config_dir = gated.loaded().spec.asterisk.config_dir  # type: ignore[union-attr]
    lines = [f"f {config_dir}/{name}.conf" for name in ("pjsip", "sip", "extensions")] + ["."]
    status, out, err = gated.send(_request(lines))
    assert status == 0, err
    assert PASSWORD.encode() not in out
    text = b"".join(
        base64.b64decode(line) for line in out.splitlines() if not line.startswith(b"@sipctl")
    ).decode()
    assert "password = (hidden by the read gate)" in text
    assert "register => (hidden by the read gate)" in text
    assert "TRUNK_PASSWORD= (hidden by the read gate)" in text
    assert ";Old_Sip-Token = (hidden by the read gate)" in text
    assert "exten => _00X.,1,Set(TRUNK_TOKEN=hidden-by-the-read-gate)" in text
    assert "type = auth" in text and "username = pbx" in text, "the rest as it is"
    # and the plan's fingerprint is the real file's: see the plan equality test above


def test_a_plan_made_through_the_gate_applies_with_the_write_key(gated: Gated) -> None:
    """The pipeline's flow: the merge request's plan through the gate, saved; the apply job
    applies exactly that plan with the write key (its fingerprints are the root login's)."""
    from sipctl.reconciler.gitops.guarded import guarded_apply
    from sipctl.reconciler.plan import Plan

    # one spec for both jobs, as in the pipelines: each job writes its own key to key_file
    job_key = gated.host.work / "job_key"

    def loaded(extra: list[str]) -> LoadedSpec:
        spec = gated.spec(read_only=False)
        for section in ("asterisk", "firewall", "fail2ban"):
            spec[section]["ssh"]["key_file"] = str(job_key)
        spec["firewall"]["extra"] = extra
        text = yaml.safe_dump(spec, sort_keys=False)
        source = str(gated.host.work / "sipctl.yaml")
        return load_spec_text(text, source=source, base_dir=gated.host.work)

    shutil.copy(gated.plan_key, job_key)  # the plan job
    ctx = gated.ctx(read_only=True)
    try:
        with gated.host.link.b.entered():
            saved = Plan.from_json(make_plan(loaded(["tcp/443"]), ctx).plan.to_json())
    finally:
        ctx.close()
    assert saved.has_changes
    shutil.copy(gated.host.sshd.key_file, job_key)  # the apply job
    ctx = gated.ctx(read_only=False)
    try:
        with gated.host.link.b.entered():
            outcome = guarded_apply(saved, "plan.json", ctx)
            assert outcome.report is not None and outcome.report.applied
            lock_and_apply(loaded([]), ctx)  # back as it was, for the other tests
    finally:
        ctx.close()
