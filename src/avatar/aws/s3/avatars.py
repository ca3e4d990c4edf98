"""Generated avatars: written once, shared by short-lived presigned GET URLs."""

from __future__ import annotations

from avatar.aws.s3.bucket import Bucket


class AvatarImages(Bucket):
    """Where generated images go (the generation's ImageStore)."""

    def put_png(self, key: str, png: bytes) -> None:
        """Store one PNG."""
        self.put(key, png, "image/png")

    def share(self, key: str, *, expires_in: int) -> str:
        """A presigned GET URL valid for `expires_in` seconds."""
        return str(
            self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.name, "Key": key}, ExpiresIn=expires_in
            )
        )
