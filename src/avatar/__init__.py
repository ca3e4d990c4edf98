"""Personal avatar models from selfies: the product the Lambda services, the photo-check image and the GPU containers
ship (the development tooling is the separate `avatar_dev` package, never shipped).

Features (use cases behind small ports): `intake`, `training_jobs`, `generation`, `erasure`. Shared rules: `states`
(the state machine), `records`, `errors`, `object_keys`, `contracts` (every message crossing a boundary). The photo
check itself: `photo_check`. GPU side: `fine_tuning` (DreamBooth + LoRA) and `serving` (every LoRA on one shared base).
Adapters to AWS: `aws`, one per service.
"""
