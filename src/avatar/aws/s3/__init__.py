"""The versioned bucket: one helper (`bucket`) and one adapter per feature (`photos`, `avatars`, `orchestration`,
`training`)."""
