"""The read gate as a program on this machine (``sh``, coreutils, openssl; no sshd): what
``test_read_gate.py`` checks over SSH on a whole PBX, here with many more requests.

- a private key is answered by its sha256 and public key only, and that public key is the
  certificate's (real openssl against ``cryptography``);
- Hypothesis over request strings (table lines, shell syntax, NUL, CR, long lines): a request
  is answered only when every line is a line of the table, else refused whole; nothing outside
  the table ever runs (a canary) and nothing outside the allow-list is ever read (a secret
  behind a symbolic link that IS in the table).
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from fixtures.common import sipctl_in_process
from fixtures.properties import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipctl.providers.certificate.pem import public_key_matches, read_certificate
from sipctl.providers.transport.files import LINK_REFUSED, parse_read_output
from sipctl.providers.transport.read_gate import (
    GATE_REFUSED,
    HIDDEN,
    SSH_COMMAND,
    GateReads,
    GateTable,
    parse_keys,
    program_line,
    redact,
    render_gate,
    request,
)
from sipctl.reconciler.asterisk_conf import scan_lines
from sipctl.reconciler.render.asterisk import HTTP_KEYS
from sipctl.secret_names import SECRET_KEYS, secret_name

MARKER = "@sipctl-00112233445566ff@"
SECRET = b"not-for-the-plan-key-7f3a"


def _run(gate: Path, body: bytes, command: str = SSH_COMMAND) -> subprocess.CompletedProcess[bytes]:
    env = {"SSH_ORIGINAL_COMMAND": command, "PATH": os.environ["PATH"]}
    return subprocess.run(
        ["sh", str(gate)], input=body, capture_output=True, env=env, timeout=30, check=False
    )


def _gate(tmp_path: Path, table: GateTable) -> Path:
    gate = tmp_path / "sipctl-read-gate"
    gate.write_text(render_gate(table, title="a test"))
    return gate


def test_a_key_is_answered_by_its_hash_and_public_key_only(tmp_path: Path) -> None:
    key, cert = tmp_path / "sip.key", tmp_path / "sip.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=x.test"],
        check=True, capture_output=True,
    )  # fmt: skip
    other = tmp_path / "other.key"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(other)],
        check=True,
        capture_output=True,
    )
    missing = tmp_path / "missing.key"
    table = GateTable()
    table.add(GateReads("ssh://pbx", files=(str(cert),), keys=(str(key), str(other), str(missing))))
    keys = [str(key), str(other), str(missing)]
    body = request(MARKER, files=[str(cert)], keys=keys)
    done = _run(_gate(tmp_path, table), body)
    assert done.returncode == 0, done.stderr
    private = key.read_bytes()
    body_lines = [line for line in private.splitlines() if b"PRIVATE KEY" not in line]
    assert not any(line in done.stdout for line in body_lines), "no line of the key leaves"
    files, problems = parse_read_output([str(cert)], done.stdout, MARKER)
    assert not problems and files[str(cert)].content == cert.read_bytes()
    answers = parse_keys(done.stdout, MARKER, keys)
    facts = read_certificate(cert.read_bytes())
    assert answers[0].sha256 == hashlib.sha256(private).hexdigest()
    assert answers[0].public_pem is not None and public_key_matches(answers[0].public_pem, facts)
    assert answers[1].public_pem is not None
    assert not public_key_matches(answers[1].public_pem, facts)
    assert not answers[2].exists


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, GateTable, Path, Path]:
    """A gate whose table holds a plain file, a link to a secret, two programs and a script."""
    secret = tmp_path / "secret"
    secret.write_bytes(SECRET)
    plain = tmp_path / "etc" / "pjsip.conf"
    plain.parent.mkdir()
    plain.write_text("[global]\n")
    link = tmp_path / "etc" / "http.conf"
    link.symlink_to(secret)
    canary = tmp_path / "canary"
    table = GateTable()
    table.add(
        GateReads(
            "ssh://pbx",
            files=(str(plain), str(link), str(tmp_path / "etc" / "absent.conf")),
            programs=(("echo", "a b", "$(x)"), ("printf", "%s\\n", "one;two")),
            scripts=(("firewall-iptables", 'printf "\\n%s %s\\n" "$m" ssh'),),
        )
    )
    return _gate(tmp_path, table), table, canary, link


def _lines(table: GateTable) -> list[str]:
    return [
        *(f"f {p}" for p in table.files),
        *(program_line(argv) for argv in table.programs),
        *(f"s {name}" for name in table.scripts),
    ]


def test_a_link_in_the_table_is_refused_not_followed(
    world: tuple[Path, GateTable, Path, Path],
) -> None:
    gate, table, _, link = world
    paths = list(table.files)
    done = _run(gate, request(MARKER, files=paths))
    assert done.returncode == 0, done.stderr
    files, problems = parse_read_output(paths, done.stdout, MARKER)
    assert [p.path for p in problems] == [str(link)] and problems[0].why == LINK_REFUSED
    assert SECRET not in done.stdout
    assert files[paths[0]].content == b"[global]\n" and files[paths[2]].content is None


def _hostile(canary: Path, table_lines: list[str]) -> list[str]:
    c = shlex.quote(str(canary))
    first = table_lines[0]
    return [
        f"{first}; touch {c}", f"{first}$(touch {c})", f"{first}`touch {c}`",
        f"{first}/../secret", f"p touch {c}", f"p sh -c 'touch {c}'", "f /etc/shadow",
        "p asterisk -rx 'core stop now'", f"s firewall-iptables;touch {c}", "*", "f *",
        first + "\x00", first + "\r", " " + first, first + " ", "x" * 70_000,
    ]  # fmt: skip


_ALPHABET = st.sampled_from(list("fkps .;&|$`()'\"\\/*?[]~\r\x00\t-_abcz019<>{}!#"))


def test_requests_are_answered_only_when_every_line_is_in_the_table(
    world: tuple[Path, GateTable, Path, Path],
) -> None:
    gate, table, canary, _ = world
    table_lines = _lines(table)
    hostile = _hostile(canary, table_lines)
    pieces = st.one_of(
        st.sampled_from(table_lines),
        st.sampled_from(hostile),
        st.text(_ALPHABET, max_size=40),
        st.tuples(st.sampled_from(table_lines), st.text(_ALPHABET, max_size=8)).map("".join),
        st.tuples(st.text(_ALPHABET, max_size=8), st.sampled_from(table_lines)).map("".join),
    )

    @settings(
        max_examples=examples(250), deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(st.lists(pieces, min_size=1, max_size=6))
    def check(lines: list[str]) -> None:
        body = ("\n".join([f"{SSH_COMMAND} {MARKER}", *lines, "end"]) + "\n").encode()
        done = _run(gate, body)
        assert not canary.exists(), lines
        assert SECRET not in done.stdout and SECRET not in done.stderr
        sent = body.split(b"\n")[1:-2]
        # the shell may drop a NUL byte while it reads: the line without it is what counts
        # "." (the end of the files) is a line of every gate
        accepted = [*table_lines, "."]
        in_table = all(s.replace(b"\x00", b"").decode() in accepted for s in sent)
        if done.returncode == GATE_REFUSED:
            assert done.stdout == b"" and b"sipctl-read-gate: refused:" in done.stderr
        else:
            assert done.returncode == 0 and in_table, (lines, done.stderr)
        once = len(set(sent)) == len(sent)  # a repeated line is refused (the cost bound)
        if in_table and once and not any(b"\x00" in s for s in sent):
            assert done.returncode == 0, done.stderr

    check()


def test_other_commands_and_bad_heads_are_refused(
    world: tuple[Path, GateTable, Path, Path],
) -> None:
    gate, table, canary, _ = world
    line = _lines(table)[0]
    good = f"{SSH_COMMAND} {MARKER}\n{line}\nend\n".encode()
    assert _run(gate, good).returncode == 0
    for command in ("", "sh", f"touch {canary}", SSH_COMMAND + " ", "sipctl-read 2"):
        done = _run(gate, good, command)
        assert (done.returncode, done.stdout) == (GATE_REFUSED, b""), command
    for head in ["sipctl-read 1 @sipctl-$(id)@", "sipctl-read 1", "sipctl-read 2 " + MARKER, ""]:
        done = _run(gate, f"{head}\n{line}\nend\n".encode())
        assert (done.returncode, done.stdout) == (GATE_REFUSED, b""), head
    assert not canary.exists()


def _redacted_answer(tmp_path: Path, text: bytes) -> bytes:
    conf = tmp_path / "pjsip.conf"
    conf.write_bytes(text)
    table = GateTable()
    table.add(GateReads("ssh://pbx", redacted=(str(conf),)))
    done = _run(_gate(tmp_path, table), request(MARKER, files=[str(conf)]))
    assert done.returncode == 0, done.stderr
    head = next(line for line in done.stdout.split(b"\n") if line.startswith(MARKER.encode()))
    assert head.split()[1] == b"R" and head.split()[-1] == b"-", "no hash of the real file"
    files, problems = parse_read_output([str(conf)], done.stdout, MARKER)
    answer = files[str(conf)].content
    assert not problems and answer is not None
    return answer


def test_a_redacted_file_hides_secret_values_and_no_hash_of_the_file_leaves(
    tmp_path: Path,
) -> None:
    text = (
        b"[global]\ntype=global\nendpoint_identifier_order=ip,username\n"
        b"[trunk]\ntype=auth\nusername=pbx\nPassword = hunter2;comment\n  md5_cred=abc\n"
        b"password_digest = 0123abcd\n[x](+)\nsecret=s3\npinned=yes\n"
        b"contact=sip:alice:pw9@192.0.2.9:5060\ncontact=sip:bob@192.0.2.8\n"
        b"#include pjsip_sipctl.conf\n"
    )
    shown = _redacted_answer(tmp_path, text)
    assert hashlib.sha256(text).hexdigest().encode() not in shown
    for secret in (b"hunter2", b"abc", b"s3", b"0123abcd", b"pw9"):
        assert secret not in shown
    assert b"Password = (hidden by the read gate)" in shown
    assert b"contact=sip:alice:(hidden by the read gate)@192.0.2.9:5060" in shown
    for kept in (b"endpoint_identifier_order=ip,username", b"pinned=yes", b"sip:bob@192.0.2.8"):
        assert kept in shown
    assert redact(text) == shown and redact(shown) == shown


def test_the_pin_of_the_issue_cannot_be_read_back_from_the_answer(tmp_path: Path) -> None:
    """confbridge.conf with pin=4711 came back from the answer's sha256 in 6 ms: now the
    answer holds no hash that a guess could be checked against."""
    text = b"[general]\n[default_user]\ntype=user\npin=4711\nadmin_pin = 99\n"
    shown = _redacted_answer(tmp_path, text)
    for guess in range(10_000):
        candidate = text.replace(b"4711", str(guess).encode())
        assert hashlib.sha256(candidate).hexdigest().encode() not in shown
    assert b"4711" not in shown and b"99" not in shown


# Lines shaped like Asterisk's config, with the option names of every module config the gate
# can send and arbitrary bytes around them: the real sed of the gate and ``redact`` agree.
_KEYS = st.sampled_from(
    [*SECRET_KEYS, "username", "contact", "outbound_auth", "pinned", "x", "TRUNK_PASSWORD",
     "sip-secret", "Api.Key", "box_pin", "DB_PWD", "a_pw", "tlsprivatekey", "monkey", "spin",
     "API_KEY_2", "pin2", "db-pwd.old", "apiKey", "boxPin", "api_key_id", "priv_key_file",
     "userKey", "adminPIN_old", "newPw2", "tlsPrivateKey", "xprivateKey", "rivateKey", "a1Pwd",
     "turKey", "pinNed", "tls.privateKEY"]
)  # fmt: skip
_BYTES = st.binary(max_size=12).map(lambda b: b.replace(b"\n", b""))
_LINE = st.one_of(
    _BYTES,
    st.tuples(
        st.sampled_from([b"", b" ", b"\t", b";", b"x --;", b"a --; ", b"--;--; ", b"x=1 --;"]),
        _KEYS.map(str.encode).map(lambda k: k.upper() if len(k) % 2 else k),
        st.sampled_from([b"=", b" = ", b"=>", b" => ", b"\t=\t", b"==", b": "]),
        _BYTES,
        st.sampled_from([b"", b"sip:u:p@h", b"SIP/u:p@h/1", b":a:b@", b"sip:u@h:5060", b"\r"]),
    ).map(b"".join),
    st.tuples(  # an application's arguments: exten => ...,Set(KEY=value,...)
        st.sampled_from([b"exten => _X.,1,Set(", b"same => n,Set(A=1,", b"x(", b",", b"(("]),
        _KEYS.map(str.encode).map(lambda k: k.upper() if len(k) % 2 else k),
        st.sampled_from([b"=", b" =", b"=="]),
        _BYTES,
        st.sampled_from([b")", b",b=c)", b"),Dial(SIP/u:p@h)", b""]),
    ).map(b"".join),
    st.tuples(  # an HTTP header the dialplan sends: Set(CURLOPT(httpheader)=NAME: value)
        st.sampled_from(
            [
                b"same => n,Set(CURLOPT(httpheader)=",
                b"Set(CURLOPT(HTTPHEADER) = ",
                b"httpheader)=",
                b"x(httpheader)=a,",
            ]
        ),
        st.one_of(
            _KEYS.map(str.encode),
            st.sampled_from([b"Authorization", b"Cookie", b"X-Auth-Token", b"Content-Type"]),
        ),
        st.sampled_from([b":", b": ", b" : ", b"", b"="]),
        st.sampled_from([b"", b"Bearer ", b"Basic "]),
        _BYTES,
        st.sampled_from([b")", b",b)", b""]),
    ).map(b"".join),
)


@settings(max_examples=examples(150), deadline=None, suppress_health_check=list(HealthCheck))
@given(lines=st.lists(_LINE, max_size=8), end=st.sampled_from([b"", b"\n"]))
def test_the_gates_sed_and_redact_hide_the_same(
    tmp_path: Path, lines: list[bytes], end: bytes
) -> None:
    text = b"\n".join(lines) + end
    assert _redacted_answer(tmp_path, text) == redact(text)
    assert redact(redact(text)) == redact(text)


# Names an admin gives a secret ([globals] in extensions.conf, any module's config): words
# around one that says "secret", in any case, joined as admins join them.
_WORDS = st.sampled_from(["trunk", "TRUNK", "Sip", "db", "api", "my2", "OLD", "x"])
_SAYS_SECRET = st.sampled_from(
    ["password", "PASSWD", "Passphrase", "pass", "secret", "Token", "creds", "apikey",
     "md5secret", "Credential"]
)  # fmt: skip
_LAST = st.sampled_from(["key", "KEY", "pin", "Pin", "pwd", "PW"])
_SEP = st.sampled_from(["_", "-", "."])
# What may follow a last word: a version of the secret (API_KEY_2, BOX_PIN2, DB_PWD_OLD)
_VERSION = st.sampled_from(["", "2", "_2", "-10", ".old", "_OLD", "-New", "_bak"])


# camelCase: a last word Capitalized or in CAPITALS after a lower-case part (boxPin)
_CAMEL_BEFORE = st.sampled_from(["box", "user", "sipTrunk", "admin2", "db_", "my.x", "a"])
_CAMEL_LAST = st.sampled_from(["Key", "KEY", "Pin", "PIN", "Pwd", "PWD", "Pw", "PW"])
_CAMEL_VERSION = st.sampled_from(["", "2", "_2", "-10", ".old", "_OLD", "-New", "_Bak"])


@st.composite
def _secret_names(draw: st.DrawFn) -> str:
    sep = draw(_SEP)
    before = draw(st.lists(_WORDS, max_size=2))
    kind = draw(st.sampled_from(["says", "last", "camel"]))
    if kind == "says":
        return sep.join([*before, draw(_SAYS_SECRET), *draw(st.lists(_WORDS, max_size=2))])
    if kind == "camel":
        return draw(_CAMEL_BEFORE) + draw(_CAMEL_LAST) + draw(_CAMEL_VERSION)
    return sep.join([*before, draw(_LAST)]) + draw(_VERSION)


@settings(max_examples=examples(300), deadline=None)
@given(
    name=_secret_names(),
    indent=st.sampled_from(["", " ", "\t", ";", "; ", "--;", ";;"]),
    equals=st.sampled_from(["=", " = ", "=>", " => ", "\t=\t", "="]),
    value=st.text(st.characters(blacklist_characters="\n;", codec="utf-8"), max_size=12),
    comment=st.sampled_from(["", " ; note", ";x=1"]),
)
def test_a_key_whose_name_says_secret_is_hidden_as_asterisk_reads_it(
    name: str, indent: str, equals: str, value: str, comment: str
) -> None:
    """Through the real reader: every line Asterisk reads as ``NAME = value`` with such a
    name reads back as ``NAME = (hidden...)``, and the value is nowhere in the answer (nor
    in a line commented out: it often holds the old secret)."""
    value = "S3cr" + value
    line = f"{indent}{name}{equals}{value}{comment}\n"
    assert secret_name(name)
    shown = redact(line.encode()).decode()
    assert value not in shown and "S3cr" not in shown
    # and as an application's argument, where the dialplan sets it
    assert "S3cr" not in redact(f"exten => _X.,1,Set({name}={value})".encode()).decode()
    [read], _ = scan_lines([line])
    [read_back], _ = scan_lines([shown])
    if read:
        key, _, rest = read_back.partition("=")
        assert key == read.partition("=")[0] and rest.lstrip(">").strip() == HIDDEN
    # and where a block comment closes before it (Asterisk reads the key after the "--;")
    closed = f"old text --;{indent.lstrip(';-')}{name}{equals}{value}{comment}\n"
    hidden = redact(closed.encode()).decode()
    assert "S3cr" not in hidden
    [_, read], _ = scan_lines([";-- old\n", closed])
    [_, read_back], _ = scan_lines([";-- old\n", hidden])
    if read:
        key, _, rest = read_back.partition("=")
        assert key == read.partition("=")[0] and rest.lstrip(">").strip() == HIDDEN


@pytest.mark.parametrize(
    "name", ["API_KEY_2", "TRUNK_PASSWORD2", "SIP_SECRET_OLD", "apiKey", "trunkPassword",
             "authToken", "BOX_PIN_OLD", "db-pwd.2", "boxPin", "userKey", "adminPIN",
             "newPw2", "trunkPin_old", "sipTrunkPwd"]
)  # fmt: skip
def test_names_with_a_version_or_in_camel_case_are_secret(name: str) -> None:
    assert secret_name(name)


def test_words_that_only_hold_a_last_word_are_not_secret() -> None:
    """A camelCase part is told by its capital after a lower-case letter or digit (the
    sed runs that rule case-sensitively): "turkey", "pinned", "XPin" are no such part."""
    for key in ("keep", "pinned", "pinger", "monkey", "turkey", "api_key_id", "priv_key_file",
                "key_type", "monkey_2", "turkey.old", "pinNed", "boxPinned", "userKeyFile",
                "XPin", "BOXPin", "keyPin_id"):  # fmt: skip
        assert not secret_name(key), key


def _camel_spellings(key: str) -> set[str]:
    """``key`` (lower case, as plan reads it in any case) with each later word Capitalized
    or in CAPITALS where a camelCase writer would split it (tlsPrivateKey)."""
    words = {"tls": "", "private": "", "key": "", "cert": "", "file": "", "bind": "", "addr": ""}
    parts: list[str] = []
    rest = key
    while rest:
        word = next((w for w in words if rest.startswith(w)), rest)
        parts.append(word)
        rest = rest[len(word) :]
    found = {key, key.upper()}
    for style in (str.capitalize, str.upper):
        found.add(parts[0] + "".join(style(p) for p in parts[1:]))
        found.add("".join(style(p) for p in parts))
    return found


def test_the_keys_plan_reads_are_not_secret_names() -> None:
    """The values plan reads of the admin's files stay as they are (http.conf's, in any
    case as http.c reads them: tlsPrivateKey is a path; pjsip's user_agent, the include and
    type lines), and so does an ordinary name."""
    camel = [spelt for key in HTTP_KEYS for spelt in _camel_spellings(key)]
    assert "tlsPrivateKey" in camel and "TLSPRIVATEKEY" in camel
    for key in (*HTTP_KEYS, *camel, "user_agent", "type", "outbound_auth", "username",
                "contact", "pinned", "spin", "monkey", "keep_alive_interval", "exten",
                "same"):  # fmt: skip
        assert not secret_name(key), key


@settings(max_examples=examples(100), deadline=None, suppress_health_check=list(HealthCheck))
@given(name=st.sampled_from(sorted({s for k in HTTP_KEYS for s in _camel_spellings(k)})))
def test_the_gate_answers_a_key_plan_reads_in_any_case(tmp_path: Path, name: str) -> None:
    """Through the real sed: http.conf's keys, however spelt, come back as they are."""
    text = f"[general]\n{name} = /etc/asterisk/keys/a.pem\n".encode()
    assert _redacted_answer(tmp_path, text) == redact(text) == text


