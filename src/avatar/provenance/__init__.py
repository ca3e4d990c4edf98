"""Marking every generated image as AI-made, machine-readably, and reading the marks back."""
