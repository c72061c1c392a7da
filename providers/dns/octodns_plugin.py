"""An octoDNS provider plugin as sipctl uses it: found, configured, called, its errors translated.

octoDNS and its plugins are optional extras, imported here only when a spec uses them (never
by ``sipctl --help``). The spec's ``dns.octodns`` mapping is octoDNS's own provider config:
``class`` plus keyword arguments, credentials as ``env/NAME`` (resolved here, remembered as
secrets so no message can show them).

A plugin caches what it read (Route53 its rrsets, PowerDNS its version), so every read gets a
fresh instance (``PluginConfig.instance``). Every call into the plugin goes through ``call``:
throttling and server-side failures (5xx) are retried with backoff, and every other failure
becomes one line (wrong key, unknown zone, unreachable, a record the provider refused), never
a traceback.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.metadata
import importlib.util
import logging
import os
import random
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sipctl.errors import ProviderError, SipctlError, SpecError, StalePlanError
from sipctl.json_text import read_json
from sipctl.output import peer_words

if TYPE_CHECKING:
    from sipctl.providers.base import RunContext
    from sipctl.schemas.loader import LoadedSpec

T = TypeVar("T")

# The pip extra that installs a plugin's module (top-level package -> extra).
EXTRAS = {
    "octodns_route53": "route53",
    "octodns_powerdns": "powerdns",
    "octodns_cloudflare": "cloudflare",
}
_AUTH_CODES = {
    "AccessDenied",
    "AccessDeniedException",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "ExpiredToken",
    "AuthFailure",
    "InvalidAccessKeyId",
}
_THROTTLE_CODES = {
    "Throttling",
    "ThrottlingException",
    "PriorRequestNotComplete",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "SlowDown",
}
# Route53 refuses a change batch whose DELETE no longer matches the live rrset, or whose
# CREATE finds one: that is the compare-and-set we rely on (see octodns.py).
_CONDITION_WORDS = ("not found", "do not match", "already exists", "but it already exists")
RETRIES = 4
# Arguments sipctl gives a plugin unless the spec does. botocore retries a failed request by
# sending it again, a change batch too: one that landed with its answer lost would be refused
# the second time (its CREATEs exist), a false "stale" (exit 3). So botocore makes one
# attempt, and sipctl's ``call`` retries: reads again, writes from a fresh read.
PLUGIN_DEFAULTS: dict[str, dict[str, Any]] = {"octodns_route53": {"client_max_attempts": 0}}
# Throttling, and a server failing on its side (5xx: e.g. PowerDNS on sqlite answers 500
# "database is locked" when two zones are written at once). A read is simply sent again; a
# write is not replayed: part of it may have landed (a per-record API such as Cloudflare's
# makes one request per record; a Route53 batch may land with its answer lost), so the retry
# re-reads and sends what is still missing (``before_retry``, OctodnsProvider.write).
RETRIED = ("throttled", "server")
BACKOFF = 0.5  # seconds before the first retry, doubled each time


def install_hint(module: str) -> str:
    top = module.split(".")[0]
    extra = EXTRAS.get(top)
    if extra is not None:
        return f"pip install 'sipctl[{extra}]'"
    return f"pip install 'sipctl[octodns]' and the plugin that provides {module}"


def octodns_missing() -> str | None:
    """None when octoDNS itself can be imported, else what to install."""
    if importlib.util.find_spec("octodns") is None:
        return "octoDNS is not installed: pip install 'sipctl[octodns]' (or [route53], ...)"
    return None


def find_class(loaded: LoadedSpec, env: Mapping[str, str] | None = None) -> type:
    """The plugin class named by ``dns.octodns.class``; SpecError (file:line) when missing.

    Nothing is imported before the class passed ``class_refusal``: a spec names a class,
    and only an installed octoDNS plugin (or the runner profile's allow-list) provides it.
    """
    assert loaded.spec.dns is not None and loaded.spec.dns.octodns is not None
    path = loaded.spec.dns.octodns.provider_class
    where = loaded.where(("dns", "octodns", "class"))
    missing = octodns_missing()
    if missing is not None:
        raise SpecError(f"{where}: dns.octodns.class {path}: {missing}")
    refusal = class_refusal(path, os.environ if env is None else env)
    if refusal is not None:
        raise SpecError(
            f"{where}: dns.octodns.class {path}: {refusal}; nothing was imported",
            hint="a spec may name only a class of an installed octoDNS plugin distribution "
            "(one that requires octodns), or one the runner profile lists in "
            "octodns_classes (see: sipctl docs security)",
        )
    module_name, _, class_name = path.rpartition(".")
    try:
        found = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise SpecError(
            f"{where}: dns.octodns.class {path}: module {module_name} is not installed "
            f"({install_hint(module_name)})"
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # a broken plugin: say which, not how
        raise SpecError(
            f"{where}: dns.octodns.class {path}: module {module_name} cannot be imported "
            f"({type(exc).__name__}: {exc})"
        ) from None
    cls = getattr(module, class_name, None)
    from octodns.provider.base import BaseProvider

    if not isinstance(cls, type) or not issubclass(cls, BaseProvider):
        raise SpecError(
            f"{where}: dns.octodns.class {path}: {module_name} has no octoDNS provider class "
            f"{class_name!r}"
        )
    if class_supports(cls) is None:
        # octoDNS's own YamlProvider: SUPPORTS is a property of a configured instance, and
        # the provider rewrites its whole file from the zone it is given, while sipctl
        # writes only its own record sets, one change set at a time (each would drop the
        # others': the next plan showed every record as new)
        raise SpecError(
            f"{where}: dns.octodns.class {path}: the class does not say which record types "
            "it supports (its SUPPORTS is no set of type names: it is known only once "
            "configured), and sipctl, which writes only its own record sets, cannot drive "
            "such a provider",
            hint="for a zone file on this machine use dns.provider: zonefile; otherwise "
            "name the octoDNS provider of the DNS service that serves the zone",
        )
    return cls


def class_supports(cls: type) -> frozenset[str] | None:
    """The record types an octoDNS provider class supports (its ``SUPPORTS``), or None
    when the class does not say (a property, known only to a configured instance)."""
    value: object = getattr(cls, "SUPPORTS", frozenset())
    if isinstance(value, (set, frozenset, list, tuple)) and all(isinstance(t, str) for t in value):
        return frozenset(value)
    return None


def class_refusal(path: str, env: Mapping[str, str]) -> str | None:
    """Why the class ``path`` may not be imported (None: it may), read from the installed
    distributions' metadata alone: no module is imported or searched below its top level.

    The runner profile's ``octodns_classes`` allow a class as it is; else its top-level
    module must belong to an installed distribution that is octoDNS or requires it, and the
    import system must find that module among the distribution's own files (not a file of
    the working directory, ``sys.path[0]`` under ``python -m``, that shadows it)."""
    from sipctl.reconciler.bindings import runner_of

    runner = runner_of(env)
    if runner.profile is not None and path in runner.profile.octodns_classes:
        return None
    top = path.split(".", 1)[0]
    names = importlib.metadata.packages_distributions().get(top, [])
    dists = [d for d in (_distribution(n) for n in names) if d is not None and _is_plugin(d)]
    found = importlib.machinery.PathFinder.find_spec(top, sys.path)  # searched, not run
    if not names and found is None:
        return f"module {top} is not installed ({install_hint(top)})"
    if not dists:
        return f"module {top} is not provided by an installed octoDNS plugin distribution"
    origin = Path(found.origin).resolve() if found is not None and found.origin else None
    own = {
        Path(str(d.locate_file(f))).resolve()
        for d in dists
        for f in d.files or ()
        if f.parts and f.parts[0] in (top, f"{top}.py") and f.suffix == ".py"
    }
    if origin is None or origin not in own:
        return f"module {top} would be imported from {origin}, not from its distribution"
    return None


def _distribution(name: str) -> importlib.metadata.Distribution | None:
    try:
        return importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _is_plugin(dist: importlib.metadata.Distribution) -> bool:
    """octoDNS itself, or a distribution that requires it."""
    if _canonical(dist.metadata["Name"] or "") == "octodns":
        return True
    for requirement in dist.requires or ():
        name = re.split(r"[\s;<>=!~\[(]", requirement.strip(), maxsplit=1)[0]
        if _canonical(name) == "octodns":
            return True
    return False


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def offline_check(loaded: LoadedSpec) -> list[str]:
    """For ``sipctl validate`` (no network): the plugin class must be installed (else a
    ``file:line`` SpecError naming the package to install); returns warnings. Registered
    under ``sipctl.offline_checks``, so validate runs it without importing the provider."""
    cls = find_class(loaded)
    dns = loaded.spec.dns
    warnings = []
    if dns is not None and dns.naptr and "NAPTR" not in (class_supports(cls) or ()):
        warnings.append(
            f"{loaded.where(('dns', 'octodns', 'class'))}: {cls.__module__}.{cls.__name__} "
            "does not support NAPTR records: sipctl publishes SRV only (RFC 3263 clients "
            "fall back to SRV); set dns.naptr: false to say so"
        )
    return warnings


@dataclass
class PluginConfig:
    """The plugin class and its resolved arguments (secrets remembered by the RunContext)."""

    cls: type
    kwargs: dict[str, Any]
    class_path: str

    @classmethod
    def from_spec(cls, loaded: LoadedSpec, ctx: RunContext) -> PluginConfig:
        assert loaded.spec.dns is not None and loaded.spec.dns.octodns is not None
        config = loaded.spec.dns.octodns
        found = find_class(loaded, ctx.env)  # checked before a secret is even read
        kwargs = {
            key: _resolve(value, loaded, ctx, key) for key, value in config.arguments().items()
        }
        top = config.provider_class.split(".")[0]
        for key, value in PLUGIN_DEFAULTS.get(top, {}).items():
            kwargs.setdefault(key, value)
        return cls(found, kwargs, config.provider_class)

    @property
    def supports(self) -> set[str]:
        return set(class_supports(self.cls) or ())

    def instance(self) -> Any:
        """A fresh plugin instance (plugins cache what they read)."""
        return call(
            lambda: self.cls("sipctl", **self.kwargs), "configure the plugin", self.class_path
        )


def _resolve(value: Any, loaded: LoadedSpec, ctx: RunContext, key: str) -> Any:
    if isinstance(value, list):
        return [_resolve(v, loaded, ctx, key) for v in value]
    if isinstance(value, dict):
        return {k: _resolve(v, loaded, ctx, key) for k, v in value.items()}
    if isinstance(value, str) and value.startswith("env/"):
        name = value[len("env/") :]
        secret = ctx.env.get(name, "")
        if not secret:
            from sipctl.schemas.env_names import unset_variable

            where = loaded.where(("dns", "octodns", key))
            raise ProviderError(
                unset_variable(name, where, f"dns.octodns.{key}", f"the plugin's {key}", "env/")
            )
        return ctx.remember_secret(secret)
    return value


# --- calling the plugin -------------------------------------------------------------------------


def call(
    action: Callable[[], T],
    what: str,
    provider: str = "",
    sleep: Callable[[float], None] = time.sleep,
    before_retry: Callable[[], None] = lambda: None,
) -> T:
    """Run one plugin call; throttling is retried with backoff, other errors become one line.

    ``what`` completes "could not ..." (e.g. "read zone mysite.ru."); ``provider`` (the plugin
    class) is named in the line. A plugin may raise anything (botocore, requests, its own
    exceptions): only its kind and its provider's own reason are kept. ``before_retry`` runs
    after the pause, before the next try: a write re-plans there from what is live now,
    since part of a failed change set may have landed (octodns.py).
    """
    delay = BACKOFF
    for attempt in range(RETRIES + 1):
        try:
            with quiet():
                return action()
        except Exception as exc:
            kind = classify(exc)
            if kind in RETRIED and attempt < RETRIES:
                sleep(delay * random.uniform(0.8, 1.2))
                delay *= 2
                before_retry()
                continue
            raise translate(exc, kind, what, attempt, provider) from None
    raise AssertionError("unreachable")


_QUIET_LOCK = threading.Lock()
_quiet_depth = 0
_quiet_before = logging.NOTSET


@contextmanager
def quiet() -> Iterator[None]:
    """Silence Python logging while octoDNS runs: its plugins log to loggers of their own
    (with no handler, Python prints warnings and errors on stderr, raw). What matters reaches
    the user as sipctl's own line (``translate``)."""
    global _quiet_depth, _quiet_before
    with _QUIET_LOCK:
        if _quiet_depth == 0:
            _quiet_before = logging.root.manager.disable
            logging.disable(logging.CRITICAL)
        _quiet_depth += 1
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                logging.disable(_quiet_before)


