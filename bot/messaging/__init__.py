"""Everything that leaves after the request: one outbox, its sender, and what builds on it."""
