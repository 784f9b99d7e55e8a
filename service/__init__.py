"""Tipline: anonymous tip intake and clue registry."""
