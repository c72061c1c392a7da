"""The Asterisk layer's provider: guest access beside the admin's own configuration.

``read`` fetches the managed files, the parent files and ``rtp.conf`` in one batch, and
(when the target can run programs) asks the running Asterisk in one more round trip for its
transports, endpoints, identifier order and the reject sound. ``apply`` writes beside,
checks the old content is still what the plan saw, renames, keeps ``.sipctl.bak``, reloads
only what changed, checks that Asterisk took it, and on any failure puts the old files
back and reloads again.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from sipctl.errors import ProviderError
from sipctl.output import scrubbed
from sipctl.providers.asterisk.cli import (
    SHOW_ENDPOINTS,
    UNREACHABLE_HINT,
    RxAnswer,
    asterisk_program,
    dialplan_extensions,
    identifier_order_problem,
    parse_endpoint_names,
    parse_setting,
    parse_transports,
    query_programs,
    run_rx,
    rx_answers,
    sound_found,
)
from sipctl.providers.asterisk.edit import count_includes, read_rtp, set_include, set_rtp
from sipctl.providers.asterisk.guest_jumps import (
    allowed_jumps,
    check_jumps,
    jump_clis,
    jump_targets,
    not_checked,
)
from sipctl.providers.asterisk.http_conf import has_marks, read_http, restore, set_http
from sipctl.providers.asterisk.logger_conf import (
    ASTERISK_FILE,
    LOGGER_FILE,
    jail_log_problems,
    jail_watches_asterisk,
)
from sipctl.providers.asterisk.pjsip_global import read_user_agent, set_user_agent
from sipctl.providers.asterisk.wss_checks import (
    BINDV6ONLY,
    PROC_NET_TCP,
    SHOW_HTTP,
    SHOW_MODULES,
    ipv6_listener_problem,
    listening_tcp_ports,
    wss_problems,
)
from sipctl.providers.base import Provider, RunContext, UpdateRider
from sipctl.providers.load_mark import LoadMark
from sipctl.providers.transport.batch import Fetched, HostRead, fetch
from sipctl.providers.transport.host_profile import (
    host_profile_path,
    host_programs,
    offline_program,
)
from sipctl.providers.transport.pool import FileWrite, HostTransport
from sipctl.providers.transport.read_gate import GateReads, redact
from sipctl.providers.webrtc_page import host_record_path, unmanaged_page_note
from sipctl.reconciler.asterisk_conf import parse_sections
from sipctl.reconciler.plan import Change
from sipctl.reconciler.render.asterisk import (
    ANONYMOUS_ENDPOINT,
    DIALPLAN_FILE,
    GLOBAL_ADDRESS,
    GUEST_ENDPOINT,
    HTTP_ADDRESS,
    HTTP_ANY_VALUE,
    HTTP_FILE,
    HTTP_KEYS,
    PARENTS,
    PJSIP_FILE,
    RTP_ADDRESS,
    RTP_FILE,
    SIP_FILE,
    WSS_TRANSPORT,
    address_families,
    encrypts_media,
    file_address,
    file_value,
    guest_extensions,
    guest_identify_sections,
    http_settings,
    http_value,
    include_address,
    include_value,
    name_extensions,
    not_found_log_note,
    rtp_value,
    server_header_written,
    user_agent_value,
)
from sipctl.reconciler.render.asterisk_outbound import RESOLVER_MODULE, outbound_on
from sipctl.reconciler.render.asterisk_rooms import (
    CONFBRIDGE_FILE,
    CONFBRIDGE_PARENT,
    MINIMAL_PARENT,
    bridge_profiles,
    has_rooms,
)
from sipctl.reconciler.resources import Kept, LiveState, Resource
from sipctl.schemas.hosting import stale_bindings, unbound_contexts_note
from sipctl.schemas.loader import LoadedSpec
from sipctl.schemas.targets import parse_target

if TYPE_CHECKING:
    from sipctl.schemas.spec import Asterisk

MANAGED_FILES = (PJSIP_FILE, SIP_FILE, DIALPLAN_FILE, CONFBRIDGE_FILE)
# With transports.wss: which TCP ports are taken, and whether [::] takes IPv4 too
NETWORK_FILES = (*PROC_NET_TCP, BINDV6ONLY)
PARENT_FILES = tuple(sorted(set(PARENTS.values())))
RELOAD_PJSIP = "module reload res_pjsip.so"
RELOAD_DIALPLAN = "dialplan reload"
RELOAD_RTP = "module reload res_rtp_asterisk.so"
RELOAD_SIP = "sip reload"
RELOAD_CONFBRIDGE = "module reload app_confbridge.so"
LOAD_CONFBRIDGE = "module load app_confbridge.so"
SHOW_BRIDGE_PROFILES = "confbridge show profile bridges"
SHOW_CONFBRIDGE_MODULE = "module show like app_confbridge.so"
# With transports.tls: the guests' SDES-SRTP (and the browsers' DTLS-SRTP) need res_srtp.
SHOW_SRTP_MODULE = "module show like res_srtp.so"
# With outbound: PJSIP resolves other domains (NAPTR, SRV) through the unbound resolver.
SHOW_RESOLVER_MODULE = f"module show like {RESOLVER_MODULE}"
RELOAD_HTTP = "module reload http"
RELOAD_BY_HAND = "asterisk -rx 'core reload'"
# The plan's views put "asterisk: " before a skipped line; apply's report line carries it.
DIR_SKIPPED = "dir target, reload skipped (and the live checks of transports and sounds)"


@dataclass
class AsteriskKept(Kept):
    """What the Asterisk provider's read keeps for its apply.

    contents            every config file read, exactly (None: missing), by name
    confbridge_running  app_confbridge is running (else a new confbridge.conf needs a load,
                        not a reload)
    mark                the mark of files written and not loaded yet (``LoadMark``), as read
    """

    contents: dict[str, bytes | None] = field(default_factory=dict)
    confbridge_running: bool = True
    mark: bytes | None = None


class AsteriskProvider(Provider):
    """Guest access on one PBX, over ``local``, ``dir:`` or ``ssh://``."""

    layer: ClassVar[str] = "asterisk"
    name: ClassVar[str] = "asterisk"

    def __init__(self, loaded: LoadedSpec, ctx: RunContext) -> None:
        if loaded.spec.asterisk is None:
            raise ValueError("the spec has no asterisk section")
        self._loaded = loaded
        self._ctx = ctx
        self._section: Asterisk = loaded.spec.asterisk

    @property
    def target_id(self) -> str:
        return f"{parse_target(self._section.target).key}:{self._section.config_dir}"

    # --- paths and transport ------------------------------------------------------------------

    def _path(self, name: str) -> str:
        return posixpath.join(self._section.config_dir, name)

    def _transport(self) -> HostTransport:
        return self._ctx.transports.get(self._section.target, self._section.ssh)

    def _mark(self) -> LoadMark:
        return LoadMark("asterisk", self._section.config_dir, "Asterisk", RELOAD_BY_HAND)

    def _key(self) -> str:
        return f"{self._loaded.where(('asterisk', 'program'))}: asterisk.program"

    def _program(self, transport: HostTransport) -> tuple[str, ...]:
        """How Asterisk is reached on the target (its host profile; never the spec)."""
        return asterisk_program(self._ctx, transport, self._loaded)

    def _rx(self, clis: Sequence[str]) -> list[RxAnswer]:
        transport = self._transport()
        return run_rx(transport, self._program(transport), clis)

    # --- read ---------------------------------------------------------------------------------

    def _read_request(
        self, can_run: bool, desired: Sequence[Resource], gate: bool = False
    ) -> tuple[list[str], str | None, tuple[str, ...], list[str]]:
        """What ``read`` asks of the host: config file names, the page record, the network
        files and the CLI commands (``gate_reads`` hands the same to the read gate, with
        ``gate``: the guest jumps' command whether or not the spec jumps yet); the guest
        jumps' check (``guest_jumps``) rides last among the commands."""
        section = self._section
        names = [*MANAGED_FILES, *PARENT_FILES, RTP_FILE, HTTP_FILE]
        if jail_watches_asterisk(self._loaded.spec):
            names += [LOGGER_FILE, ASTERISK_FILE]  # the files Asterisk logs to (logger_conf)
        # Without a webrtc section that layer is not run: a page it published is only
        # noticed here, in the same batch (no round trip of its own).
        page_record = (
            host_record_path(section.config_dir, self._loaded.spec.domain)
            if self._loaded.spec.webrtc is None
            else None
        )
        # What the running Asterisk is asked does not depend on the files: one round trip,
        # with the host's TCP listeners and bindv6only for the checks of transports.wss.
        asks = can_run and section.ensure == "present"
        jumps = jump_clis(jump_targets(desired), gate)
        clis = [*self._live_clis(), *jumps] if asks else []
        network = NETWORK_FILES if asks and self._loaded.spec.transports.wss else ()
        return names, page_record, tuple(network), clis

    def gate_reads(self, desired: Sequence[Resource]) -> list[GateReads]:
        """What ``read`` asks of the host, for its read gate. The admin's own files may hold
        secrets (a phone's password, a trunk's register line): the gate hides their values,
        which plan never reads; sipctl's own files hold none."""
        names, page_record, network, clis = self._read_request(True, desired, gate=True)
        own = [self._path(n) for n in names if n in MANAGED_FILES]
        admins = [self._path(n) for n in names if n not in MANAGED_FILES]
        program = offline_program(self._ctx, "asterisk", self._section.program, self._key())
        programs = query_programs(program or ("asterisk",), clis)
        return [
            GateReads(
                self._section.target,
                files=(
                    *own,
                    self._mark().path,
                    *([page_record] if page_record else []),
                    *network,
                    host_profile_path(self._ctx.env),
                ),
                redacted=tuple(admins),
                programs=tuple(tuple(argv) for argv in programs),
            )
        ]

    def host_reads(self, desired: Sequence[Resource]) -> list[HostRead]:
        """The config files, the page record, the network files and the CLI commands: one
        round trip (the programs do not depend on the files), shared with the host's other
        layers."""
        transport = self._transport()
        names, page_record, network, clis = self._read_request(transport.can_run, desired)
        extra = [*([page_record] if page_record else []), *network]
        if transport.can_run:  # only an apply that reloads writes the mark
            extra.append(self._mark().path)
        program = self._program(transport) if clis else ()
        programs = query_programs(program, clis)
        return [
            HostRead(
                transport,
                files=(*(self._path(n) for n in names), *extra),
                programs=tuple(tuple(argv) for argv in programs),
                timeout=60.0,
            )
        ]

    def read(self, desired: Sequence[Resource]) -> LiveState:
        return self.read_fetched(desired, fetch(self.host_reads(desired)))

    def read_fetched(self, desired: Sequence[Resource], fetched: Sequence[Fetched]) -> LiveState:
        section = self._section
        transport = self._transport()
        names, page_record, network, clis = self._read_request(transport.can_run, desired)
        (got,) = fetched
        found, answers = got.files, rx_answers(clis, got.results)
        targets = jump_targets(desired) if section.ensure == "present" else []
        jumps = len(jump_clis(targets)) if clis else 0
        answers, jump_answers = answers[: len(answers) - jumps], answers[len(answers) - jumps :]
        contents: dict[str, bytes | None] = {n: found[self._path(n)].content for n in names}
        live = LiveState()
        live.kept = AsteriskKept(contents=contents)
        # The admin's files are fingerprinted with their secret values hidden, as the read
        # gate answers them: a plan through the gate and one through a root login agree, and
        # no hash of a file with a short secret in it is ever made (it would tell the secret).
        live.fingerprint_extra = {
            n: _fingerprint(contents[n], hidden=n not in MANAGED_FILES, secrets=self._ctx.secrets)
            for n in names
        }
        for name in MANAGED_FILES:
            content = contents[name]
            if content is not None:
                live.resources[file_address(name)] = file_value(name, _text(content))
            parent = PARENTS[name]
            count = count_includes(contents[parent], name, section.config_dir)
            if count:
                live.resources[include_address(parent)] = include_value(name, count)
        wants_http = any(r.address == HTTP_ADDRESS for r in desired)
        if wants_http or has_marks(contents[HTTP_FILE]):
            live.resources[HTTP_ADDRESS] = http_value(read_http(contents[HTTP_FILE], HTTP_KEYS))
        pjsip = contents[GLOBAL_ADDRESS.name]
        if any(r.address == GLOBAL_ADDRESS for r in desired) or has_marks(pjsip):
            live.resources[GLOBAL_ADDRESS] = user_agent_value(section, read_user_agent(pjsip))
        if transport.can_run:
            mark = self._mark().path
            live.kept_as(AsteriskKept).mark = found[mark].content
            self._mark().read(found[mark].content, live, self.target_id)
        if page_record is not None:
            note = unmanaged_page_note(found[page_record].content, page_record)
            if note:
                live.notes.append(note)
        if section.ensure == "present":
            for note in (
                not_found_log_note(self._loaded.spec),
                unbound_contexts_note(self._loaded.spec),
                *stale_bindings(self._loaded),
            ):
                if note:
                    live.notes.append(note)
            if contents[RTP_FILE] is not None:
                start, end = read_rtp(contents[RTP_FILE])
                live.resources[RTP_ADDRESS] = rtp_value(start, end)
            self._check_files(contents, live)
            live.problems.extend(
                jail_log_problems(
                    self._loaded.spec,
                    self._loaded.where,
                    contents.get(LOGGER_FILE),
                    contents.get(ASTERISK_FILE),
                    section.target,
                )
            )
            if transport.can_run:
                self._check_live(contents, answers, live, {p: found[p].content for p in network})
                self._check_jumps(transport, targets, [*answers, *jump_answers], live)
            else:
                live.skipped.append(DIR_SKIPPED)
                if targets:
                    why = f"asterisk.target {section.target} is a directory, no running Asterisk"
                    live.skipped.append(not_checked(targets, why))
        elif not transport.can_run:
            live.skipped.append(DIR_SKIPPED)
        return live

    def _check_jumps(
        self,
        transport: HostTransport,
        targets: list[tuple[str, str]],
        answers: list[RxAnswer],
        live: LiveState,
    ) -> None:
        """Refuse guest jumps into the admin's extensions that can call out (``answers``:
        the live checks' and then the jumps' own, ``jump_clis``)."""
        if not targets:
            return
        profile = host_programs(self._ctx, transport)
        where = f"{profile.path} on {self._section.target}"
        allowed = allowed_jumps(profile.profile)
        check = check_jumps(self._loaded, targets, answers, allowed, where)
        live.host_hazards.extend(check.hazards)
        if check.note:
            live.notes.append(check.note)

    def _check_files(self, contents: dict[str, bytes | None], live: LiveState) -> None:
        """What the admin's own files show, without a running Asterisk."""
        if self._section.channel == "sip":
            # sip_sipctl.conf extends [general] with "(+)", which fails without one before it
            sections = parse_sections(_text(contents["sip.conf"]))
            if not any(s.name == "general" for s in sections):
                live.problems.append(
                    f"{self._path('sip.conf')} has no [general] section for sipctl's "
                    "[general](+) to extend; add one (chan_sip needs it anyway)"
                )
            return
        for section in parse_sections(_text(contents["pjsip.conf"])):
            if section.name == ANONYMOUS_ENDPOINT and section.get("type") == "endpoint":
                live.problems.append(_foreign_anonymous(self._path("pjsip.conf")))
            if section.get("type") == "global":
                order = section.get("endpoint_identifier_order")
                problem = identifier_order_problem(order) if order else None
                if problem:
                    live.problems.append(f"{self._path('pjsip.conf')}: {problem}")

    def _live_clis(self) -> list[str]:
        """The read-only CLI commands ``read`` sends to the running Asterisk (in the order
        ``_check_live`` takes their answers)."""
        section = self._section
        sound = f"core show sound {section.reject_sound}"
        if section.channel == "sip":
            return ["core show version", sound]
        clis = ["pjsip show transports", SHOW_ENDPOINTS, "pjsip show settings", sound]
        unavailable = section.unavailable_sound
        extra = [f"core show sound {unavailable}"] if unavailable else []
        extra.append(SHOW_CONFBRIDGE_MODULE)
        wss_clis = [SHOW_MODULES, SHOW_HTTP] if self._loaded.spec.transports.wss else []
        srtp = [SHOW_SRTP_MODULE] if encrypts_media(self._loaded.spec) else []
        resolver = [SHOW_RESOLVER_MODULE] if outbound_on(self._loaded.spec) else []
        return [*clis, *extra, *wss_clis, *srtp, *resolver]

    def _check_live(
        self,
        contents: dict[str, bytes | None],
        answers: list[RxAnswer],
        live: LiveState,
        network: dict[str, bytes | None],
    ) -> None:
        """What the running Asterisk says (the answers to ``_live_clis``): transports, a
        foreign guest endpoint, the sound; ``network``: the ``NETWORK_FILES`` read."""
        section = self._section
        if section.channel == "sip":
            if not answers[0].ok:
                live.problems.append(_unreachable(answers[0]))
                return
            self._check_sound(answers[1], live)
            return
        unavailable = section.unavailable_sound
        if outbound_on(self._loaded.spec):
            resolver, answers = answers[-1], answers[:-1]
            if not (resolver.ok and _module_running(resolver.output)):
                live.problems.append(
                    f"the running Asterisk has not loaded {RESOLVER_MODULE}, which outbound "
                    "needs: without it PJSIP asks no NAPTR or SRV and calls to other domains "
                    f"fail; load it (modules.conf: load => {RESOLVER_MODULE})"
                )
        if encrypts_media(self._loaded.spec):
            srtp, answers = answers[-1], answers[:-1]
            if not (srtp.ok and _module_running(srtp.output)):
                live.problems.append(
                    "the running Asterisk has not loaded res_srtp.so, which guests over TLS "
                    "need for encrypted media (SRTP); load it (modules.conf: load => "
                    "res_srtp.so) or install the package that has it"
                )
        wss = self._loaded.spec.transports.wss
        if wss is not None:
            modules, http = answers[-2:]
            answers = answers[:-2]
            listening, bindv6only = _network_facts(network)
            live.problems += wss_problems(
                modules.output, http.output, wss.port, listening, opus=wss.opus
            )
            families = address_families(self._loaded.spec)
            if "ipv6" in families:
                problem = ipv6_listener_problem(bindv6only, wss.port, "ipv4" in families)
                if problem:
                    live.problems.append(problem)
        transports, endpoints, settings, sound_answer = answers[:4]
        module = answers[-1]
        running = module.ok and _module_running(module.output)
        live.kept_as(AsteriskKept).confbridge_running = running
        if unavailable:
            self._check_sound(answers[4], live, unavailable, "unavailable_sound")
        if not transports.ok:
            live.problems.append(_unreachable(transports))
            return
        # an older sipctl wrote its guests as [anonymous] (until the next apply)
        ours = contents[PJSIP_FILE] is not None and any(
            s.name == ANONYMOUS_ENDPOINT for s in parse_sections(_text(contents[PJSIP_FILE]))
        )
        foreign_seen = any("already has an" in p for p in live.problems)
        names = parse_endpoint_names(endpoints.output)
        if ANONYMOUS_ENDPOINT in names and not (ours or foreign_seen):
            live.problems.append(_foreign_anonymous("the running Asterisk (pjsip show endpoints)"))
        order = parse_setting(settings.output, "endpoint_identifier_order")
        problem = identifier_order_problem(order) if order else None
        if problem:
            live.problems.append(f"the running Asterisk: {problem}")
        if section.manage_transports:
            live.problems.extend(self._transport_clashes(transports.output))
        else:
            live.problems.extend(self._transport_mismatches(transports.output))
        self._check_sound(sound_answer, live)

    def _transport_mismatches(self, output: str) -> list[str]:
        have = parse_transports(output)
        problems = []
        for protocol, wanted in self._loaded.spec.transports.enabled().items():
            if any(t.protocol == protocol and t.port == wanted.port for t in have):
                continue
            listening = ", ".join(f"{t.protocol} {t.address}:{t.port}" for t in have) or "nothing"
            problems.append(
                f"the spec's transports.{protocol} port {wanted.port} is not served by "
                f"Asterisk (pjsip show transports: {listening}); fix transports in the spec, "
                "or set asterisk.manage_transports: true to let sipctl define them"
            )
        return problems

    def _transport_clashes(self, output: str) -> list[str]:
        """With manage_transports, a transport of the admin's on one of our ports would
        keep ours from starting."""
        wanted = {(p, t.port) for p, t in self._loaded.spec.transports.enabled().items()}
        return [
            f"asterisk.manage_transports is true, but Asterisk's own transport {t.name} "
            f"already serves {t.protocol} {t.address}:{t.port}; remove it from pjsip.conf, "
            "or set manage_transports: false to use it"
            for t in parse_transports(output)
            if not t.name.startswith("sipctl-") and (t.protocol, t.port) in wanted
        ]

    def _check_sound(
        self,
        answer: RxAnswer,
        live: LiveState,
        sound: str | None = None,
        key: str = "reject_sound",
    ) -> None:
        if answer.ok and not sound_found(answer.output):
            sound = sound or self._section.reject_sound
            who = "rejected callers" if key == "reject_sound" else "callers nobody answers"
            live.notes.append(
                f"the {key.replace('_', ' ')} '{sound}' was not found on the PBX (core show "
                f"sound {sound}); {who} will hear nothing. Install it or set "
                f"asterisk.{key} to a stock sound such as ss-noservice"
            )

    # --- apply --------------------------------------------------------------------------------

    def apply(
        self, changes: Sequence[Change], live: LiveState, riders: Sequence[UpdateRider] = ()
    ) -> list[str]:
        del riders  # no lock site of its own: nothing rides here
        if not changes:
            return []
        section = self._section
        transport = self._transport()
        contents = live.kept_as(AsteriskKept).contents or self._reread()
        writes = self._writes(changes, contents)
        written = [w.path for w in writes]
        lines = [f"asterisk {self.target_id}: wrote {posixpath.basename(p)}" for p in written]
        if not transport.can_run:
            transport.write_files(writes)
            return [*lines, f"asterisk: {DIR_SKIPPED}"]
        # marked as not loaded before the files are renamed, in the same batch
        mark = self._mark().before(changes, live.kept_as(AsteriskKept).mark)
        transport.ensure_bookkeeping_dir()
        transport.write_files([mark, *writes])
        reloads = self._reloads(changes, live)
        failure = self._reload_and_check(reloads)
        if failure is None:
            self._mark().loaded(transport, mark)
        else:
            try:
                transport.restore_backups(written)
            except ProviderError as exc:
                raise ProviderError(
                    f"asterisk {self.target_id}: {failure}. Putting the old files back failed "
                    f"too ({exc}); their copies are the {section.config_dir}/*.sipctl.bak files"
                ) from exc
            undo = [answer for answer in self._rx(reloads) if not answer.ok]
            again = f"; reloading the old files failed too: {undo[0].words()}" if undo else ""
            if not undo:
                self._mark().loaded(transport, mark)  # Asterisk runs the old files again
            raise ProviderError(
                f"asterisk {self.target_id}: {failure}. The old files are back in "
                f"{section.config_dir} and were reloaded{again}"
            )
        return [*lines, *(f"asterisk {self.target_id}: {cli}" for cli in reloads)]

    def _reread(self) -> dict[str, bytes | None]:
        names = [*MANAGED_FILES, *PARENT_FILES, RTP_FILE, HTTP_FILE]
        found = self._transport().read_files([self._path(n) for n in names])
        return {n: found[self._path(n)].content for n in names}

    def _writes(
        self, changes: Sequence[Change], contents: dict[str, bytes | None]
    ) -> list[FileWrite]:
        config_dir = self._section.config_dir
        # Two changes may edit one file (pjsip.conf: the include line and [global]): each
        # edits what the one before left, and the file is written once.
        edited: dict[str, bytes | None] = {}
        for change in changes:
            kind, name = change.address.kind, change.address.name
            old = edited[name] if name in edited else contents.get(name)
            if kind == "file":
                new = None if change.action == "delete" else str(change.payload).encode()
            elif kind == "include":
                child = _child_of(name, change)
                present = change.action != "delete"
                base = old
                if base is None and name == CONFBRIDGE_PARENT and present:
                    base = MINIMAL_PARENT.encode()  # a PBX without rooms so far: start one
                new = set_include(base, child, config_dir, present=present)
            elif kind == "rtp":
                if change.action == "delete":
                    continue  # rtp.conf belongs to the admin; only the keys are ours
                after: dict[str, Any] = change.after
                new = set_rtp(old, int(after["rtpstart"]), int(after["rtpend"]))
            elif kind == "http":
                if change.action == "delete":
                    new = restore(old)  # the admin's file as it was before sipctl
                else:
                    new = set_http(old, http_settings(self._loaded.spec), HTTP_ANY_VALUE)
            elif kind == "global":
                header = server_header_written(self._section)
                if change.action == "delete" or header is None:
                    new = restore(old)  # the admin's global settings as they were
                else:
                    new = set_user_agent(old, header)
            else:
                raise ProviderError(f"asterisk: unknown resource {change.address}")
            edited[name] = new
        return [FileWrite(self._path(n), new, contents.get(n)) for n, new in edited.items()]

    def _reloads(self, changes: Sequence[Change], live: LiveState) -> list[str]:
        touched = {c.address.name for c in changes}
        reloads = []
        if touched & {PJSIP_FILE, "pjsip.conf"}:
            reloads.append(RELOAD_PJSIP)
        if touched & {SIP_FILE, "sip.conf"}:
            reloads.append(RELOAD_SIP)
        if touched & {DIALPLAN_FILE, "extensions.conf"}:
            reloads.append(RELOAD_DIALPLAN)
        if RTP_FILE in touched:
            reloads.append(RELOAD_RTP)
        if touched & {CONFBRIDGE_FILE, CONFBRIDGE_PARENT}:
            # Without a confbridge.conf at start Asterisk declines the module ("Not
            # Running"), and a reload refuses it: load it once the file is there.
            running = live.kept_as(AsteriskKept).confbridge_running
            reloads.append(RELOAD_CONFBRIDGE if running else LOAD_CONFBRIDGE)
        if HTTP_FILE in touched:
            reloads.append(RELOAD_HTTP)
        return reloads

    def _reload_and_check(self, reloads: list[str]) -> str | None:
        """None when Asterisk reloaded and shows the new config; else what went wrong."""
        section = self._section
        checks = []
        if RELOAD_DIALPLAN in reloads:
            checks.append(f"dialplan show {section.guest_context}")
        if RELOAD_PJSIP in reloads:
            checks.append(f"pjsip show endpoint {GUEST_ENDPOINT}")
            # One section tells whether Asterisk took the guests' identify sections (a host
            # with challenge has one per customer; asking for each would cost a command per
            # customer).
            checks += [
                f"pjsip show identify {name}"
                for name in guest_identify_sections(self._loaded.spec)[:1]
            ]
            if section.manage_transports or self._loaded.spec.transports.wss is not None:
                checks.append("pjsip show transports")
        if RELOAD_RTP in reloads:
            checks.append("rtp show settings")
        confbridge = {RELOAD_CONFBRIDGE, LOAD_CONFBRIDGE} & set(reloads)
        if confbridge and has_rooms(self._loaded.spec) and section.ensure == "present":
            checks.append(SHOW_BRIDGE_PROFILES)
        if RELOAD_HTTP in reloads:
            checks.append("http show status")
        answers = self._rx([*reloads, *checks])
        for answer in answers[: len(reloads)]:
            if not answer.ok or _reload_failed(answer.output):
                return f"'{answer.cli}' failed: {answer.words()}"
        for answer in answers[len(reloads) :]:
            problem = self._check_answer(answer)
            if problem is not None:
                return problem
        return None

    def _check_answer(self, answer: RxAnswer) -> str | None:
        section = self._section
        present = section.ensure == "present"
        if not answer.ok:
            return f"'{answer.cli}' failed: {answer.words()}"
        if answer.cli.startswith("dialplan show"):
            shown = (
                dialplan_extensions(answer.output)
                if "extensions_sipctl.conf" in answer.output
                else set()
            )
            spec = self._loaded.spec
            wanted = name_extensions(spec) | set(guest_extensions(section, spec))
            if present and not wanted <= shown:
                missing = ", ".join(sorted(wanted - shown))
                return (
                    f"Asterisk did not take the new dialplan: '{answer.cli}' lacks {missing} "
                    f"(it says: {answer.words(200)})"
                )
            if not present and shown:
                return f"Asterisk still shows the guest dialplan after removal ({answer.cli})"
        if answer.cli.startswith("pjsip show endpoint "):
            context = parse_setting(answer.output, "context")
            if present and context != section.guest_context:
                return (
                    f"Asterisk did not take the new PJSIP config: '{answer.cli}' says: "
                    f"{answer.words(300)}"
                )
            if not present and context is not None:
                return f"Asterisk still has the {GUEST_ENDPOINT} endpoint after removal"
        match = "match_request_uri" if section.unknown_callers == "challenge" else "match_header"
        taken = match in answer.output and "Unable to find" not in answer.output
        if answer.cli.startswith("pjsip show identify ") and present and not taken:
            needs = (
                "unknown_callers: challenge needs match_request_uri (Asterisk 18.23, 20.8, "
                "21.3 or later, res_pjsip_endpoint_identifier_ip loaded)"
                if match == "match_request_uri"
                else "guests are found by match_header (res_pjsip_endpoint_identifier_ip "
                "must be loaded)"
            )
            return (
                f"Asterisk did not take the guests' identify section ('{answer.cli}' says: "
                f"{answer.words(200)}): every guest would be challenged. {needs}"
            )
        if answer.cli == "rtp show settings":
            ports = (
                parse_setting(answer.output, "Port start"),
                parse_setting(answer.output, "Port end"),
            )
            wanted_ports = (str(section.rtp.start), str(section.rtp.end))
            if ports != wanted_ports:
                return (
                    f"Asterisk did not take the new RTP range {'-'.join(wanted_ports)}: "
                    f"'rtp show settings' says {ports[0]}-{ports[1]}"
                )
        if answer.cli == SHOW_BRIDGE_PROFILES:
            profiles = bridge_profiles(self._loaded.spec)
            absent = [p for p in profiles if p not in answer.output.split()]
            if absent:
                return (
                    f"Asterisk did not take the rooms: '{answer.cli}' lacks "
                    f"{', '.join(absent)} (is app_confbridge loaded?)"
                )
        if answer.cli == "http show status":
            wss = self._loaded.spec.transports.wss
            bound = re.search(r"HTTPS Server Enabled and Bound to (\S+)", answer.output)
            port = f":{wss.port}" if present and wss is not None else None
            if port and (bound is None or not bound[1].endswith(port)):
                return (
                    f"Asterisk did not start its HTTPS server for transports.wss ({port}): "
                    "are asterisk.tls's certificate and key readable by Asterisk and a pair, "
                    f"and is the port free? 'http show status' says: {answer.words(300)}"
                )
        if answer.cli == "pjsip show transports" and present:
            have = parse_transports(answer.output)
            wanted_transports = {
                f"sipctl-{p}"
                for p in self._loaded.spec.transports.enabled()
                if section.manage_transports and (p != "tls" or section.tls is not None)
            }
            if self._loaded.spec.transports.wss is not None:
                wanted_transports.add(WSS_TRANSPORT)
            not_started = wanted_transports - {t.name for t in have}
            if not_started:
                running = ", ".join(f"{t.name} {t.protocol} {t.address}:{t.port}" for t in have)
                return (
                    f"Asterisk did not start the transports {', '.join(sorted(not_started))} "
                    f"(is the port in use?); pjsip show transports lists: {running or 'none'}"
                )
        return None


