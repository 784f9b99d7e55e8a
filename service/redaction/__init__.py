"""Redaction: new versions of a clue's texts and files that hide marked spans and regions."""