def classify(exc: BaseException) -> str:
    """auth | throttled | condition | refused | missing | server | unreachable | other."""
    status, code, message = _details(exc)
    lowered = message.lower()
    if status in (401, 403) or code in _AUTH_CODES or "unauthorized" in lowered:
        return "auth"
    if status == 429 or code in _THROTTLE_CODES or "rate exceeded" in lowered:
        return "throttled"
    if code == "InvalidChangeBatch" and any(w in lowered for w in _CONDITION_WORDS):
        return "condition"
    if code in ("NoSuchHostedZone",) or status == 404:
        return "missing"
    if code == "InvalidChangeBatch" or status in (400, 422):
        return "refused"
    if status is not None and status >= 500:  # it answered: not "unreachable" (an OSError)
        return "server"
    name = type(exc).__name__
    if name in ("ConnectionError", "EndpointConnectionError", "ConnectTimeout", "ReadTimeout"):
        return "unreachable"
    if isinstance(exc, OSError) or "Connection" in name or "Timeout" in name:
        return "unreachable"
    return "other"


def _details(exc: BaseException) -> tuple[int | None, str, str]:
    """(HTTP status, error code, the provider's own reason) of a botocore or requests error."""
    response = getattr(exc, "response", None)
    status: int | None = None
    code = ""
    message = str(exc)
    if isinstance(response, dict):  # botocore ClientError
        error = response.get("Error", {})
        code = str(error.get("Code", ""))
        message = str(error.get("Message", "")) or message
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    elif response is not None:  # requests HTTPError
        status = getattr(response, "status_code", None)
        try:
            body = read_json(response.content)
            message = str(body.get("error", "")) or message
        except Exception:
            message = getattr(response, "text", "") or message
    return status, code, peer_words(message, 300)


