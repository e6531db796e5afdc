"""The one exception type users see: a one-line message naming the offending item."""


class OpplanError(ValueError):
    """A user mistake (bad model, bad cluster, bad order, bad option).

    The CLI and the dashboard print ``str(error)`` as one line and never a traceback, so the
    message must name what is wrong (which operator, which field, which cycle).
    """
