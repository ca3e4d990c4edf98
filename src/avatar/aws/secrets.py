"""Secrets Manager adapter: the deployment's C2PA signing identity (docs/deploy.md puts it there)."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from avatar.errors import ContentCredentialsUnavailable
from avatar.provenance.content_credentials import ContentCredentials, SigningIdentity


class SigningIdentitySecret:
    """The secret holding `{"certificate_chain", "private_key", "algorithm"}` (PEM)."""

    def __init__(self, client: Any, secret_id: str) -> None:
        self._client = client
        self._secret_id = secret_id

    def load(self) -> SigningIdentity:
        """The identity; raises ContentCredentialsUnavailable when it cannot be read or is not configured yet."""
        try:
            text = self._client.get_secret_value(SecretId=self._secret_id)["SecretString"]
        except (ClientError, BotoCoreError, KeyError) as exc:
            raise ContentCredentialsUnavailable(f"the signing identity cannot be read: {exc}") from exc
        try:
            return SigningIdentity.from_json(text)
        except ValueError as exc:
            raise ContentCredentialsUnavailable(
                "the C2PA signing identity is not configured: put it in the content-credentials secret "
                "(docs/deploy.md); until then no image is stored or returned"
            ) from exc


def content_credentials(client: Any, secret_id: str) -> ContentCredentials:
    """The C2PA signer with the identity in the secret, naming this package's version as the generator; raises
    ContentCredentialsUnavailable."""
    identity = SigningIdentitySecret(client, secret_id).load()
    return ContentCredentials(identity, generator_version=version("avatar-service"))
