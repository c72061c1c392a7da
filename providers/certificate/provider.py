"""The ``certificate`` provider: the TLS certificate at ``asterisk.tls`` on the PBX.

``read`` fetches the certificate, its key and sipctl's record of the last order (one batch on
the asterisk target) and normalizes them (``reconciler/render/certificate.py``): with
``acme`` the plan says obtain, renew or nothing; without, the certificate is only checked
and every problem is a warning. ``apply`` orders a new certificate (``acme_order``), writes
key and certificate in place (same paths, so PJSIP restarts its TLS transport on reload),
reloads what serves them and checks that the listeners now show the new certificate.

Bookkeeping lives on the target, in sipctl's root-only ``/var/lib/sipctl``
(``providers/bookkeeping.py``): the ACME account key (one per directory, reused by every run
and CI runner) and, per certificate, which directory issued it. The private keys are read
to compare them and written to their files; they are never part of a value, a plan, a
message or a log line.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from sipctl.errors import ProviderError
from sipctl.json_text import read_json
from sipctl.providers.asterisk.cli import asterisk_program, run_rx
from sipctl.providers.base import Provider, RunContext, UpdateRider
from sipctl.providers.bookkeeping import BOOKKEEPING_DIR, record_name
from sipctl.providers.certificate.pem import (
    CertificateFacts,
    key_matches,
    leaf_der,
    new_private_key,
    public_key_matches,
    read_certificate,
    read_der_certificate,
)
from sipctl.providers.certificate.served import Served, fetch_served, wait_served
from sipctl.providers.transport.batch import Fetched, HostRead, fetch
from sipctl.providers.transport.pool import FileWrite, HostFile, HostTransport
from sipctl.providers.transport.read_gate import NO_OPENSSL, GateReads
from sipctl.reconciler.plan import Change
from sipctl.reconciler.render.certificate import (
    KEY_MATCHES,
    certificate_address,
    issuer_text,
    live_value,
    tls_of,
)
from sipctl.reconciler.resources import Kept, LiveState, Resource
from sipctl.schemas.checks import certificate_names
from sipctl.schemas.loader import LoadedSpec
from sipctl.schemas.targets import parse_target

if TYPE_CHECKING:
    from sipctl.reconciler.gitops.drift import StateStore
    from sipctl.schemas.spec import Acme, Asterisk, TlsFiles

RELOAD_PJSIP = "module reload res_pjsip.so"
RELOAD_HTTP = "module reload http"
RELOAD_SIP = "sip reload"  # chan_sip (Asterisk <= 20)
CHECK_ONLY_DAYS = 30  # without acme: warn when fewer days are left
_NEW_KEY_MODE = 0o640  # group read: Asterisk runs as its own user, the directory's group
_BOOKKEEPING_MODE = 0o600


def account_key_path(directory: str) -> str:
    digest = hashlib.sha256(directory.encode()).hexdigest()[:16]
    return f"{BOOKKEEPING_DIR}/acme-account-{digest}.pem"


def record_path(cert_file: str) -> str:
    """Which directory issued the certificate at ``cert_file`` (and its names, serial)."""
    return f"{BOOKKEEPING_DIR}/{record_name(cert_file, '.acme.json')}"


@dataclass
class CertificateKept(Kept):
    """What the certificate provider's read keeps for its apply: the files read, by path."""

    files: dict[str, HostFile] = field(default_factory=dict)


