"""The dialogue engine and the dialogues. Transport-neutral: no channel library is imported here."""
