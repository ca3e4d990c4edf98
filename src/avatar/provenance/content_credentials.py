"""C2PA content credentials on every PNG the system keeps: a manifest, signed with the deployment's key, saying the
image was created (`c2pa.created`) by this generator as `trainedAlgorithmicMedia`. Made and read with the Content
Authenticity Initiative's own library (`c2pa-python`), so any C2PA reader can check it.

The signature binds the image's bytes: a changed pixel makes the manifest invalid, and re-encoding the image drops
it (the XMP mark and the invisible part of the provenance are for that case, see docs/safety.md).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

from avatar.provenance.xmp import DIGITAL_SOURCE_TYPE

GENERATOR_NAME = "avatar-service"
CREATED = "c2pa.created"
# Ask the library for no thumbnail: it would add a JPEG copy of the image to every PNG (~100 KB at 512 px).
_SIGNING_SETTINGS = {"builder": {"thumbnail": {"enabled": False}}}


@dataclass(frozen=True)
class SigningIdentity:
    """The deployment's C2PA signing key and certificate chain (PEM; the signer's certificate first)."""

    certificate_chain: str
    private_key: str
    algorithm: str = "es256"

    @classmethod
    def from_json(cls, text: str) -> SigningIdentity:
        """The identity from its JSON form (`{"certificate_chain", "private_key", "algorithm"}`); raises ValueError."""
        values = json.loads(text)
        if not isinstance(values, dict) or not values.get("certificate_chain") or not values.get("private_key"):
            raise ValueError("a signing identity needs `certificate_chain` and `private_key` (PEM)")
        return cls(values["certificate_chain"], values["private_key"], values.get("algorithm", "es256"))

    def to_json(self) -> str:
        """The JSON form the secret holds."""
        return json.dumps(
            {"certificate_chain": self.certificate_chain, "private_key": self.private_key, "algorithm": self.algorithm}
        )


def manifest_definition(*, generator_version: str, title: str = "avatar.png") -> dict[str, Any]:
    """The manifest every image gets: who made it, and that it was created by a trained model."""
    return {
        "claim_generator_info": [{"name": GENERATOR_NAME, "version": generator_version}],
        "title": title,
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": CREATED,
                            "digitalSourceType": DIGITAL_SOURCE_TYPE,
                            "softwareAgent": {"name": GENERATOR_NAME, "version": generator_version},
                        }
                    ]
                },
            }
        ],
    }


class ContentCredentials:
    """Signs PNGs with one identity (the generation's ImageSigner). Thread-safe: each signature has its own builder."""

    def __init__(self, identity: SigningIdentity, *, generator_version: str) -> None:
        import c2pa

        self._c2pa = c2pa
        self._version = generator_version
        self._signer = c2pa.Signer.from_info(
            c2pa.C2paSignerInfo(
                identity.algorithm, identity.certificate_chain.encode(), identity.private_key.encode(), None
            )
        )
        self._context = c2pa.Context(settings=c2pa.Settings.from_json(json.dumps(_SIGNING_SETTINGS)))

    def sign_png(self, png: bytes, *, title: str = "avatar.png") -> bytes:
        """The PNG with its signed manifest embedded (a `caBX` chunk)."""
        out = io.BytesIO()
        definition = manifest_definition(generator_version=self._version, title=title)
        with self._c2pa.Builder(definition, self._context) as builder:
            builder.sign(self._signer, "image/png", io.BytesIO(png), out)
        return out.getvalue()


@dataclass(frozen=True)
class CredentialsReport:
    """What an image's C2PA manifest says, as the C2PA library validates it."""

    state: str | None  # "Trusted" (valid, signer chains to a trust anchor), "Valid", "Invalid"; None: no manifest
    generator: str | None = None
    actions: tuple[str, ...] = ()
    digital_source_type: str | None = None
    signer: str | None = None  # the signing certificate's common name and issuer
    problems: tuple[str, ...] = field(default=())  # validation status codes (untrusted signer, hash mismatch, ...)

    @property
    def ai_generated(self) -> bool:
        """Whether a manifest that is not invalid says a trained model created the image."""
        return self.state in ("Trusted", "Valid") and self.digital_source_type == DIGITAL_SOURCE_TYPE


def read_credentials(
    data: bytes, *, trust_anchors: str | None = None, mime_type: str = "image/png"
) -> CredentialsReport:
    """Read and validate an image's manifest; `trust_anchors` (PEM) makes a signer that chains to one Trusted."""
    import c2pa

    settings: dict[str, Any] = {}
    if trust_anchors:
        settings = {"verify": {"verify_trust": True}, "trust": {"trust_anchors": trust_anchors}}
    context = c2pa.Context(settings=c2pa.Settings.from_json(json.dumps(settings)))
    try:
        with c2pa.Reader(mime_type, io.BytesIO(data), None, context) as reader:
            state = reader.get_validation_state()
            store = json.loads(reader.json())
    except c2pa.C2paError as error:
        if "ManifestNotFound" in type(error).__name__ or "no JUMBF" in str(error):
            return CredentialsReport(state=None)
        return CredentialsReport(state="Invalid", problems=(str(error),))
    manifest = store.get("manifests", {}).get(store.get("active_manifest", ""), {})
    actions = [
        action
        for assertion in manifest.get("assertions", [])
        if assertion.get("label", "").startswith("c2pa.actions")
        for action in assertion.get("data", {}).get("actions", [])
    ]
    generators = manifest.get("claim_generator_info") or [{}]
    signature = manifest.get("signature_info", {})
    return CredentialsReport(
        state=state,
        generator=" ".join(filter(None, (generators[0].get("name"), generators[0].get("version")))) or None,
        actions=tuple(action.get("action", "") for action in actions),
        digital_source_type=next((a["digitalSourceType"] for a in actions if a.get("digitalSourceType")), None),
        signer=" / ".join(filter(None, (signature.get("common_name"), signature.get("issuer")))) or None,
        problems=tuple(status.get("code", "") for status in store.get("validation_status") or []),
    )
