"""Whether an existing output file can be replaced at all, checked before the work starts: a file marked
immutable or append-only (chattr +i / +a) refuses the final rename even to root, which would otherwise
surface only after the whole run as "failed: PermissionError"."""
import errno
import os

from .errors import InputError


def check_replaceable(path, parameter):
    if not path or not os.path.isfile(path):
        return
    try:
        with open(path, "r+b"):  # opened for writing, nothing written
            pass
    except OSError as error:
        if error.errno == errno.EPERM:  # immutable or append-only (EACCES, mere permissions, does not block a rename)
            raise InputError(parameter, f"the existing file '{path}' cannot be replaced (it is marked immutable or "
                                        "append-only, e.g. chattr +i); choose another path or clear the mark") from None
