"""The one exception type that the CLI turns into a one-line message and exit code 2."""


class BmmalError(ValueError):
    """Bad input from the user: an unknown name, a wrong type, a missing file, an impossible budget."""