class ChangeSetRefused(StalePlanError):
    """A conditional provider (Route53) refused a change set whole, never retried: a record
    set it deletes or holds is no longer as read (a caller that knows the set names it)."""


def translate(
    exc: BaseException, kind: str, what: str, retries: int = 0, provider: str = ""
) -> SipctlError:
    status, code, reason = _details(exc)
    named = f" ({provider})" if provider else ""
    said = f" ({code or status}: {reason})" if (code or status) and reason else ""
    if kind == "auth":
        return ProviderError(
            f"the DNS provider{named} refused the credentials: could not {what}{said}; check the "
            "env/ variables named in dns.octodns and the key's permissions"
        )
    if kind == "throttled":
        return ProviderError(
            f"the DNS provider{named} kept throttling: could not {what} after {retries} retries "
            f"with backoff{said}; nothing more was sent. Try again later"
        )
    if kind == "server":
        return ProviderError(
            f"the DNS provider{named} kept failing on its side: could not {what} after "
            f"{retries} retries with backoff{said}; its own log says why. Try again later"
        )
    if kind == "condition":
        return ChangeSetRefused(
            f"the DNS provider{named} refused the change set as a whole: a record set it replaces "
            f"changed since sipctl read it{said}; nothing was changed. Run plan again: it reads "
            "what is live now"
        )
    if kind == "missing":
        return ProviderError(f"the DNS provider{named} does not know it: could not {what}{said}")
    if kind == "refused":
        return ProviderError(
            f"the DNS provider{named} refused the change set: could not {what}{said}; nothing "
            "was changed"
        )
    if kind == "unreachable":
        return ProviderError(
            f"cannot reach the DNS provider's API{named}: could not {what} "
            f"({type(exc).__name__}: {peer_words(str(exc), 200)})"
        )
    return ProviderError(
        f"the octoDNS plugin{named} failed: could not {what} ({type(exc).__name__}: "
        f"{peer_words(str(exc), 300)})"
    )
