"""Domain types, lifecycle rules as pure functions, and the read-model tables.

Nothing here performs I/O except `tables`, which only declares SQLAlchemy
metadata and small session helpers used by activities and the API.
"""
