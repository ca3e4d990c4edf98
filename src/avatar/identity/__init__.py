"""Whose face is this: face models behind small protocols, the person of a photo set, likeness, head turn and
aligned crops. Used by the photo check, the training job and generation."""
