"""Temporal activities: every side effect warroom has (notify, persist)."""
