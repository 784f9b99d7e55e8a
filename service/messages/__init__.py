"""Two-way messages between investigators and the (usually anonymous) reporter of a clue."""
