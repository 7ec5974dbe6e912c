"""The web chat channel."""
