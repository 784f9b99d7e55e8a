"""The clue registry (线索台账): clues, numbering, assignment and the staff's reads."""
