"""Photo checks: `verdict` and `policy` are light; `check`, `faces` and `quality` need OpenCV (the `photos` extra)."""
