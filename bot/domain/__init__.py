"""Rules of the work with no I/O of their own: periods, schedules, parsing, permissions, forms,
and the vocabulary every layer shares (clock, settings, translations, messages)."""
