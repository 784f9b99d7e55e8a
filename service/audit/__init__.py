"""Audit trail: append-only hash chains and their verification."""
