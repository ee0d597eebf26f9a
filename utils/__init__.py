"""Utilities shared by the scripts and the library that are not about torch: files.py (atomic writes),
errors.py (UserError, the base of the errors reported as one line)."""
