"""Errors the user can act on. Each names the parameter at fault and what to do about it.

`translate` turns the engine faults a user can still act on (out of memory, a diverged GAN) into an
InputError naming the parameter to change; the QGIS algorithms and the CLI both use it, so the two show
the same one-line message."""


class InputError(Exception):
    """A bad parameter or input file. str() is the one line shown to the user."""

    def __init__(self, parameter: str, message: str):
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


class Diverged(RuntimeError):
    """Training's losses became non-finite (NaN or infinite) and could not be recovered."""


class Cancelled(Exception):
    """The user cancelled; whatever was being written has been removed."""

    def __init__(self):
        super().__init__("cancelled by the user; no output was written")


def one_line(error, limit=300) -> str:
    """An exception's text as one line of at most about `limit` characters, cut between words (torch's
    messages span several lines and can run to kilobytes)."""
    text = " ".join(str(error).split())
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0].rstrip(";:,") + " ..."
    return text


OOM_MARKERS = ("out of memory", "can't allocate memory", "cannot allocate memory", "not enough memory",
               "failed to allocate")


def is_out_of_memory(error: BaseException) -> bool:
    """MemoryError, torch.cuda.OutOfMemoryError, or torch's RuntimeError for a failed CPU/GPU allocation."""
    if isinstance(error, MemoryError):
        return True
    if type(error).__name__ == "OutOfMemoryError":
        return True
    return isinstance(error, RuntimeError) and any(m in str(error).lower() for m in OOM_MARKERS)


def translate(error: BaseException, job: str):
    """An InputError for a fault the user can fix by changing a parameter, or None."""
    if isinstance(error, InputError):
        return error
    if isinstance(error, Diverged):
        return InputError("LEARNING_RATE", f"training diverged: {error} (the run was stopped, no model was "
                                           "written); lower LEARNING_RATE, try another SEED or set GAN to none")
    if is_out_of_memory(error):
        if job == "classify":
            return InputError("TILE_SIZE", "out of memory; lower TILE_SIZE (e.g. 128; the automatic 0 picks "
                                           "256-512) or BATCH_SIZE (e.g. 1) and run again; no output was written")
        return InputError("BATCH_SIZE", "out of memory; lower BATCH_SIZE (e.g. 32) or PATCH_SIZE, or use "
                                        "SAMPLES_PER_CLASS to train on fewer pixels, and run again; no model was written")
    return None
