"""The base of the errors a person running o2o can act on: the `o2o` command prints their message, not a traceback."""


class UsageError(Exception):
    """A problem the operator fixes (config, environment, a table or model not there yet, a refused option).

    The message says what is wrong and what to do; `o2o` prints it and exits with status 2.
    """
