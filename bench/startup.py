"""Bench: what a whole ``sipctl`` process costs, against the floor of the work it must do.

The floor of a no-op ``plan`` of a DNS-only spec is Python itself plus dnspython signing the
same 8 TSIG queries sipctl sends (SOA, NAPTR, three SRV, the registry TXT, A and AAAA of the
server) and reading the answers pipelined on one TCP connection. Both run against the same
real BIND in the same bench run, as processes, with sipctl installed from a wheel as the
README installs it (an editable install adds its own import hook to every start).
Printed: the median cpu seconds (user + system, from the kernel) of paired runs, and the
median wall seconds (which the machine's load inflates).

Run: ``python bench/startup.py`` (``--runs 15`` for more samples; ``--against REV`` also
runs the sipctl of git revision REV, paired with this one). Needs bind9.

Measured on 2 cores (load about 1, 9 paired runs): before the CLI bypass and the spec work,
validate 697 ms (2.74x the floor of 254 ms) and a no-op plan 850 ms (3.34x); after, 515 ms
(2.09x) and 647 ms (2.62x); under load 6-9 the ratios were 2.54-2.63x and 2.95-3.04x before,
2.17-2.20x and 2.51-2.72x after. Then pydantic alone cost more than half the floor.

Without pydantic and packaging metadata on the hot path (a valid spec was built by
schemas/spec_fast.py, generated from the models, removed since: see below; sipctl's own
providers found in providers/base.py's table), same bench, same machine, shared with three
other engineers:
before (load 4.1): floor 264 ms, validate 536 ms (2.03x), no-op plan 645 ms (2.45x);
after (load 2.6): floor 214 ms, validate 159 ms (0.74x), no-op plan 331 ms (1.55x);
after, with difflib, traceback and shlex imported only where used (load 2.9, 11 runs):
floor 241 ms, validate 192 ms (0.80x), no-op plan 351 ms (1.46x); with the rfc2136 reads
decoded directly as well (load 5.9, 11 runs): floor 273 ms, validate 188 ms (0.69x), no-op
plan 335 ms (1.23x); at low load the floor itself gets faster than sipctl does, and the
ratio sits at the goal: load 1.5, floor 173 ms, validate 164 ms (0.95x), plan 262 ms
(1.51x); load 1.8, floor 184 ms, validate 135 ms (0.73x), plan 274 ms (1.49x).
What the plan still pays above the floor (-X importtime, one process): PyYAML's import
(its pure-Python reader compiles a large regex even though libyaml parses), sipctl's CLI,
engine, DNS provider and plan modules (dataclasses are built by exec at import), the cross
checks, and dnspython's UPDATE and rdata types the floor's queries never touch.

One spec model: the generated checker was removed, pydantic builds every spec. Paired with
the commit before (``--against 1375b95``, load 7.9, 9 runs): floor 84 ms, validate 63 -> 171
ms (0.75x -> 2.03x), no-op DNS plan 117 -> 205 ms (1.39x -> 2.43x): pydantic's import (about
60 ms), its model classes (about 20 ms) and building the validator (about 11 ms). Once the
CLI was typer alone, which imports pydantic itself, the spec model's own share is the
classes and the validator, about 30 ms; with both (load 15, 9 runs): --version 14 -> 113 ms,
validate 66 -> 276 ms (3.06x), no-op DNS plan 128 -> 304 ms (3.36x).

One parser (typer reads every command; no second parser for --version, --help and a plain
validate, plan or apply): typer's import and its command tree cost --version and --help
about 60 ms of cpu and validate about 35 ms (15 paired runs of 6ee619f against aae5d3f,
load 7.8, the README's example spec: --help 13 -> 73 ms, --version 13 -> 72 ms, validate
168 -> 203 ms cpu). This bench against 6ee619f at load 8.2 (11 runs, the later work of
others included): --version 13 -> 100 ms, --help 13 -> 104 ms, validate 166 -> 232 ms, no-op
plan 200 -> 274 ms cpu.

Lazy commands (typer builds, and imports the module of, the command that runs, or all of
them for --help; asyncio only for fleet) and the profiles' validators built on first use:
``--against 856a697``, load 4.3, 9 paired runs: floor 80 ms; --version 99 -> 62 ms, --help
98 -> 78 ms, validate 225 -> 182 ms (2.80x -> 2.27x), no-op DNS plan 265 -> 222 ms (3.30x ->
2.77x). What the plan still costs (cpu, same machine, load 4): the libraries' imports alone
are about twice the floor: python 9 ms, typer 45 ms, pydantic with the TypeAdapter typer
builds for each option value and the plugin lookup's importlib.metadata about 60 ms, PyYAML
16 ms, dnspython's message and TSIG modules 64 ms (the floor's own): 165 ms for
``python -c "import typer, typer._adapters, yaml, dns.message, dns.tsigkeyring"``, about
2.1x the floor before sipctl does anything. The spec's 25 model classes (26 ms) and their
validator (26 ms) are the rest of validate; the plan adds its engine, the provider and the
read (about 40 ms). The 2x budget is out of reach with typer and pydantic in the process;
only a second parser or a second model (removed on purpose) got under it.

The exit without its last garbage collection (sipctl.entry freezes the collector's objects
once the command is done: the interpreter's exit would walk every object the imports made,
twice, to free memory the exit frees anyway). A row of its own now: the libraries alone,
imported, the process ending as sipctl's does. Load 9-12, 21 paired runs each,
``--against 42524ce`` (before this session's start-up work) and ``--against e8dcfdd`` (the
commit before the freeze; the later rows in parentheses):

    command                                 42524ce -> now       x floor
    floor: python + dnspython, 8 queries    86 ms (83)           1.00
    libraries alone                         147 ms (143)         1.71
    sipctl --version                        65 -> 55 ms          0.76 -> 0.64
    sipctl --help                           82 -> 72 ms          0.95 -> 0.83
    sipctl validate                         199 -> 171 ms        2.31 -> 1.99
                                            (194 -> 169 ms)      (2.33 -> 2.03)
    sipctl plan (no-op, DNS only)           236 -> 204 ms        2.74 -> 2.37
                                            (243 -> 205 ms)      (2.92 -> 2.46)

Where the plan's cpu goes now (one process, each step timed in order with process_time,
median of 11, load 3): Python 9 ms; typer 37; pydantic, imported by typer at the first
option value, 49; PyYAML 8; dnspython's message and TSIG modules 26 (the floor's own). Then
sipctl: the spec's 25 model classes 11 and their validator 9 (pydantic's work, for the one
model); sipctl's other modules 23, spread over 50 of them (none above 2.5 ms: mostly the
dataclasses each module builds by exec, 0.2-0.6 ms apiece; no module of another layer, no
rich, no entry-point scan); typer's command (its signature read, 3 ms) and a TypeAdapter
for each of its 16 option values (4 ms); reading and checking the spec 3; the read, the diff
and the output 5. The libraries are 1.71x the floor before sipctl does anything; 2x leaves
sipctl 25 ms of the 57 it spends, 20 of which are the spec model's own. The floor is fair:
it reads the same names, with dnspython's own messages and TSIG, and only them (sipctl reads
them from one signed zone transfer, one message instead of eight).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fixtures.bind import SECRET_ENV, BindServer, dns_spec
from measure import (
    Sample,
    checkout,
    installed_sipctl,
    median_cpu,
    print_table,
    remove_checkout,
    run_measured,
)

FLOOR = """
import socket, struct, sys
import dns.message, dns.rdatatype, dns.tsigkeyring
server, port, zone, key, algorithm, secret = sys.argv[1:7]
keyring = dns.tsigkeyring.from_text({key: (algorithm, secret)})
host = "asterisk." + zone
names = [(zone, "SOA"), (zone, "NAPTR"), ("_sip._udp." + zone, "SRV"),
         ("_sip._tcp." + zone, "SRV"), ("_sips._tcp." + zone, "SRV"),
         ("_sipctl." + zone, "TXT"), (host, "A"), (host, "AAAA")]
