"""The check of one photo's bytes: decoding, faces, measures, thresholds and the verdict. `verdict` and `policy` are
light; `checker`, `decoding`, `faces` and `measures` need OpenCV and Pillow (the `photos` extra)."""
