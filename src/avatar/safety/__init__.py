"""What may leave the system: generated images screened for unsafe content before they are stored or returned."""
