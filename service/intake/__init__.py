"""Intake: the one submission pipeline every channel feeds, and receipts."""
