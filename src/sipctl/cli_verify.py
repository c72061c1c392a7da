"""``sipctl verify``: the typer command, registered by ``cli.py``::

    from sipctl.cli_verify import verify_command
    app.command("verify")(verify_command)

Exit 0 when every check holds, 1 otherwise (defects, failed probes, or an error).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sipctl.cli_params import Nameserver, NoColor, SpecFiles, number_option
from sipctl.errors import EXIT_ERROR

if TYPE_CHECKING:
    from sipctl.output import Console
    from sipctl.reconciler.gitops.multi import Domain, Report
    from sipctl.reconciler.gitops.spec_files import Skipped
    from sipctl.schemas.loader import LoadedSpec


def verify_command(
    spec_file: SpecFiles = None,
    nameserver: Nameserver = None,
    json_: Annotated[
        bool,
        typer.Option("--json", help="Print the report as JSON (sipctl schema --kind verify)."),
    ] = False,
    timeout: Annotated[
        float,
        number_option("--timeout", low=0.1, high=120.0, help="Seconds for each lookup and probe."),
    ] = 5.0,
    no_color: NoColor = False,
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

    With several specs (-f a.yaml -f b.yaml, or -f DIR: the files plan takes), each SIP
    domain is verified once, in turn, under its title (a host's file stands for its
    customers whose own files are not named), and a summary table ends the output; --json
    prints one document with every domain's report. A host's file alone verifies its
    customers one after the other, and --json prints them in that one document too. Exit 1
    when any domain failed.

    Examples:

      sipctl verify -f sipctl.yaml --nameserver 127.0.0.1

      sipctl verify -f customers/ --json > verify.json

      sipctl verify -f pbx1.yaml --json > verify.json   # a host's customers
    """
    # Late imports: cli.py imports this module, and a command's imports stay off --help.
    from sipctl.cli_common import start_console as _start
    from sipctl.cli_domains import DomainRun
    from sipctl.reconciler.verify.report import VerifyReport
    from sipctl.reconciler.verify.run import run_verify

    console = _start(no_color, verbose)
    fmt = "json" if json_ else "human"
    with DomainRun(
        console, spec_file or [Path("sipctl.yaml")], None, fmt=fmt, kind="verify"
    ) as run:
        run.load()
        if run.one:
            run.settle()  # a spec that does not load: its error is the command's
            if not (json_ and _is_host(run.domains[0])):
                _verify_one(console, run.domains[0], nameserver, timeout, json_)
                return
            # a host's file alone, --json: its customers in the envelope of several domains,
            # as when it is named among other host files
            run.as_many()

        def work(domain: Domain) -> None:
            assert domain.loaded is not None
            report = run_verify(domain.loaded, nameserver, timeout, log=console.detail)
            domain.report, domain.status = report, "ok" if report.ok else "failed"

        def text_of(report: Report) -> str:
            assert isinstance(report, VerifyReport)
            return report.to_text(console.notes) + "\n"

        def code_of(domain: Domain) -> int:
            return EXIT_ERROR if domain.status == "failed" else 0

        run.domains = _sip_domains(run.domains, run.skipped)
        run.each("verifying", work, parallel=1)
        run.show_reports("verify", fmt, text_of)
        run.summarize(fmt, ("DEFECTS", _defects))
    run.settle(code_of)


NO_CUSTOMER = "no customer file of this directory names this host"


def _is_host(domain: Domain) -> bool:
    return domain.loaded is not None and domain.loaded.spec.hosting is not None


def _verify_one(
    console: Console, domain: Domain, nameserver: str | None, timeout: float, json_: bool
) -> None:
    """A spec named alone: its report, or (as text) a host's customers' one after the other."""
    from sipctl.reconciler.verify.run import run_verify

    loaded = domain.loaded
    assert loaded is not None
    if loaded.spec.hosting is not None:
        _verify_customers(console, loaded, nameserver, timeout)
        return
    report = run_verify(loaded, nameserver, timeout, log=console.detail)
    if json_:
        from sipctl.cli_common import print_json_report

        status = "ok" if report.ok else "failed"
        data = report.to_json()
        print_json_report(console, "verify", domain.path, loaded.spec.domain, status, data)
    else:
        console.out(report.to_text(console.notes))
    if not report.ok:
        raise typer.Exit(EXIT_ERROR)


def _sip_domains(domains: list[Domain], skipped: list[Skipped]) -> list[Domain]:
    """Each SIP domain of a run over several files once: a host's file stands for each of
    its customers whose own file is not in the run (it is no SIP domain itself). A host
    that serves no customer is named in ``skipped``, as a host's file alone says it."""
    from dataclasses import replace

    from sipctl.reconciler.gitops.multi import Domain
    from sipctl.reconciler.gitops.spec_files import Skipped

    def host_of(domain: Domain) -> LoadedSpec | None:
        loaded = domain.loaded
        ok = loaded is not None and not domain.failed and loaded.spec.hosting is not None
        return loaded if ok else None

    named = {d.name for d in domains if host_of(d) is None}
    result: list[Domain] = []
    for domain in domains:
        host = host_of(domain)
        if host is None:
            result.append(domain)
            continue
        if not host.spec.customers:
            skipped.append(Skipped(domain.path, NO_CUSTOMER))
        for customer in host.spec.customers:
            if customer.domain not in named:
                named.add(customer.domain)
                result.append(Domain(domain.path, loaded=replace(host, spec=customer)))
    return result


def _defects(domain: Domain) -> str:
    from sipctl.reconciler.verify.report import VerifyReport

    report = domain.report
    if not isinstance(report, VerifyReport):
        return "-"
    failed = [p for p in report.probes if not p.ok]
    return str(len(report.defects) + len(failed))


def _verify_customers(
    console: Console, loaded: LoadedSpec, nameserver: str | None, timeout: float
) -> None:
    """A host file: its own domain is no SIP domain; each customer's is verified in turn."""
    from dataclasses import replace

    from sipctl.reconciler.verify.run import run_verify

    failed = False
    for customer in loaded.spec.customers:
        console.out(f"=== {customer.domain} ===")
        report = run_verify(replace(loaded, spec=customer), nameserver, timeout, log=console.detail)
        console.out(report.to_text(console.notes))
        failed = failed or not report.ok
    if not loaded.spec.customers:
        console.out(f"{loaded.source}: {NO_CUSTOMER}")
    if failed:
        raise typer.Exit(EXIT_ERROR)
