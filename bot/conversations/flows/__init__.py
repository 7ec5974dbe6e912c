"""The dialogues, one module each. They call services and repositories, never the session."""
