"""Inbound adapters: each channel turns what arrives into a call to the intake service."""
