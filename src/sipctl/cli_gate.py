"""``sipctl read-gate``: the read-only login for plan jobs (providers/transport/read_gate.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from sipctl.cli_common import load_checked, start_console
from sipctl.cli_params import NoColor, SpecFiles, Verbose
from sipctl.errors import SpecError


def read_gate(
    spec_file: SpecFiles = None,
    host: Annotated[
        str | None,
        typer.Option(
            "--host",
            help="The ssh:// target to render the gate for, when the specs reach more than one "
            "host.",
            metavar="TARGET",
        ),
    ] = None,
    authorized_keys: Annotated[
        Path | None,
        typer.Option(
            "--authorized-keys",
            help="Print the line for root's authorized_keys on the host that ties this public "
            "key (the plan job's, e.g. plan_key.pub) to the gate, instead of the gate.",
            metavar="KEY.pub",
            dir_okay=False,
        ),
    ] = None,
    sources: Annotated[
        list[str] | None,
        typer.Option(
            "--from",
            help="With --authorized-keys: the addresses the plan jobs come from (from=); "
            "repeat for several. Strongly advised.",
            metavar="CIDR",
        ),
    ] = None,
    no_color: NoColor = False,
    verbose: Verbose = 0,
) -> None:
    """Print the read gate of a host: a script that lets a plan job's SSH key read what
    plan reads there, and nothing else (no writes, no commands of its own).

    Plan jobs run for every merge request, where write credentials must not be. With
    SIPCTL_SSH_READ_ONLY=1 in its environment, sipctl sends the host requests instead of
    scripts: the files, private keys (only their sha256 and public key are answered),
    programs and firewall snapshot that plan reads, by exact line. The gate answers only the
    lines it lists, derived from the spec(s); anything else is refused whole, before
    anything runs. apply, the host lock and every write refuse to run with that login.

    On the host, as root: install it as /usr/local/sbin/sipctl-read-gate (owner root, mode
    0755), and add the line --authorized-keys prints to /root/.ssh/authorized_keys. Setup
    and what the gate allows: sipctl docs read-only-plan.

    Example: sipctl read-gate -f sipctl.yaml > sipctl-read-gate

    Example: sipctl read-gate -f sipctl.yaml --authorized-keys plan.pub --from 192.0.2.0/24

    Render and install it again after a spec change that moves a path or adds a layer: a
    plan through an outdated gate fails and names the line the gate refused.
    """
    console = start_console(no_color, verbose)
    from sipctl.providers.base import RunContext
    from sipctl.providers.transport.gate_table import host_gates
    from sipctl.providers.transport.read_gate import (
        GateError,
        authorized_keys_line,
        render_gate,
    )
    from sipctl.reconciler.gitops.spec_files import select_specs
    from sipctl.schemas.targets import parse_target

    selection = select_specs(spec_file or [Path("sipctl.yaml")])
    for skipped in selection.skipped:  # stdout is the gate: the skipped files go to stderr
        console.info(f"{skipped.path}: skipped: {skipped.reason}")
    specs = [load_checked(path) for path in selection.paths]
    ctx = RunContext(base_dir=specs[0].base_dir)
    try:
        gates = host_gates(specs, ctx)
    finally:
        ctx.close()
    if not gates:
        raise SpecError("no layer of these specs reaches a host over ssh://: no gate to render")
    if host is not None:
        key = parse_target(host).key
        if key not in gates:
            raise SpecError(f"--host {host}: no layer reaches it (hosts: {', '.join(gates)})")
        gate = gates[key]
    elif len(gates) > 1:
        raise SpecError(
            "these specs reach several hosts, and each gets its own gate: choose one with "
            f"--host ({', '.join(gates)})"
        )
    else:
        gate = next(iter(gates.values()))
    if authorized_keys is not None:
        try:
            text = authorized_keys.read_text(encoding="utf-8", errors="replace")
            line = authorized_keys_line(text, sources or [])
        except OSError as exc:
            raise SpecError(f"{authorized_keys}: cannot read: {exc.strerror}") from None
        except GateError as exc:
            raise SpecError(f"{authorized_keys}: {exc}") from None
        sys.stdout.write(line + "\n")
        return
    sys.stdout.write(render_gate(gate.table, title=gate.target, sources=gate.sources))
