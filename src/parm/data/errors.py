"""The one error type of `parm.data`: its message always says how to fix the problem."""


class DataError(RuntimeError):
    """A dataset could not be fetched, read or validated.

    The message names the fix (install npm, point ``--data-dir`` at local files, ...), so the CLI
    prints it as is, without a traceback.
    """
