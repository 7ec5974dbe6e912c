"""What each command or free message does. Transport-neutral: no channel library is imported here."""
