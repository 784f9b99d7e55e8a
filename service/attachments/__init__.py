"""Attachment pipeline: type sniffing, metadata removal, streamed encryption and blob storage."""
