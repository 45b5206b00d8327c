"""sidecars."""