# The rules of a gate from before the names rule, as they were spelled then.
_SPACE = " \t\n\v\f\r"
_OLD_URI_RE = re.compile(b"([/:][^:@/; \t\n\v\f\r=,]+:)[^@/; \t\n\v\f\r]*@")
_OLD_KEY_RE = re.compile(
    ("^([" + _SPACE + "]*(" + "|".join(SECRET_KEYS) + ")[" + _SPACE + "]*=>?).*$").encode(),
    re.IGNORECASE,
)


def _old_redact(content: bytes) -> bytes:
    """What a gate from before the names rule answered (exact SECRET_KEYS only)."""
    return b"\n".join(
        _OLD_URI_RE.sub(
            lambda m: m.group(1) + HIDDEN.encode() + b"@",
            _OLD_KEY_RE.sub(lambda m: m.group(1) + b" " + HIDDEN.encode(), line, count=1),
        )
        for line in content.split(b"\n")
    )


@settings(max_examples=examples(300), deadline=None)
@given(
    lines=st.lists(st.one_of(_LINE, _secret_names().map(lambda n: n.encode() + b"=v")), max_size=8)
)
def test_an_older_gates_answer_gives_the_same_fingerprint(lines: list[bytes]) -> None:
    """Plan fingerprints an admin's file as ``redact`` of what it got: through a gate
    installed before this rule (which hid fewer keys), through this gate and through a root
    login alike, so a newer client neither sees every plan differ nor a saved plan stale."""
    text = b"\n".join(lines)
    assert redact(_old_redact(text)) == redact(text)


