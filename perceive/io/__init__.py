"""File formats and safe file writing."""
