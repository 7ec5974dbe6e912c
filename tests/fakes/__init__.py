"""Fake Bot API servers for the channel tests: real HTTP on 127.0.0.1, no network beyond it."""
