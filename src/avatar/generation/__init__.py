"""Generating avatars for a signed-in user on their current model, through the multi-model endpoint."""
