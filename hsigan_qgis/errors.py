"""Errors the user can act on. Each names the parameter at fault and what to do about it."""


class InputError(Exception):
    """A bad parameter or input file. str() is the one line shown to the user."""

    def __init__(self, parameter: str, message: str):
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


class Cancelled(Exception):
    """The user cancelled; whatever was being written has been removed."""

    def __init__(self):
        super().__init__("cancelled by the user; no output was written")
