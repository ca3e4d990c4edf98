"""Erasing a user: routing stops first, then every record and object goes, then other systems are told."""
