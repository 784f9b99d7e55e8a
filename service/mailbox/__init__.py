"""Received mail as records: deduplication, the quarantine, filtered mail and its purge. The mail edge
(``service.mail``) writes them; staff read them through the API."""
