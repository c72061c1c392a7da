"""``sipctl force-unlock``, ``sipctl drift`` and ``sipctl import``: running sipctl from CI."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sipctl.cli_params import (
    NoColor,
    Parallel,
    Shard,
    SpecFiles,
    SpecOption,
    TargetLayers,
    Verbose,
)
from sipctl.errors import SipctlError, SpecError
from sipctl.output import Console

if TYPE_CHECKING:
    from sipctl.providers.base import RunContext
    from sipctl.reconciler.engine import PlanRun
    from sipctl.reconciler.gitops.importer import Imported
    from sipctl.reconciler.gitops.multi import Domain, Report
    from sipctl.schemas.loader import LoadedSpec
    from sipctl.schemas.spec import Ssh

from sipctl.cli_common import (
    load_checked,
    offline_problems,
    print_plan,
    run_context,
    start_console,
)

# The source of an imported spec printed, not written (a name no file has)
PRINTED_SPEC = "<imported spec>"


def printed(loaded: LoadedSpec) -> bool:
    """True when the imported spec went to stdout: there is no file to name."""
    return loaded.source == PRINTED_SPEC


def force_unlock(
    lock_id: Annotated[
        str,
        typer.Argument(
            help="The ID of the lock to remove, as printed by the run that found it held.",
            metavar="ID",
        ),
    ],
    spec_file: SpecOption = Path("sipctl.yaml"),
    no_color: NoColor = False,
    verbose: Verbose = 0,
) -> None:
    """Remove a lock left behind by a run that died, and only the lock with this ID.

    A DNS lock (TXT _sipctl-lock.<domain>) outlives a killed run until it expires
    (--lock-ttl of that run); this removes it sooner. It is removed only if it still
    holds exactly this ID, so a lock taken meanwhile by another run is never touched.
    Host and zone-file locks are flocks: they end with their process and need no unlock.

    Example: sipctl force-unlock 3f2a9c0d1e4b5a67 -f mysite.yaml
    """
    console = start_console(no_color, verbose)
    from sipctl.reconciler.gitops.locking import force_unlock as remove_lock
    from sipctl.reconciler.gitops.locking import lock_sites

    loaded = load_checked(spec_file)
    with run_context(loaded.base_dir, console) as ctx:
        for line in remove_lock(lock_sites(loaded, ctx), lock_id.strip().lower()):
            console.out(line)


def drift(
    spec_file: SpecFiles = None,
    json_: Annotated[
        bool, typer.Option("--json", help="Print the drift as JSON (sipctl schema --kind drift).")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help=(
                "Also save the drift as JSON (what --json prints) to this file, while the text"
                " goes to stdout: one run reads the live systems once for both. Refused before"
                " anything is read when the file cannot be written there."
            ),
            metavar="FILE",
            readable=False,  # written, never read
        ),
    ] = None,
    target: TargetLayers = None,
    parallel: Parallel = 4,
    shard: Shard = None,
    no_color: NoColor = False,
    verbose: Verbose = 0,
) -> None:
    """List what changed on the live side since the last apply, per layer. Changes nothing,
    and proposes nothing: 'sipctl plan' shows what apply would do about it.

    Every successful apply records a hash of each resource it left live, where the target
    lives: DNS in TXT _sipctl-state.<domain> (public: an opaque apply id and hashes; who
    and when stay in the applying machine's /var/lib/sipctl); a zone file or a host in
    /var/lib/sipctl on that machine or host (the certificate and the page with the asterisk
    host's). drift compares the live state with that record, not with the spec, so a spec
    change that was not applied yet is not drift.

    With several specs (-f a.yaml -f b.yaml, or -f DIR: the files plan takes), each domain
    is read on its own (one domain's error does not hide another's drift), each report
    stands under its domain's title and a summary table ends the output; --json prints one
    document with every domain's report; --shard I/N reads the share plan and apply
    --shard I/N take. --out FILE keeps that document in FILE from the
    same run (the nightly job's artifact) while stdout gets the text for the job's log;
    FILE's secrets are masked as on the screen, and a run that fails leaves its error there
    as --json would print it.

    Exit codes: 0 no drift, 2 drift, 1 error (also: no record of a last apply). Of several
    domains the worst wins: 1 when any domain failed, else 2 when any drifted.

    Examples:

      sipctl drift -f sipctl.yaml --json > drift.json   # nightly

      sipctl drift -f customers/                        # each domain there

      sipctl drift -f customers/ --out drift.json       # JSON kept, text shown

      sipctl drift -f customers/ --shard 2/4            # the second of four jobs
    """
    console = start_console(no_color, verbose)
    from sipctl.cli_domains import DomainRun
    from sipctl.providers.bookkeeping import check_local_state_dir
    from sipctl.reconciler.gitops.drift import (
        DriftReport,
        check_drift_result,
        find_drift,
        render_drift,
    )

    def work(domain: Domain) -> None:
        assert domain.plan_run is not None and domain.ctx is not None
        report = find_drift(domain.plan_run, domain.ctx)
        check_drift_result(report)
        domain.report, domain.status = report, report.status

    def code_of(domain: Domain) -> int:
        return domain.report.exit_code if isinstance(domain.report, DriftReport) else 0

    def drifted(domain: Domain) -> str:
        return str(domain.report.count) if isinstance(domain.report, DriftReport) else "-"

    def text_of(report: Report) -> str:
        assert isinstance(report, DriftReport)
        return render_drift(report)

    fmt = "json" if json_ else "human"
    specs = spec_file or [Path("sipctl.yaml")]
    with DomainRun(console, specs, shard, fmt=fmt, kind="drift", json_out=out) as run:
        # before any live system is read: a state directory drift cannot read its records
        # from failed each domain late, as "... is not a directory"
        check_local_state_dir(os.environ, writes=False)
        run.read(target, parallel)
        run.each("comparing", work, parallel)
        run.show_reports("drift", fmt, text_of)
        run.summarize(fmt, ("DRIFTED", drifted))
    run.settle(code_of)


def import_(
    domain: Annotated[str, typer.Option("--domain", help="The SIP domain (sip:user@DOMAIN).")],
    dns_url: Annotated[
        str,
        typer.Option(
            "--dns",
            help="Where the zone is: rfc2136://SERVER[:PORT]/ZONE?key=NAME&secret_env=VAR "
            "(also secret_file=, algorithm=), or zonefile:PATH, or octodns:CONFIG (a YAML file "
            "with octoDNS's provider config: class and arguments, secrets as env/NAME).",
            metavar="URL",
        ),
    ],
    asterisk: Annotated[
        str | None,
        typer.Option(
            "--asterisk",
            help="Also read the PBX's guest setup: ssh://root@pbx, local, or dir:PATH.",
            metavar="TARGET",
        ),
    ] = None,
    config_dir: Annotated[
        str, typer.Option("--config-dir", help="Asterisk's configuration directory.")
    ] = "/etc/asterisk",
    ssh_key: Annotated[
        str | None,
        typer.Option(
            "--ssh-key",
            help="SSH private key for reading --asterisk ssh://, written into the spec as "
            "asterisk.ssh.key_file (a relative path named from the spec's directory), so its "
            "plan and apply log in with it too. Under a runner profile or CI the admin lists "
            "that key file as a credential (kind: ssh_key; see: sipctl docs security), or the "
            "plan is refused.",
        ),
    ] = None,
    known_hosts: Annotated[
        str,
        typer.Option(
            "--known-hosts",
            help="known_hosts file the PBX's host key is checked against for reading "
            "--asterisk ssh:// now. Not written into the spec: its ssh.known_hosts stays the "
            "runner's own ~/.ssh/known_hosts, the only one a runner profile or CI accepts "
            "unless the admin lists another file in the profile's known_hosts.",
        ),
    ] = "~/.ssh/known_hosts",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Write the spec here (default: print it).", dir_okay=False
        ),
    ] = None,
    adopt: Annotated[
        bool,
        typer.Option(
            "--adopt",
            help="Take ownership: apply the imported spec at once (under the same locks and "
            "safety checks as 'sipctl apply'), so that 'sipctl plan' of it shows no changes. "
            "In DNS that is only sipctl's bookkeeping (TXT _sipctl.<domain> and the record "
            "for 'sipctl drift'); on the PBX sipctl's own files, one #include line in each "
            "parent file and the RTP range in use. Refused when anything else would change. "
            "Needs --out.",
        ),
    ] = False,
    no_color: NoColor = False,
    verbose: Verbose = 0,
) -> None:
    """Write the spec of a SIP setup made by hand, read from what is live.

    Reads the SIP NAPTR/SRV records and the A/AAAA of SRV targets inside the zone, and
    (with --asterisk) the classic guest context: allowguest/context in sip.conf or the
    anonymous endpoint in pjsip.conf, with extensions like exten => director,1,Dial(SIP/105).
    Applying the spec written changes no DNS record; anything the spec cannot express is
    listed. On the PBX the spec names a guest context of sipctl's own (sipctl-guest), never
    the hand-made one, so that sipctl's dialplan does not merge with it; the hand-made
    context is left unused and can be deleted after the first apply. Reads only, and says
    what --adopt would write, unless --adopt.

    A PBX that is a sipctl host of several customer domains (see: sipctl docs hosting) is imported
    as a directory (--out DIR): a host file named after --domain's first label (--domain is
    the host's own domain) and one file per customer; {domain} in --dns stands for each
    customer's zone (zonefile:zones/{domain}.zone), an rfc2136:// URL without a zone reads
    each customer's own.

    Example:

    \b
      sipctl import --domain mysite.ru --out sipctl.yaml \\
        --dns 'rfc2136://192.0.2.53/mysite.ru?key=sipctl&secret_env=SIPCTL_TSIG_SECRET' \\
        --asterisk ssh://root@pbx.mysite.ru
    """
    console = start_console(no_color, verbose)
    from sipctl.reconciler.gitops import importer
    from sipctl.schemas.loader import load_spec, load_spec_text
    from sipctl.schemas.names import check_hostname
    from sipctl.schemas.spec import Ssh

    if adopt and out is None:
        raise SpecError("--adopt needs --out: the spec must be kept to be applied later")
    if adopt:
        from sipctl.providers.transport.read_gate import refuse_apply

        refuse_apply(os.environ)  # --adopt applies: refused before anything is read
    try:
        domain = check_hostname(domain.strip().rstrip("."))
    except ValueError as exc:
        raise SpecError(f"--domain {domain!r}: {exc}") from None
    if out is not None:  # before anything is read, as plan --out is
        from sipctl.cli_report_file import refuse_link

        refuse_link(out)
    base_dir = (out.parent if out is not None else Path.cwd()).resolve()
    written: dict[Path, list[str]] | None = None
    with run_context(Path.cwd(), console) as ctx:
        ssh = Ssh(key_file=ssh_key, known_hosts=known_hosts)
        pbx = importer.read_asterisk(asterisk, config_dir, ssh, ctx) if asterisk else None
        if pbx is not None and pbx.customers:
            # A host of several customer domains: a host file and one per customer.
            where = (asterisk or "", config_dir, ssh)
            written = _import_host(console, ctx, domain, dns_url, pbx, where, out, adopt)
        else:
            found = importer.read_dns(domain, dns_url, ctx, Path.cwd())
            _relative_zone_file(found, base_dir if out is not None else None)
        if asterisk is not None and pbx is not None and written is None:
            # transports Asterisk shows and DNS does not (wss) join the DNS's
            for name, transport in pbx.data.pop("transports", {}).items():
                found.data.setdefault("transports", {}).setdefault(name, transport)
            found.data.update(pbx.data)
            found.notes.extend(pbx.notes)
            found.gaps.extend(pbx.gaps)
            found.blockers.extend(pbx.blockers)
            importer.fit_rtp(found)
            if "wss" in found.data.get("transports", {}):
                page = importer.read_webrtc(asterisk, config_dir, domain, ssh, ctx)
                found.data.update(page.data)
                found.notes.extend(page.notes)
                found.gaps.extend(page.gaps)
            if out is not None:
                _moved_places(found.data, base_dir)
            _written_key_file(found.data, ssh_key, base_dir)
    if written is not None:
        for path, blockers in written.items():
            _check_import(console, load_spec(path), False, blockers)
        return
    header = [
        f"sipctl spec imported from the live setup of {domain}",
        f"by 'sipctl import' on {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}.",
        *(f"note: {n}" for n in found.notes),
        *(f"not expressible, so a plan will show it: {g}" for g in found.gaps),
        *(f"blocks an apply: {b}" for b in found.blockers),
    ]
    text = importer.spec_yaml(found.data, header)
    source = str(out) if out is not None else PRINTED_SPEC
    loaded = load_spec_text(text, source=source, base_dir=base_dir)  # it must validate
    problems = offline_problems(loaded)  # as 'sipctl validate' would: nothing is written
    if problems:
        raise SpecError(
            "the spec made from the live setup does not pass 'sipctl validate', so none is "
            "written: give the live setup what the lines below ask for (an SRV target inside "
            "the zone needs its A or AAAA record) and import again; if it lacks nothing, this "
            "is a bug in sipctl's import, please report it:\n  " + "\n  ".join(problems)
        )
    if out is None:
        console.out(text, end="")
    else:
        _write_spec(out, text)
        console.info(f"Wrote {out}.")
    for gap in found.gaps:
        console.warn(f"the spec cannot express this, so a plan will show it: {gap}")
    _check_import(console, loaded, adopt, found.blockers)


def _relative_zone_file(found: Imported, base_dir: Path | None) -> None:
    """A zone file read from the working directory, named from where the spec is written."""
    if "file" in found.data["dns"] and base_dir is not None:
        zone_file = (Path.cwd() / found.data["dns"]["file"]).resolve()
        found.data["dns"]["file"] = os.path.relpath(zone_file, base_dir)


def _import_host(
    console: Console,
    ctx: RunContext,
    domain: str,
    dns_url: str,
    pbx: Imported,
    where: tuple[str, str, Ssh],
    out: Path | None,
    adopt: bool,
) -> dict[Path, list[str]]:
    """A host of several customer domains: write its host file (named after --domain's first
    label) and one file per customer into the directory --out; returns each file written
    with what blocks its apply."""
    from sipctl.reconciler.gitops import importer

    target, config_dir, ssh = where
    count = len(pbx.customers)
    if out is None or (out.exists() and not out.is_dir()):
        raise SpecError(
            f"the PBX is a host of {count} customer domain(s): give --out DIR, the directory "
            "for its host file and one file per customer (see: sipctl docs hosting)"
        )
    if adopt:
        raise SpecError(
            "--adopt takes over one company's setup; a host of several customers is imported "
            "without it: review the files, then 'sipctl apply -f DIR'"
        )
    if "wss" in pbx.data.get("transports", {}):
        importer.read_host_webrtc(target, config_dir, domain, pbx, ssh, ctx)
    customers_dns = {}
    for customer in pbx.customers:
        url = importer.hosting_dns_url(dns_url, customer, count)
        customers_dns[customer] = importer.read_dns(customer, url, ctx, Path.cwd())
        _relative_zone_file(customers_dns[customer], out.resolve())
    files = importer.host_files(domain, pbx, customers_dns)
    _moved_places(files[importer.host_name(domain)].data, out)
    _written_key_file(files[importer.host_name(domain)].data, ssh.key_file, out.resolve())
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    texts: dict[Path, str] = {}
    for stem, found in files.items():
        role = "the host file" if "hosting" in found.data else "a customer file"
        header = [
            f"sipctl spec imported from the live setup of {domain}: {role}",
            f"by 'sipctl import' on {stamp}.",
            *(f"note: {n}" for n in found.notes),
            *(f"not expressible, so a plan will show it: {g}" for g in found.gaps),
            *(f"blocks an apply: {b}" for b in found.blockers),
        ]
        texts[out / f"{stem}.yaml"] = importer.spec_yaml(found.data, header)
    _check_host_files(texts, out)  # every file, before any is written
    out.mkdir(parents=True, exist_ok=True)
    written: dict[Path, list[str]] = {}
    for (path, text), found in zip(texts.items(), files.values(), strict=True):
        _write_spec(path, text)
        written[path] = found.blockers
        for gap in found.gaps:
            console.warn(f"{path}: the spec cannot express this, so a plan will show it: {gap}")
    console.info(f"Wrote {len(written)} files into {out}: a host file and {count} customer(s).")
    return written


def _check_host_files(texts: dict[Path, str], out: Path) -> None:
    """The files of a host's import loaded together, as 'sipctl validate DIR' loads a hosting
    directory (a customer is checked against its host file beside it), in a directory of
    their own: when any fails, none is written, so no half of a host is left behind."""
    import tempfile

    from sipctl.cli_report_file import refuse_link
    from sipctl.schemas.hosting_reach import reading_once
    from sipctl.schemas.loader import load_spec

    for path in texts:
        refuse_link(path)  # a link among them is refused before anything is written
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="sipctl-import-") as scratch:
        staged = [Path(scratch) / path.name for path in texts]
        for at, text in zip(staged, texts.values(), strict=True):
            at.write_text(text, encoding="utf-8")
        with reading_once(staged):
            for at in staged:
                try:
                    found = offline_problems(load_spec(at))
                except SpecError as exc:
                    found = exc.problems or [exc.message]
                # named as the file it would be, not the scratch copy
                problems.extend(p.replace(str(at.parent), str(out)) for p in found)
    if problems:
        raise SpecError(
            "the files made from the live setup do not pass 'sipctl validate', so none is "
            "written: give the live setup what the lines below ask for and import again; if "
            "it lacks nothing, this is a bug in sipctl's import, please report it:\n  "
            + "\n  ".join(dict.fromkeys(problems))  # a host's check names its customers' too
        )


def _write_spec(path: Path, text: str) -> None:
    """An imported spec, written whole, never through a link: the directory is often a
    checkout, where a merge request can make ``hoster/alpha.example.yaml`` a link to
    ``~/.ssh/authorized_keys``. Scrubbed as the console scrubs the spec it prints: its
    comments quote the live dialplan (a gap), where a trunk's password may stand, and the
    file is made to be committed."""
    from sipctl.cli_common import current_console, write_output_file
    from sipctl.cli_report_file import refuse_link

    refuse_link(path)
    write_output_file(path, current_console().scrub(text), "the spec", 0o644)


def _moved_places(data: dict[str, Any], out: Path) -> None:
    """The relative ``dir:`` places of an imported spec (``asterisk.target``, the root of
    ``webrtc.publish``), read from here, named from ``out``, the directory the spec is
    written to: written elsewhere, they named directories beside it that do not exist."""
    asterisk = data.get("asterisk", {})
    if "target" in asterisk:
        asterisk["target"] = _moved_target(asterisk["target"], out)
    webrtc = data.get("webrtc", {})
    if "publish" in webrtc:
        from sipctl.schemas.values import split_publish

        root, under = split_publish(webrtc["publish"])
        webrtc["publish"] = f"{_moved_target(root, out)}:{under}"


def _written_key_file(data: dict[str, Any], ssh_key: str | None, base_dir: Path) -> None:
    """``--ssh-key`` read the PBX; the spec logs in with it too (without it, its first plan
    could not connect): as typed when absolute (``~`` included), else named from
    ``base_dir``, the spec's directory (a spec's relative key_file is read from there)."""
    asterisk = data.get("asterisk", {})
    if ssh_key is None or not str(asterisk.get("target", "")).startswith("ssh://"):
        return  # a dir: or local PBX logs in nowhere
    key = ssh_key
    if not Path(key).expanduser().is_absolute():
        key = os.path.relpath(Path.cwd() / key, base_dir)
    asterisk.setdefault("ssh", {})["key_file"] = key


def _moved_target(target: str, out: Path) -> str:
    """A relative ``dir:`` target read from here, named from ``out`` (a spec's dir: target
    is read from the spec's directory)."""
    if not target.startswith("dir:") or Path(target[4:]).is_absolute():
        return target
    return "dir:" + os.path.relpath(Path.cwd() / target[4:], out.resolve())


def _check_import(console: Console, loaded: LoadedSpec, adopt: bool, blockers: list[str]) -> None:
    """Plan the imported spec: say what applying it would change; with --adopt, apply it
    when that is only sipctl's own bookkeeping, files and include lines."""
    from sipctl.cli_domains import report_outcome
    from sipctl.reconciler.engine import check_safe, make_plan
    from sipctl.reconciler.gitops.guarded import lock_and_apply

    if blockers and adopt:
        raise SipctlError(
            f"--adopt stopped before changing anything (the spec is written to "
            f"{loaded.source}):\n  " + "\n  ".join(blockers)
        )
    for blocker in blockers:
        console.warn(blocker)
    # With a blocker the Asterisk layer cannot be planned (its provider refuses), so only
    # the DNS is checked; nothing is applied then.
    layers = ["dns"] if blockers else None
    scope = "its DNS layer" if blockers else "it"
    with run_context(loaded.base_dir, console) as ctx:
        if not adopt:
            _judge_import_plan(console, loaded, make_plan(loaded, ctx, layers), scope, adopt)
            return

        def judge_and_show(fresh: PlanRun) -> None:
            # under the locks, on the one read: what is judged is what is applied
            if _judge_import_plan(console, loaded, fresh, scope, adopt):
                print_plan(console, fresh.plan.to_json(), "human")
                check_safe(fresh.plan, False)

        outcome = lock_and_apply(
            loaded, ctx, layers, before=judge_and_show, say=console.info, detail=console.detail
        )
        if outcome.report is None:
            return  # no changes (said so); the record of the last apply is written
        report_outcome(console, outcome)
        console.info(
            f"Adopted: sipctl now owns the SIP setup of {loaded.spec.domain} "
            f"('sipctl plan -f {loaded.source}' shows no changes)."
        )


def _judge_import_plan(
    console: Console, loaded: LoadedSpec, plan_run: PlanRun, scope: str, adopt: bool
) -> bool:
    """Say what applying the imported spec changes; True when --adopt may apply it (only
    sipctl's own parts change). With --adopt and a change a caller would see, stop."""
    from sipctl.reconciler.gitops.importer import bookkeeping_only, describe_changes

    changes = [(t.layer, c) for t, c in plan_run.plan.changes()]
    if not changes:
        console.info(f"A plan of {scope} shows no changes.")
        return False
    if not bookkeeping_only(changes, loaded.spec.domain):
        dns = sum(1 for layer, _ in changes if layer == "dns")
        spec = "FILE' (write it with --out FILE)" if printed(loaded) else f"{loaded.source}'"
        console.warn(
            f"a plan of it changes {dns} DNS record(s) a caller sees; see 'sipctl plan -f {spec}"
        )
        if adopt:
            raise SipctlError(
                "--adopt takes ownership only when no DNS record a caller sees would change"
            )
        return False
    if not adopt:
        console.info(f"A first apply of {scope} changes only sipctl's own parts (--adopt does it):")
        for line in describe_changes(changes, loaded.spec.domain):
            console.info(f"  {line}")
        return False
    return True
