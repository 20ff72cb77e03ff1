"""The one exception family for mistakes a user can fix (bad data, config, paths, flags)."""


class UserError(Exception):
    """An error caused by the user's input; its message names the file/key and the fix."""

    #: the command's exit status when this error ends it.
    exit_code = 2


class ConfigError(UserError):
    """A config file or override that cannot be used; the message says which and why."""