def test_a_long_request_costs_one_pass_over_the_table(tmp_path: Path) -> None:
    """A 3,997-line request (one table line again and again) cost 12 s of CPU: a repeated
    line is now refused, so no request costs more than the table once."""
    conf = tmp_path / "pjsip.conf"
    conf.write_bytes(b"[x]\ntype=aor\n" * 2000)
    table = GateTable()
    table.add(GateReads("ssh://pbx", files=(str(conf),), redacted=(str(conf),)))
    gate = _gate(tmp_path, table)
    body = request(MARKER, files=[str(conf)]).replace(
        f"f {conf}\n".encode(), f"f {conf}\n".encode() * 3995
    )
    assert body.count(b"\n") == 3998
    before = os.times()
    done = _run(gate, body)
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    assert done.returncode == GATE_REFUSED and b"repeats an earlier line" in done.stderr
    print(f"a 3,997-line request: {cpu:.3f} s of CPU")
    assert cpu < 1.0, cpu


# -- sipctl read-gate --------------------------------------------------------------------------

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "gitops" / "sipctl.yaml"


def _sipctl(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return sipctl_in_process(*args, cwd=cwd)


LAYERS = """
firewall:
  target: ssh://root@FIREWALL:22
  ssh: {key_file: .sipctl/ssh_key, known_hosts: known_hosts}
  backend: iptables
fail2ban:
  target: ssh://root@pbx.mycompany.example:22
  ssh: {key_file: .sipctl/ssh_key, known_hosts: known_hosts}
"""


def _two_domains(tmp_path: Path, firewall: str = "pbx.mycompany.example") -> tuple[Path, Path]:
    first = tmp_path / "a.yaml"
    first.write_text(EXAMPLE.read_text() + LAYERS.replace("FIREWALL", firewall))
    second = tmp_path / "b.yaml"
    text = EXAMPLE.read_text().replace("domain: mycompany.example", "domain: shop.example")
    second.write_text(text.replace("config_dir: /etc/asterisk", "config_dir: /etc/asterisk-shop"))
    return first, second


def test_the_gate_of_several_specs_answers_each_one_s_reads(tmp_path: Path) -> None:
    first, second = _two_domains(tmp_path)
    done = _sipctl("read-gate", "-f", str(first), "-f", str(second), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    gate = done.stdout
    for line in ("'f /etc/asterisk/pjsip_sipctl.conf')", "'f /etc/asterisk-shop/pjsip.conf')"):
        assert line in gate
    assert "a.yaml (mycompany.example)\n" in gate and "b.yaml (shop.example)\n" in gate
    assert "'s firewall-iptables')" in gate and "fail2ban-client" in gate
    syntax = subprocess.run(["sh", "-n"], input=gate, text=True, capture_output=True, check=False)
    assert syntax.returncode == 0, syntax.stderr


def test_read_gate_prints_the_authorized_keys_line_and_refuses_what_is_not_a_key(
    tmp_path: Path,
) -> None:
    first, _ = _two_domains(tmp_path)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "plan")],
        check=True,
    )
    done = _sipctl(
        "read-gate", "-f", str(first), "--authorized-keys", str(tmp_path / "plan.pub"),
        "--from", "192.0.2.0/24", "--from", "2001:db8::/32", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    public = (tmp_path / "plan.pub").read_text().split()
    assert done.stdout == (
        'command="/usr/local/sbin/sipctl-read-gate",restrict,from="192.0.2.0/24,2001:db8::/32" '
        f"{public[0]} {public[1]} sipctl-plan-read-only\n"
    )
    private = _sipctl("read-gate", "-f", str(first), "--authorized-keys", str(tmp_path / "plan"),
                      cwd=tmp_path)  # fmt: skip
    assert private.returncode == 1 and "not an OpenSSH public key" in private.stderr
    assert "PRIVATE" not in private.stdout + private.stderr
    hostile = _sipctl(
        "read-gate", "-f", str(first), "--authorized-keys", str(tmp_path / "plan.pub"),
        "--from", '1.2.3.4",command="sh', cwd=tmp_path,
    )  # fmt: skip
    assert hostile.returncode == 1 and "not an address" in hostile.stderr


def test_read_gate_names_the_hosts_to_choose_from(tmp_path: Path) -> None:
    first, _ = _two_domains(tmp_path, firewall="fw.mycompany.example")
    done = _sipctl("read-gate", "-f", str(first), cwd=tmp_path)
    assert done.returncode == 1 and "choose one with --host" in done.stderr
    assert "ssh://root@fw.mycompany.example:22" in done.stderr
    only = _sipctl("read-gate", "-f", str(first), "--host", "ssh://root@fw.mycompany.example",
                   cwd=tmp_path)  # fmt: skip
    assert only.returncode == 0, only.stderr
    assert "firewall-iptables" in only.stdout and "pjsip" not in only.stdout


def test_the_firewall_boot_check_sends_only_its_lines(tmp_path: Path) -> None:
    """The firewall script (also the gate's) sent /etc/network/interfaces* and
    /etc/nftables.conf whole: now only the hook lines that restore rules and the include
    lines leave the host, and a file that is a link is not read (real sh and grep, the
    script's own paths moved below a test root)."""
    from sipctl.providers.firewall.boot import BOOT_SHELL, boot_warnings

    root = tmp_path / "root"
    (root / "etc" / "network" / "interfaces.d").mkdir(parents=True)
    (root / "etc" / "network" / "interfaces").write_text(
        "auto eth0\niface eth0 inet static\n  address 192.0.2.5/24\n"
        "  wpa-psk SECRET-psk-1\n  post-up iptables-restore < /etc/iptables.up\n"
    )
    (root / "etc" / "network" / "interfaces.d" / "vpn").write_text(
        "  up ip6tables-restore < /etc/ip6tables.up\n  up echo SECRET-vpn-2 > /dev/null\n"
    )
    (tmp_path / "root-my.cnf").write_text("  up iptables-restore SECRET-link-3\n")
    (root / "etc" / "network" / "interfaces.d" / "planted").symlink_to(tmp_path / "root-my.cnf")
    (root / "etc" / "nftables.conf").write_text(
        '#!/usr/sbin/nft -f\ninclude "/etc/nftables.d/*.nft"\ndefine key = SECRET-nft-4\n'
    )
    evidence = {}
    for name, shell in BOOT_SHELL.items():
        done = subprocess.run(
            ["sh", "-c", shell.replace("/etc/", f"{root}/etc/")],
            capture_output=True,
            text=True,
            check=True,
        )
        assert "SECRET" not in done.stdout + done.stderr, (name, done.stdout)
        evidence[name] = done.stdout.replace(f"{root}/etc/", "/etc/")
    assert evidence["boot interfaces"].count("restore") == 2
    assert evidence["boot nftables"].strip() == 'include "/etc/nftables.d/*.nft"'
    paths = {"ipv4": "/etc/iptables.up", "ipv6": "/etc/ip6tables.up"}
    assert boot_warnings("iptables", paths, evidence) == []  # what the check needs is there
    assert boot_warnings("nftables", {"inet": "/etc/nftables.d/sipctl.nft"}, evidence) == []


@pytest.mark.parametrize(
    ("source", "meant"),
    [
        ("192.0.2.0/33", ""),
        ("2001:db8::/129", ""),
        ("example.com/24", ""),
        ("192.0.2.7/24", " (did you mean 192.0.2.0/24?)"),
        ("!2001:db8::1/32", " (did you mean 2001:db8::/32?)"),
    ],
)
def test_a_from_network_sshd_would_refuse_is_refused_here(source: str, meant: str) -> None:
    """OpenSSH's addr_pton_cidr refuses a mask longer than the family's and a network with
    host bits set, so such a from= made sshd refuse the plan key at every login; the line
    was printed all the same."""
    from sipctl.providers.transport.read_gate import GateError, authorized_keys_line

    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG plan"
    with pytest.raises(GateError) as info:
        authorized_keys_line(key, [source])
    assert str(info.value) == f"{source!r} is not a network for from={meant}"
    assert 'from="10.0.0.0/8,!10.1.0.0/16"' in authorized_keys_line(
        key, ["10.0.0.0/8", "!10.1.0.0/16"]
    )


def test_what_an_older_gate_left_in_clear_is_hidden_on_arrival() -> None:
    """A gate installed before the names rule answers TRUNK_PASSWORD in clear: the client
    hides it as it reads the answer (the real parser), so nothing after ever holds it."""
    import base64

    old_answer = b"[globals]\nTRUNK_PASSWORD=hunter2\npassword= (hidden by the read gate)\n"
    output = b"\n".join(
        [
            f"{MARKER} R 640 1700000000 -".encode(),
            base64.b64encode(old_answer),
            f"{MARKER} .".encode(),
            f"{MARKER} END".encode(),
            b"",
        ]
    )
    files, problems = parse_read_output(["/etc/asterisk/extensions.conf"], output, MARKER)
    content = files["/etc/asterisk/extensions.conf"].content
    assert problems == [] and content == redact(old_answer) and b"hunter2" not in content
