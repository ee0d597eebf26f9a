"""UserError: the base of every error that means bad input or a stopped run, the one list of them.

Scripts report these as one line without a traceback (run_cli); any other exception is a bug and keeps
its traceback.
"""


class UserError(Exception):
    """Bad input or a stopped run, reported to the user as one line."""
