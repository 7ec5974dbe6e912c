"""Pieces of dialogue that several flows share, each asked and read the same way everywhere."""
