"""Retention: clues past their status's retention period are purged by crypto-shredding, unless held."""
