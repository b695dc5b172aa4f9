"""User-facing errors.

Anything a user can fix by changing the command line (a missing file, an image size a network
cannot take, a checkpoint from another model) raises :class:`UserError`. The entry points catch
it, print its message as one line and exit with status 2 before any training starts.
"""


class UserError(Exception):
    """A problem with the user's input, reported as a single line without a traceback."""


class NonFiniteError(RuntimeError):
    """A loss, gradient or weight became NaN/Inf (``divergence=stop``): the run stops with one line
    and exit status 3, keeping the last good checkpoint."""