queries = []
for name, rdtype in names:
    query = dns.message.make_query(name, rdtype)
    query.use_tsig(keyring, keyname=key)
    queries.append(query)
wires = [q.to_wire() for q in queries]
sock = socket.create_connection((server, int(port)))
sock.sendall(b"".join(struct.pack("!H", len(w)) + w for w in wires))
def read(n):
    data = b""
    while len(data) < n:
        data += sock.recv(n - len(data))
    return data
for query in queries:
    (length,) = struct.unpack("!H", read(2))
    dns.message.from_wire(read(length), keyring=keyring, request_mac=query.mac)
"""

# What a no-op DNS plan must import before sipctl does anything: typer (the one parser), the
# pydantic that typer checks option values with (typer._adapters, imported at the first
# option value) and the spec's one model is built by, PyYAML and the floor's dnspython. The
# process ends as sipctl's does (sipctl.entry: gc.freeze(), no collection over them at exit).
LIBRARIES = "import typer, typer._adapters, yaml, dns.message, dns.tsigkeyring, gc; gc.freeze()"
LIBRARIES_LABEL = "libraries alone: typer, pydantic, PyYAML, dnspython"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="paired runs per row (median)")
    parser.add_argument("--against", metavar="REV", help="also measure git revision REV")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sipctl-bench-"))
    python = installed_sipctl(work)
    others = {}
    if args.against:
        tree = checkout(work, args.against)
        try:
            others[args.against] = installed_sipctl(work / "rev", tree)
        finally:
            remove_checkout(tree)
    bind = BindServer()
    bind.start()
    try:
        zone = bind.new_zone("startup.test")
        spec = work / "sipctl.yaml"
        spec.write_text(dns_spec(bind, zone))
        env = {**os.environ, SECRET_ENV: bind.secret}
        sipctl = [str(python), "-m", "sipctl"]
        applied = run_measured(
            [*sipctl, "apply", "-f", str(spec), "--auto-approve", "--no-verify"], env=env
        )
        assert applied.returncode == 0, "the bench spec must apply"
        host, _, port = bind.server.rpartition(":")
        floor_argv = [
            str(python),
            "-c",
            FLOOR,
            host,
            port,
            zone,
            bind.key_name,
            bind.algorithm,
            bind.secret,
        ]
        commands = {
            "floor: python + dnspython, 8 TSIG queries": floor_argv,
            "python -c pass": [str(python), "-c", "pass"],
            LIBRARIES_LABEL: [str(python), "-c", LIBRARIES],
        }
        for label, runner in {"": python, **others}.items():
            tag = f" ({label})" if label else ""
            sipctl = [str(runner), "-m", "sipctl"]
            commands |= {
                f"sipctl --version{tag}": [*sipctl, "--version"],
                f"sipctl --help{tag}": [*sipctl, "--help"],
                f"sipctl validate{tag}": [*sipctl, "validate", "-f", str(spec)],
                f"sipctl plan (no-op, DNS only){tag}": [
                    *sipctl,
                    "plan",
                    "-f",
                    str(spec),
                    "--detailed-exitcode",
                ],
            }
        samples: dict[str, list[Sample]] = {name: [] for name in commands}
        for _ in range(args.runs):  # paired: each round runs every command once
            for name, argv in commands.items():
                sample = run_measured(argv, env=env)
                assert sample.returncode == 0, f"{name} failed ({sample.returncode})"
                samples[name].append(sample)
        floor = median_cpu(samples["floor: python + dnspython, 8 TSIG queries"])
        rows = [
            {
                "command": name,
                "cpu (median)": f"{median_cpu(found) * 1000:.0f} ms",
                "x floor": f"{median_cpu(found) / floor:.2f}",
                "wall (median)": f"{statistics.median(s.wall for s in found) * 1000:.0f} ms",
            }
            for name, found in samples.items()
        ]
    finally:
        bind.stop()
        shutil.rmtree(work, ignore_errors=True)  # the venvs and wheels of this run
    print_table(rows)
    print(f"\n{args.runs} paired runs each; load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
