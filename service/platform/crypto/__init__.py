"""Cryptography: sealed envelopes, key files and key rings. No database access here."""
