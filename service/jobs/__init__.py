"""Durable background jobs coordinated through the database (see registry.py for how to add a task)."""
