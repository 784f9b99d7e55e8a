"""Outbound mail through a durable outbox: acknowledgements to reporters, content-free staff notices."""
