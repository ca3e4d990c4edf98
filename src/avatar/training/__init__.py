"""From a user's accepted photos to a LoRA adapter: preparation, DreamBooth training, packaging, the GPU job."""
