"""The local stack's C2PA signing identity: a development CA and a signer it issued, generated on first run and kept
in the cache folder (`content-credentials/`), so every local run signs with the same certificate and `avatar verify`
can trust it. Never for a deployment: there the identity comes from a CA on the C2PA trust list (docs/safety.md)."""

from __future__ import annotations

import datetime
import json
import os
import tempfile
from pathlib import Path

from avatar.provenance.content_credentials import SigningIdentity

IDENTITY_FILE = "development.json"  # the identity and the CA that issued it, written at once (one file, renamed)


def default_folder() -> Path:
    """`content-credentials/` in the cache folder (`AVATAR_CACHE_DIR`, else ~/.cache/avatar)."""
    return Path(os.environ.get("AVATAR_CACHE_DIR", Path.home() / ".cache" / "avatar")) / "content-credentials"


def _name(common_name: str) -> object:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "avatar-service development"),
        ]
    )


def generate_identity() -> tuple[SigningIdentity, str]:
    """A new development CA and an ES256 signer certificate it issued (C2PA's profile: not a CA, digital signature,
    email-protection EKU); the identity, and the CA's certificate (PEM) to trust."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    now = datetime.datetime.now(datetime.UTC)
    usage = dict.fromkeys(
        (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ),
        False,
    )
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("avatar-service development CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)  # type: ignore[arg-type]
        .issuer_name(ca_name)  # type: ignore[arg-type]
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(**usage | {"key_cert_sign": True, "crl_sign": True}), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    signer = (
        x509.CertificateBuilder()
        .subject_name(_name("avatar-service development signer"))  # type: ignore[arg-type]
        .issuer_name(ca_name)  # type: ignore[arg-type]
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(**usage | {"digital_signature": True}), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_pem = ca.public_bytes(pem).decode()
    identity = SigningIdentity(
        certificate_chain=signer.public_bytes(pem).decode() + ca_pem,
        private_key=key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode(),
    )
    return identity, ca_pem


def development_identity(folder: Path | None = None) -> tuple[SigningIdentity, str]:
    """The cached development identity and the CA certificate to trust (generated into `folder` on first use; two
    processes generating at once both end with the one that was renamed last)."""
    path = (folder or default_folder()) / IDENTITY_FILE
    if not path.is_file():
        identity, ca_pem = generate_identity()
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as written:
            json.dump({"identity": json.loads(identity.to_json()), "trust_anchor": ca_pem}, written)
        os.chmod(written.name, 0o600)
        os.replace(written.name, path)
    stored = json.loads(path.read_text())
    return SigningIdentity.from_json(json.dumps(stored["identity"])), str(stored["trust_anchor"])


def development_trust_anchor(folder: Path | None = None) -> str | None:
    """The development CA's certificate, if a development identity was ever made in `folder` (none is made here)."""
    path = (folder or default_folder()) / IDENTITY_FILE
    return str(json.loads(path.read_text())["trust_anchor"]) if path.is_file() else None
