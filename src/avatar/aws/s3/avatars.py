"""Generated avatars: written once, shared by short-lived presigned GET URLs."""

from __future__ import annotations

from avatar.aws.s3.bucket import Bucket


class AvatarImages(Bucket):
    """Where generated images go (the generation's ImageStore)."""

    def put_png(self, key: str, png: bytes, *, likeness: float | None, face_found: bool | None) -> None:
        """Store one PNG; its likeness and whether a face was found go in the object's metadata (absent when the
        image was not scored)."""
        metadata = {}
        if face_found is not None:
            metadata["face-found"] = "true" if face_found else "false"
        if likeness is not None:
            metadata["likeness"] = f"{likeness:.3f}"
        self.put(key, png, "image/png", metadata=metadata)

    def share(self, key: str, *, expires_in: int) -> str:
        """A presigned GET URL valid for `expires_in` seconds."""
        return str(
            self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.name, "Key": key}, ExpiresIn=expires_in
            )
        )
