"""Generating avatars from a base model and a user's adapter."""