class CertificateProvider(Provider):
    """The certificate and key files of ``asterisk.tls`` on the asterisk target."""

    layer: ClassVar[str] = "certificate"
    name: ClassVar[str] = "certificate"

    def __init__(self, loaded: LoadedSpec, ctx: RunContext) -> None:
        tls = tls_of(loaded.spec)
        if tls is None or loaded.spec.asterisk is None:
            raise ValueError("the spec has no asterisk.tls section")
        self._loaded = loaded
        self._ctx = ctx
        self._tls: TlsFiles = tls
        self._asterisk: Asterisk = loaded.spec.asterisk

    @property
    def target_id(self) -> str:
        return f"{parse_target(self._asterisk.target).key}:{self._tls.cert_file}"

    def state_store(self) -> StateStore | None:
        """The record of what was applied goes with the asterisk host's (``drift``)."""
        from sipctl.reconciler.gitops.drift import host_state_store

        return host_state_store(self._loaded, self._ctx, "asterisk")

    def _transport(self) -> HostTransport:
        return self._ctx.transports.get(self._asterisk.target, self._asterisk.ssh)

    def _paths(self) -> list[str]:
        paths = [self._tls.cert_file, self._tls.key_file]
        if self._tls.acme is not None:
            paths.append(record_path(self._tls.cert_file))
        return paths

    def gate_reads(self, desired: Sequence[Resource]) -> list[GateReads]:
        """What ``read`` asks of the host, for its read gate: the key only as a key."""
        files = tuple(p for p in self._paths() if p != self._tls.key_file)
        del desired
        return [GateReads(self._asterisk.target, files=files, keys=(self._tls.key_file,))]

    # --- read ---------------------------------------------------------------------------------

    def host_reads(self, desired: Sequence[Resource]) -> list[HostRead]:
        """The certificate, the record and the key, with the host's other reads; a read-only
        login (the read gate) is told only the key's sha256 and public key, never the key."""
        del desired
        key_file = self._tls.key_file
        files = tuple(p for p in self._paths() if p != key_file)
        return [HostRead(self._transport(), files=files, keys=(key_file,))]

    def read(self, desired: Sequence[Resource]) -> LiveState:
        return self.read_fetched(desired, fetch(self.host_reads(desired)))

    def read_fetched(self, desired: Sequence[Resource], fetched: Sequence[Fetched]) -> LiveState:
        (got,) = fetched
        found = got.files
        key_file = self._tls.key_file
        if key_file in found:  # a normal login reads the key as a file
            key = _Key.of(found[key_file].content)
        else:
            answer = got.keys[key_file]
            if answer.problem is not None:
                where = got.read.transport.ref
                raise ProviderError(f"{where}: cannot read {key_file} ({answer.problem})")
            key = _Key.answered(answer.exists, answer.sha256, answer.public_pem)
        return self._checked(desired, self._read_live(found, key))

    def _checked(self, desired: Sequence[Resource], live: LiveState) -> LiveState:
        if self._tls.acme is not None and _order_due(desired, live) and not acme_installed():
            # Said by the plan, not first by apply (as validate names a missing octoDNS extra).
            live.problems.append(
                f"{self._tls.cert_file}: a certificate must be obtained by ACME and the ACME "
                "client library is not installed: pip install 'sipctl[acme]'"
            )
        return live

    def _read_live(self, found: dict[str, HostFile], key: _Key) -> LiveState:
        live = LiveState()
        live.kept = CertificateKept(files=found)
        live.fingerprint_extra = {
            path: hashlib.sha256(f.content).hexdigest() if f.content is not None else None
            for path, f in found.items()
        }
        live.fingerprint_extra[self._tls.key_file] = key.sha256
        cert = found[self._tls.cert_file].content
        acme = self._tls.acme
        if acme is not None:
            live.problems.extend(self._challenge_problems())
        if cert is None:
            if acme is None:
                live.notes.append(
                    f"{self._tls.cert_file} does not exist: Asterisk cannot offer SIPS or WSS "
                    "without it (or add asterisk.tls.acme and let sipctl obtain one)"
                )
            return live
        try:
            facts = read_certificate(cert)
        except ValueError:
            if acme is None:
                live.notes.append(f"{self._tls.cert_file} holds no PEM certificate")
            else:
                live.resources[certificate_address(self._tls)] = {
                    "names": [],
                    "issuer": "none: the file holds no PEM certificate",
                    "time_left": "none",
                    "key": _key_state(key, None),
                }
            return live
        key_state = _key_state(key, facts)
        live.skipped.append(self._summary(facts))
        if acme is None:
            live.notes.extend(self._check_only(facts, key_state))
            return live
        live.resources[certificate_address(self._tls)] = live_value(
            names=facts.names,
            issuer=self._issuer(facts, found),
            not_after=facts.not_after,
            days_left=facts.days_left(),
            renew_days=acme.renew_days,
            key=key_state,
        )
        return live

    def _challenge_problems(self) -> list[str]:
        """At plan time already: can the spec's DNS provider publish challenge records?"""
        from sipctl.providers.dns.challenge import challenge_writer

        try:
            challenge_writer(self._loaded, self._ctx)
        except ProviderError as exc:
            return [exc.message]
        return []

    def _summary(self, facts: CertificateFacts) -> str:
        days = facts.days_left()
        left = f"{days} day(s) left" if days >= 0 else f"expired {-days} day(s) ago"
        return (
            f"{self._tls.cert_file}: {left} (until {facts.not_after:%Y-%m-%d}), serial "
            f"{facts.serial}, issued by {facts.issuer} for {', '.join(facts.names) or 'no name'}"
        )

    def _issuer(self, facts: CertificateFacts, found: dict[str, HostFile]) -> str:
        """Which ACME directory issued this very certificate, by sipctl's record of it."""
        record = _json(found[record_path(self._tls.cert_file)].content)
        if record.get("sha256") == facts.sha256 and isinstance(record.get("directory"), str):
            return issuer_text(record["directory"])
        return f"{facts.issuer} (not obtained by sipctl)"

    def _check_only(self, facts: CertificateFacts, key_state: str) -> list[str]:
        """Warnings about a certificate sipctl does not obtain itself."""
        where = self._tls.cert_file
        notes = []
        missing = [n for n in certificate_names(self._loaded.spec) if not facts.covers(n)]
        if missing:
            notes.append(
                f"{where} lacks the name(s) {', '.join(missing)}: SIPS clients check the "
                "domain, most also the server host, browsers the wss:// host"
            )
        days = facts.days_left()
        if days < 0:
            notes.append(f"{where} expired on {facts.not_after:%Y-%m-%d}: TLS clients refuse it")
        elif days < CHECK_ONLY_DAYS:
            notes.append(
                f"{where} expires in {days} day(s) ({facts.not_after:%Y-%m-%d}); renew it, or "
                "add asterisk.tls.acme to let sipctl renew it"
            )
        if key_state != KEY_MATCHES:
            notes.append(f"{self._tls.key_file}: {key_state}: Asterisk cannot serve TLS with it")
        return notes

    # --- apply --------------------------------------------------------------------------------

    def apply(
        self, changes: Sequence[Change], live: LiveState, riders: Sequence[UpdateRider] = ()
    ) -> list[str]:
        del riders  # no lock site of its own: nothing rides here
        if not changes:
            return []
        acme = self._tls.acme
        if acme is None:
            raise ProviderError(f"certificate {self.target_id}: nothing to do without acme")
        from sipctl.providers.certificate.acme_order import OrderRequest, obtain
        from sipctl.providers.dns.challenge import challenge_writer

        transport = self._transport()
        found = live.kept_as(CertificateKept).files or transport.read_files(self._paths())
        writer = challenge_writer(self._loaded, self._ctx)
        request = OrderRequest(
            directory=acme.directory,
            email=acme.email,
            ca_file=self._loaded.resolve_path(acme.ca_file) if acme.ca_file else None,
            account_key_pem=self._account_key(transport, acme),
            names=tuple(certificate_names(self._loaded.spec)),
        )
        issued = obtain(request, writer, self._ctx.log)
        facts = read_certificate(issued.fullchain_pem)
        listeners = self._listeners()
        before = {
            port: fetch_served(host, port, self._loaded.spec.domain) for host, port, _ in listeners
        }
        transport.write_files(self._writes(found, issued.key_pem, issued.fullchain_pem, facts))
        lines = [
            f"certificate {self.target_id}: obtained serial {facts.serial} from {acme.directory} "
            f"for {', '.join(facts.names)}, valid until {facts.not_after:%Y-%m-%d}; wrote "
            f"{self._tls.key_file} and {self._tls.cert_file}"
        ]
        if not transport.can_run:
            return [*lines, "certificate: dir target, reload and listener check skipped"]
        lines += self._reload(transport)
        wanted = leaf_der(issued.fullchain_pem)
        for host, port, what in listeners:
            lines.append(self._check_listener(host, port, what, wanted, before[port], facts))
        return lines

    def _account_key(self, transport: HostTransport, acme: Acme) -> bytes:
        """The ACME account key of this directory on the target; made on first use."""
        path = account_key_path(acme.directory)
        existing = transport.read_files([path])[path].content
        if existing is not None:
            return existing
        transport.ensure_bookkeeping_dir()  # root-only (0700) before any key is in it
        key = new_private_key()
        transport.write_files([FileWrite(path, key, None, mode=_BOOKKEEPING_MODE)])
        self._ctx.log(f"certificate: new ACME account key in {path}")
        return key

    def _writes(
        self,
        found: dict[str, HostFile],
        key_pem: bytes,
        chain_pem: bytes,
        facts: CertificateFacts,
    ) -> list[FileWrite]:
        old_key = found[self._tls.key_file]
        key_mode = (old_key.mode & 0o640) if old_key.mode is not None else _NEW_KEY_MODE
        record = {
            "cert_file": self._tls.cert_file,
            "directory": self._tls.acme.directory if self._tls.acme else None,
            "names": list(facts.names),
            "serial": facts.serial,
            "sha256": facts.sha256,
            "obtained": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        record_file = record_path(self._tls.cert_file)
        return [
            FileWrite(self._tls.key_file, key_pem, old_key.content, mode=key_mode),
            FileWrite(self._tls.cert_file, chain_pem, found[self._tls.cert_file].content),
            FileWrite(
                record_file,
                json.dumps(record, indent=1, sort_keys=True).encode() + b"\n",
                found[record_file].content,
                mode=_BOOKKEEPING_MODE,
            ),
        ]

    def _listeners(self) -> list[tuple[str, int, str]]:
        """(host, port, what) of every TLS listener that serves this certificate."""
        ref = parse_target(self._asterisk.target)
        host = ref.host if ref.kind == "ssh" else "127.0.0.1"
        transports = self._loaded.spec.transports
        found = []
        if transports.tls is not None:
            found.append((host, transports.tls.port, "SIPS"))
        if transports.wss is not None:
            found.append((host, transports.wss.port, "WSS"))
        return found

    def _reload(self, transport: HostTransport) -> list[str]:
        sips = RELOAD_SIP if self._asterisk.channel == "sip" else RELOAD_PJSIP
        clis = [sips if what == "SIPS" else RELOAD_HTTP for _, _, what in self._listeners()]
        if not clis:
            return []
        answers = run_rx(transport, asterisk_program(self._ctx, transport, self._loaded), clis)
        for answer in answers:
            if not answer.ok:
                raise ProviderError(
                    f"certificate {self.target_id}: the new certificate is in place, but "
                    f"'{answer.cli}' failed: {answer.words()}"
                )
        return [f"certificate {self.target_id}: {cli}" for cli in clis]

    def _check_listener(
        self,
        host: str,
        port: int,
        what: str,
        wanted: bytes,
        before: Served,
        facts: CertificateFacts,
    ) -> str:
        name = self._loaded.spec.domain
        if before.refused:
            served = fetch_served(host, port, name)
            if served.refused:
                return (
                    f"certificate: nothing serves {what} on {host} port {port} yet (the asterisk "
                    "layer starts it; verify checks it)"
                )
        else:
            served = wait_served(host, port, name, wanted)
        if served.der == wanted:
            return f"certificate: {what} on {host} port {port} serves the new certificate"
        shown = (
            f"serial {read_der_certificate(served.der).serial}" if served.der else served.problem
        )
        raise ProviderError(
            f"certificate {self.target_id}: the new certificate (serial {facts.serial}) is in "
            f"place, but {what} on {host} port {port} still shows {shown} after the reload; "
            "check that Asterisk's TLS listener uses "
            f"{self._tls.cert_file} and {self._tls.key_file}"
        )


@dataclass(frozen=True)
class _Key:
    """What plan knows of the private key: the whole file (a normal login) or its sha256 and
    public key (the read gate's answer); the state is the same either way."""

    exists: bool
    sha256: str | None
    pem: bytes | None = None
    public_pem: bytes | None = None
    no_openssl: bool = False

    @classmethod
    def of(cls, content: bytes | None) -> _Key:
        if content is None:
            return cls(False, None)
        return cls(True, hashlib.sha256(content).hexdigest(), pem=content)

    @classmethod
    def answered(cls, exists: bool, sha256: str | None, public: bytes | None) -> _Key:
        if public == NO_OPENSSL:
            return cls(exists, sha256, no_openssl=True)
        return cls(exists, sha256, public_pem=public)


def _key_state(key: _Key, facts: CertificateFacts | None) -> str:
    if not key.exists:
        return "missing"
    if facts is None:
        return "unchecked"
    if key.no_openssl:
        return "unchecked: openssl is not installed on the host (the read gate needs it)"
    try:
        if key.pem is not None:
            matches = key_matches(key.pem, facts)
        else:
            matches = public_key_matches(key.public_pem or b"", facts)
    except ValueError as exc:
        return str(exc)
    return KEY_MATCHES if matches else "does not match the certificate"


def _json(content: bytes | None) -> dict[str, Any]:
    try:
        data = read_json(content or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def acme_installed() -> bool:
    """Whether the ``[acme]`` extra's library can be imported (not importing it: it is
    large, and a plan with nothing to order never needs it)."""
    import importlib.util

    try:
        return importlib.util.find_spec("acme") is not None
    except ValueError:  # sys.modules marks it unimportable
        return False


def _order_due(desired: Sequence[Resource], live: LiveState) -> bool:
    """Whether the plan will obtain or renew a certificate: the desired value differs from
    the live one (absent, expired, renewal due, other names or key)."""
    return any(live.resources.get(r.address) != r.value for r in desired)
