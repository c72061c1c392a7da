"""What a certificate and its key say, read with ``cryptography`` (pure: bytes in, facts out).

Private keys are only ever loaded to compare their public half with the certificate's;
nothing here returns or formats a private key's contents.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True)
class CertificateFacts:
    """The leaf certificate of a PEM file (the first certificate in it)."""

    names: tuple[str, ...]  # DNS names (subjectAltName), lower case, sorted
    not_after: datetime
    serial: str  # hex
    issuer: str  # the issuer's common name, else its whole DN
    public_key: bytes  # SubjectPublicKeyInfo, DER
    sha256: str  # of the leaf's DER: what a TLS server shows

    def covers(self, name: str) -> bool:
        """True when valid for ``name``: exactly, or by a wildcard for its one left label."""
        name = name.lower().rstrip(".")
        if name in self.names:
            return True
        parent = name.split(".", 1)[1] if "." in name else ""
        return bool(parent) and f"*.{parent}" in self.names

    def days_left(self, now: datetime | None = None) -> int:
        """Whole days until it expires; negative once it has."""
        left = self.not_after - (now or datetime.now(UTC))
        return left.days


def read_certificate(pem: bytes) -> CertificateFacts:
    """Facts of the first certificate in ``pem``; ValueError when there is none."""
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise ValueError("not a PEM certificate") from None
    return facts_of(certs[0])


def read_der_certificate(der: bytes) -> CertificateFacts:
    return facts_of(x509.load_der_x509_certificate(der))


def facts_of(cert: x509.Certificate) -> CertificateFacts:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = san.value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        names = []
    common = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    issuer = str(common[0].value) if common else cert.issuer.rfc4514_string()
    der = cert.public_bytes(serialization.Encoding.DER)
    return CertificateFacts(
        names=tuple(sorted({n.lower().rstrip(".") for n in names})),
        not_after=cert.not_valid_after_utc,
        serial=f"{cert.serial_number:x}",
        issuer=issuer,
        public_key=cert.public_key().public_bytes(*_SPKI),
        sha256=hashlib.sha256(der).hexdigest(),
    )


def key_matches(key_pem: bytes, facts: CertificateFacts) -> bool:
    """True when ``key_pem`` is the private key of the certificate; ValueError when it is
    not a private key at all (the message never quotes the file)."""
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise ValueError("not an unencrypted PEM private key") from None
    return key.public_key().public_bytes(*_SPKI) == facts.public_key


def public_key_matches(public_pem: bytes, facts: CertificateFacts) -> bool:
    """``key_matches`` for the public half only (what the read gate answers of a key)."""
    try:
        key = serialization.load_pem_public_key(public_pem)
    except (ValueError, TypeError):
        raise ValueError("not an unencrypted PEM private key") from None
    return key.public_bytes(*_SPKI) == facts.public_key


def new_private_key() -> bytes:
    """A fresh ECDSA P-256 key, PKCS#8 PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def leaf_der(pem: bytes) -> bytes:
    """The DER of the first certificate of a PEM chain."""
    cert = x509.load_pem_x509_certificates(pem)[0]
    return cert.public_bytes(serialization.Encoding.DER)
