"""``sipctl verify``: the typer command, registered by ``cli.py``::

    from sipctl.cli_verify import verify_command
    app.command("verify")(verify_command)

Exit 0 when every check holds, 1 otherwise (defects, failed probes, or an error).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sipctl.errors import EXIT_ERROR

if TYPE_CHECKING:
    from sipctl.output import Console
    from sipctl.schemas.loader import LoadedSpec


def verify_command(
    spec_file: Annotated[
        Path,
        typer.Option("-f", "--file", help="The spec file (YAML, version 1).", dir_okay=False),
    ] = Path("sipctl.yaml"),
    nameserver: Annotated[
        str | None,
        typer.Option(
            "--nameserver",
            metavar="IP[:PORT]",
            help="Ask this DNS server (e.g. the zone's primary) instead of the system resolver.",
        ),
    ] = None,
    json_: Annotated[
        bool,
        typer.Option("--json", help="Print the report as JSON (sipctl schema --output verify)."),
    ] = False,
    timeout: Annotated[
        float,
        typer.Option("--timeout", min=0.1, max=120.0, help="Seconds for each lookup and probe."),
    ] = 5.0,
    no_color: Annotated[bool, typer.Option("--no-color", help="Plain output.")] = False,
    verbose: Annotated[
        int, typer.Option("-v", "--verbose", count=True, help="Say what is asked, and where.")
    ] = 0,
) -> None:
    """Resolve the domain as a SIP client does (RFC 3263: NAPTR, SRV, A/AAAA) and probe every
    target with SIP OPTIONS: each declared user must answer 200. Then, per name, what a
    caller gets now: a phone rings (its endpoint has a contact that answers), unavailable
    (why: no endpoint, not registered, unreachable), or wrong; each phone of a ring group; a
    room's state. Read through the asterisk target; no call is placed, no phone rings.
    A banned verifier is told so (fail2ban), with the unban command.
    """
    # Late imports: cli.py imports this module, and a command's imports stay off --help.
    from sipctl.cli_common import load_checked as _load
    from sipctl.cli_common import start_console as _start
    from sipctl.reconciler.verify.run import run_verify

    console = _start(no_color, verbose)
    if json_:  # a refusal is JSON too (cli_boundary)
        console.promise_json("verify", str(spec_file))
    loaded = _load(spec_file)
    if loaded.spec.hosting is not None:
        _verify_customers(console, loaded, nameserver, timeout, json_)
        return
    report = run_verify(loaded, nameserver, timeout, log=console.detail)
    if json_:
        from sipctl.cli_common import print_json_report

        status = "ok" if report.ok else "failed"
        data = report.to_json()
        print_json_report(console, "verify", spec_file, loaded.spec.domain, status, data)
    else:
        console.out(report.to_text(console.notes))
    if not report.ok:
        raise typer.Exit(EXIT_ERROR)


def _verify_customers(
    console: Console, loaded: LoadedSpec, nameserver: str | None, timeout: float, json_: bool
) -> None:
    """A host file: its own domain is no SIP domain; each customer's is verified in turn."""
    from dataclasses import replace

    from sipctl.errors import SpecError
    from sipctl.reconciler.verify.run import run_verify

    if json_:
        raise SpecError(
            f"{loaded.source}: --json verifies one domain: give a customer's file "
            "(a host file serves several)"
        )
    failed = False
    for customer in loaded.spec.customers:
        console.out(f"=== {customer.domain} ===")
        report = run_verify(replace(loaded, spec=customer), nameserver, timeout, log=console.detail)
        console.out(report.to_text(console.notes))
        failed = failed or not report.ok
    if not loaded.spec.customers:
        console.out(f"{loaded.source}: no customer file of this directory names this host")
    if failed:
        raise typer.Exit(EXIT_ERROR)