def _text(content: bytes | None) -> str:
    return (content or b"").decode("utf-8", "replace")


def _child_of(parent: str, change: Change) -> str:
    """The managed file whose include line lives in ``parent``."""
    del change
    return next(child for child, owner in PARENTS.items() if owner == parent)


def _reload_failed(output: str) -> bool:
    lowered = output.lower()
    return any(
        words in lowered
        for words in (
            "unable to reload",
            "not found",
            "failed",
            "no such command",
            "no such module",
            "is not loaded",
            "not properly initialized",
        )
    )


def _module_running(output: str) -> bool:
    """Whether ``module show like`` lists the module as running."""
    return any(
        len(line.split()) > 1 and "Running" in line and "Not Running" not in line
        for line in output.splitlines()
    )


def _foreign_anonymous(where: str) -> str:
    return (
        f"{where} already has an '{ANONYMOUS_ENDPOINT}' endpoint that sipctl did not write; "
        "it would take every unidentified request before sipctl's guest endpoint. Remove it "
        "(sipctl's own guest endpoint replaces it), or leave the asterisk section out of the "
        "spec"
    )


def _unreachable(answer: RxAnswer) -> str:
    return f"cannot ask Asterisk ('{answer.cli}'): {answer.words()} {UNREACHABLE_HINT}"


def _network_facts(found: dict[str, bytes | None]) -> tuple[set[int] | None, str | None]:
    """TCP ports anything listens on at the target (None when they could not be read), and
    its ``net.ipv6.bindv6only`` (None: no IPv6 there)."""
    tables = [found.get(p) for p in PROC_NET_TCP]
    v6only = found.get(BINDV6ONLY)
    listening = (
        None
        if all(t is None for t in tables)
        else listening_tcp_ports(*(_text(t) for t in tables if t is not None))
    )
    return listening, None if v6only is None else _text(v6only)


def _fingerprint(
    content: bytes | None, *, hidden: bool, secrets: Collection[str] = ()
) -> str | None:
    """The sha256 a plan records of one config file (None: missing): of the admin's file
    (``hidden``) as the read gate answers it, of sipctl's own as a saved plan holds its
    text (``output.scrubbed``: an admin may have written a password into it, and the plan
    shows the rest of the file)."""
    if content is None:
        return None
    if hidden:
        return hashlib.sha256(redact(content)).hexdigest()
    text = scrubbed(content.decode("utf-8", "surrogateescape"), secrets)
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()
