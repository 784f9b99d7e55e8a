"""The hotline, letters and visits, and the staff-entered sources: clues that staff type in."""
