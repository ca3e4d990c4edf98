"""From a user's accepted photos to a LoRA: preparation, class images, DreamBooth training, the per-user model archive,
and the GPU job the asynchronous endpoint runs."""
