"""One ACME order (RFC 8555) answered by DNS-01, with ``acme`` (certbot's protocol library).

Imported only when an order is due: ``acme`` is an optional extra (``sipctl[acme]``).
The challenge records go out through a ``ChallengeWriter`` (the spec's DNS provider), are
waited for on the zone's authoritative server before the ACME server is asked to look, and
are withdrawn afterwards whatever happened. Every failure becomes one ProviderError line
that carries the ACME server's own words (its problem document's detail).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sipctl import __version__
from sipctl.errors import ProviderError
from sipctl.output import peer_words
from sipctl.providers.certificate.pem import new_private_key
from sipctl.providers.dns.challenge import ChallengeRecord, ChallengeWriter, challenge_owner

if TYPE_CHECKING:
    from acme import client as acme_client
    from acme import messages

ORDER_TIMEOUT = 120.0  # seconds for the whole order: validation and issuance
VISIBLE_TIMEOUT = 60.0  # seconds to wait for the challenge records on the primary


@dataclass(frozen=True)
class Issued:
    """A new certificate: its private key (never shown) and the full chain, both PEM."""

    key_pem: bytes
    fullchain_pem: bytes


@dataclass(frozen=True)
class OrderRequest:
    directory: str
    email: str | None
    ca_file: Path | None
    account_key_pem: bytes
    names: tuple[str, ...]


def obtain(request: OrderRequest, writer: ChallengeWriter, log: Callable[[str], None]) -> Issued:
    """Order a certificate for ``request.names``; ProviderError in one line when it fails."""
    try:
        from acme import client, crypto_util, errors, messages
        from cryptography.hazmat.primitives import serialization
        from josepy.jwa import ES256
        from josepy.jwk import JWKEC
    except ImportError:
        raise ProviderError(
            "asterisk.tls.acme needs the ACME client library, which is not installed: "
            "pip install 'sipctl[acme]'"
        ) from None
    where = f"ACME server {request.directory}"
    account_key = serialization.load_pem_private_key(request.account_key_pem, password=None)
    jwk = JWKEC(key=account_key)
    verify: Any = str(request.ca_file) if request.ca_file is not None else True
    net = client.ClientNetwork(
        jwk, alg=ES256, verify_ssl=verify, user_agent=f"sipctl/{__version__}"
    )
    try:
        acme = client.ClientV2(client.ClientV2.get_directory(request.directory, net), net)
        _register(acme, request.email, messages, errors)
        key_pem = new_private_key()
        order = acme.new_order(crypto_util.make_csr(key_pem, list(request.names)))
        log(f"{where}: order for {', '.join(request.names)}")
        records, answers = _dns01(order, jwk, messages)
        deadline = datetime.now() + timedelta(seconds=ORDER_TIMEOUT)
        try:
            if records:
                writer.publish_challenges(records)
                _wait_visible(writer, records)
                log(f"{where}: {len(records)} challenge record(s) live; asking it to validate")
            for challenge, response in answers:
                acme.answer_challenge(challenge, response)
            done = acme.poll_and_finalize(order, deadline)
        finally:
            _withdraw(writer, records)
    except errors.ValidationError as exc:
        raise ProviderError(f"{where} refused the order: {_validation_words(exc)}") from None
    except messages.Error as exc:
        raise ProviderError(f"{where} refused the order: {_problem_words(exc)}") from None
    except errors.TimeoutError:
        raise ProviderError(
            f"{where} did not validate and issue within {ORDER_TIMEOUT:g} s"
        ) from None
    except errors.Error as exc:
        raise ProviderError(f"{where} answered something sipctl cannot use: {exc}") from None
    except OSError as exc:  # requests' errors are OSErrors
        raise ProviderError(_network_words(where, exc, request.ca_file)) from None
    return Issued(key_pem, done.fullchain_pem.encode("ascii"))


def _register(acme: acme_client.ClientV2, email: str | None, messages: Any, errors: Any) -> None:
    """Create the account of this key, or find it when it exists (RFC 8555 7.3.1)."""
    registration = messages.NewRegistration.from_data(email=email, terms_of_service_agreed=True)
    try:
        acme.new_account(registration)
    except errors.ConflictError as exc:
        acme.net.account = messages.RegistrationResource(
            uri=exc.location, body=messages.Registration()
        )


def _dns01(
    order: messages.OrderResource, jwk: Any, messages: Any
) -> tuple[list[ChallengeRecord], list[tuple[Any, Any]]]:
    """The TXT records and the answers of every authorization still pending."""
    from acme import challenges

    records: list[ChallengeRecord] = []
    answers: list[tuple[Any, Any]] = []
    for authz in order.authorizations:
        if authz.body.status == messages.STATUS_VALID:
            continue  # the server still trusts an earlier proof of this name
        name = authz.body.identifier.value
        found = [c for c in authz.body.challenges if isinstance(c.chall, challenges.DNS01)]
        if not found:
            raise ProviderError(f"the ACME server offers no dns-01 challenge for {name}")
        challenge = found[0]
        records.append(ChallengeRecord(challenge_owner(name), challenge.chall.validation(jwk)))
        answers.append((challenge, challenge.chall.response(jwk)))
    return records, answers


def _wait_visible(writer: ChallengeWriter, records: Sequence[ChallengeRecord]) -> None:
    deadline = time.monotonic() + VISIBLE_TIMEOUT
    while not writer.challenges_visible(records):
        if time.monotonic() > deadline:
            raise ProviderError(
                f"the challenge records were written but the zone's server did not answer them "
                f"within {VISIBLE_TIMEOUT:g} s"
            )
        time.sleep(0.2)


def _withdraw(writer: ChallengeWriter, records: Sequence[ChallengeRecord]) -> None:
    if not records:
        return
    try:
        writer.withdraw_challenges(records)
    except ProviderError as exc:
        owners = ", ".join(sorted({r.owner for r in records}))
        raise ProviderError(
            f"removing the ACME challenge records failed ({exc}); delete the TXT records at "
            f"{owners} by hand"
        ) from None


def _problem_words(problem: messages.Error) -> str:
    kind = (problem.typ or "").rsplit(":", 1)[-1]
    detail = problem.detail or problem.description or "no detail given"
    return _one_line(f"{detail} ({kind})" if kind else detail)


def _validation_words(exc: Any) -> str:
    found: list[str] = []
    for authz in exc.failed_authzrs:
        name = authz.body.identifier.value
        for challenge in authz.body.challenges:
            if challenge.error is not None:
                found.append(f"{name}: {_problem_words(challenge.error)}")
    return "; ".join(found) or "validation failed, without a reason"


def _network_words(where: str, exc: OSError, ca_file: Path | None) -> str:
    text = _one_line(str(exc))
    if "CERTIFICATE_VERIFY_FAILED" in text or "SSLError" in type(exc).__name__:
        trust = f"the CA in {ca_file}" if ca_file else "the system's CAs"
        return (
            f"cannot trust the HTTPS certificate of {where} with {trust}; a private ACME "
            "server needs asterisk.tls.acme.ca_file"
        )
    return f"cannot reach {where}: {peer_words(text, 300)}"


def _one_line(text: str) -> str:
    return " ".join(text.split())
