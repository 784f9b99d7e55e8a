"""The mailbox channel: SMTP receiving and MIME parsing of tips sent by email."""
