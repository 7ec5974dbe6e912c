"""The Zalo channel."""
