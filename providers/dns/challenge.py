"""ACME DNS-01 challenge records: the small interface a DNS provider implements to answer them.

The certificate layer writes ``_acme-challenge.<name>`` TXT records through the spec's own
DNS provider, so whatever sipctl can publish SIP records in, it can prove a name in. A
provider family answers challenges with these three methods (``ChallengeWriter``) and
declares it (``Provider.challenge_writer``); the certificate layer asks ``challenge_writer``
for one and never knows which family it got.

Challenge records belong to an order only while it is validated: ``publish`` adds exactly
these values (other TXT records at the name stay), ``withdraw`` deletes exactly these values
again, and ``visible`` asks the zone's authoritative server, so the ACME server is told to
look only once the records are really there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from sipctl.errors import ProviderError

if TYPE_CHECKING:
    from sipctl.providers.base import RunContext
    from sipctl.providers.dns.owned import LiveRrset
    from sipctl.schemas.loader import LoadedSpec

CHALLENGE_LABEL = "_acme-challenge"
CHALLENGE_TTL = 60  # seconds: resolvers must not keep an old challenge for long


@dataclass(frozen=True)
class ChallengeRecord:
    """One TXT value at ``_acme-challenge.<name>.`` (absolute owner name)."""

    owner: str
    value: str


def challenge_owner(name: str) -> str:
    return f"{CHALLENGE_LABEL}.{name.rstrip('.')}."


def challenge_names(records: Sequence[ChallengeRecord]) -> list[tuple[str, str]]:
    """The TXT rrsets ``records`` are in, as (owner, type) pairs."""
    return sorted({(r.owner, "TXT") for r in records})


def challenges_in(
    rrsets: Mapping[tuple[str, str], LiveRrset], records: Sequence[ChallengeRecord]
) -> bool:
    """Every one of ``records`` is a value of the TXT rrset at its name in ``rrsets``."""
    for record in records:
        found = rrsets.get((record.owner, "TXT"))
        if found is None or f'"{record.value}"' not in {exact for _, exact in found.records}:
            return False
    return True


class ChallengeWriter(Protocol):
    """What a DNS provider needs to answer ACME DNS-01 challenges."""

    def publish_challenges(self, records: Sequence[ChallengeRecord]) -> None:
        """Add these TXT values (leaving others at the same names alone)."""
        ...

    def withdraw_challenges(self, records: Sequence[ChallengeRecord]) -> None:
        """Delete exactly these TXT values; values already gone are no error."""
        ...

    def challenges_visible(self, records: Sequence[ChallengeRecord]) -> bool:
        """True when the zone's authoritative server answers every one of them."""
        ...


def acme_refusal(loaded: LoadedSpec) -> str | None:
    """Why the spec's DNS provider cannot answer ``asterisk.tls.acme``'s challenges, asked of
    its class (``Provider.answers_acme_challenges``) without opening it: the one rule that
    validate (offline) and plan (``challenge_writer``) both say. None when it can, or when
    the provider is not installed (that is said on its own)."""
    from sipctl.errors import SipctlError
    from sipctl.providers.base import load_provider, provider_installed

    dns = loaded.spec.dns
    if dns is None or not provider_installed(dns.provider):
        return None
    try:
        if load_provider(dns.provider).answers_acme_challenges:
            return None
    except SipctlError:
        return None  # a plugin that does not load: said where it is opened
    able = ", ".join(acme_providers()) or "none installed"
    return (
        f"{loaded.where(('dns', 'provider'))}: dns provider {dns.provider!r} cannot publish "
        "the ACME DNS-01 challenge records that asterisk.tls.acme "
        f"({loaded.where(('asterisk', 'tls', 'acme'))}) needs; use a DNS provider that can "
        f"({able}), or obtain the certificate another way and leave asterisk.tls.acme out"
    )


def acme_providers() -> list[str]:
    """sipctl's own providers that answer ACME challenges (named in the refusal)."""
    from sipctl.providers.base import BUILT_IN, ENTRY_POINT_GROUP, load_provider

    return [
        name for name in BUILT_IN[ENTRY_POINT_GROUP] if load_provider(name).answers_acme_challenges
    ]


def challenge_writer(loaded: LoadedSpec, ctx: RunContext) -> ChallengeWriter:
    """The spec's DNS provider, as a challenge writer; ProviderError when it cannot be one."""
    from sipctl.providers.base import open_provider

    dns = loaded.spec.dns
    if dns is None:
        raise ProviderError(
            f"{loaded.where(('asterisk', 'tls', 'acme'))}: ACME DNS-01 needs the spec's dns "
            "section to publish its challenge records"
        )
    refusal = acme_refusal(loaded)
    if refusal is not None:
        raise ProviderError(refusal)
    writer = open_provider(dns.provider, loaded, ctx).challenge_writer()
    if writer is None:  # a provider that declares the capability but does not give it
        raise ProviderError(
            f"{loaded.where(('dns', 'provider'))}: dns provider {dns.provider!r} declares "
            "answers_acme_challenges but its challenge_writer() gives none; fix the provider, "
            "or obtain the certificate another way and leave asterisk.tls.acme out"
        )
    return writer
