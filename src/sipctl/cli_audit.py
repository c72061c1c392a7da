"""``sipctl audit``: the typer command, registered by ``cli.py``::

    from sipctl.cli_audit import audit_command
    app.command("audit")(audit_command)

Exit 0 when nothing at or above ``--fail-on`` was found, 2 with such findings, 1 when the
audit could not run.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from sipctl.cli_params import Nameserver, NoColor, SpecOption, number_option


class FailOn(StrEnum):
    """The lowest severity that fails the audit."""

    low = "low"
    medium = "medium"
    high = "high"


def audit_command(
    spec_file: SpecOption = Path("sipctl.yaml"),
    nameserver: Nameserver = None,
    json_: Annotated[
        bool,
        typer.Option("--json", help="Print the report as JSON (sipctl schema --kind audit)."),
    ] = False,
    rate: Annotated[
        float,
        number_option("--rate", low=1.0, high=200.0, help="SIP requests per second, at most."),
    ] = 20.0,
    max_seconds: Annotated[
        float,
        number_option("--max-seconds", low=5.0, high=600.0, help="Time budget of the whole audit."),
    ] = 50.0,
    ban_test: Annotated[
        bool,
        typer.Option(
            "--ban-test",
            help="Also check that fail2ban bans this host after maxretry wrong calls, then "
            "lift the ban. Only from a disposable address the jail does not ignore.",
        ),
    ] = False,
    fail_on: Annotated[
        FailOn,
        typer.Option(
            "--fail-on",
            metavar="low|medium|high",
            help="Exit 2 only for findings of this severity or graver (critical always "
            "fails); lower ones are printed.",
        ),
    ] = FailOn.medium,
    no_color: NoColor = False,
    verbose: Annotated[
        int, typer.Option("-v", "--verbose", count=True, help="Say what is sent, and where.")
    ] = 0,
) -> None:
    """Attack your own domain as a toll fraudster and a scanner would, and say what leaks.

    Reads the live guest dialplan through the asterisk target (every way a guest reaches
    something other than a declared name or the reject path), then, resolved as a caller
    would (RFC 3263), calls outside-line, international, feature-code and special dial
    strings (each call ended at once), tries REGISTER and MESSAGE as a guest, compares
    declared and undeclared names and, as sipvicious does, known and unknown extensions in
    From (enumeration), and knocks on management ports the spec does not open. No real
    phone rings: a declared name is called only when the live PBX says none of its
    extensions' endpoints has a contact.

    A hoster's files (see: sipctl docs hosting): a customer's file is attacked at its domain on its
    host's PBX; a host's file judges every customer's guest context. Both check that no
    customer's guests reach another customer's names or phones, in the dialplan and by
    calling one customer's names at another's domain (To at either domain), with the same
    rule: no phone rings.

    Exit codes: 0 nothing at or above --fail-on found, 2 such findings, 1 could not run.
    """
    from sipctl.cli_common import load_checked as _load
    from sipctl.cli_common import start_console as _start
    from sipctl.reconciler.audit.run import AuditLimits, run_audit

    console = _start(no_color, verbose)
    if json_:  # a refusal is JSON too (cli_boundary)
        console.promise_json("audit", str(spec_file))
    if nameserver is not None:  # refused as verify refuses it, whatever the audit then asks
        from sipctl.providers.dns.query import parse_nameserver

        parse_nameserver(nameserver)
    loaded = _load(spec_file)
    limits = AuditLimits(rate=rate, seconds=max_seconds)
    report = run_audit(loaded, nameserver, limits=limits, ban_test=ban_test, log=console.detail)
    report.fail_on = fail_on.value
    if json_:
        from sipctl.cli_common import print_json_report

        status = {0: "clean", 2: "findings"}.get(report.exit_code, "incomplete")
        data = report.to_json()
        print_json_report(console, "audit", spec_file, loaded.spec.domain, status, data)
    else:
        console.out(report.to_text(console.notes))
    raise typer.Exit(report.exit_code)
