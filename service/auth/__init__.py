"""Staff accounts, units, roles, API tokens and the one table of who may do what."""
