"""The citizen web channel: server-rendered pages that work without JavaScript."""
