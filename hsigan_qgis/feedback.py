"""Progress, log and cancel: the one channel between the engine and whoever runs it (QGIS or CLI)."""
import sys

from .errors import Cancelled


class Feedback:
    """Silent feedback; subclasses forward to QGIS or a terminal."""

    def progress(self, percent: float) -> None:
        pass

    def info(self, message: str) -> None:
        pass

    def warning(self, message: str) -> None:
        self.info("Warning: " + message)

    def is_canceled(self) -> bool:
        return False

    def check_cancel(self) -> None:
        if self.is_canceled():
            raise Cancelled()

    def span(self, start: float, end: float) -> "Feedback":
        """A view whose progress 0-100 maps to start-end of this one (for a job's stages)."""
        return _Span(self, start, end)


class _Span(Feedback):
    def __init__(self, parent: Feedback, start: float, end: float):
        self.parent, self.start, self.end = parent, start, end

    def progress(self, percent):
        self.parent.progress(self.start + (self.end - self.start) * percent / 100.0)

    def info(self, message):
        self.parent.info(message)

    def warning(self, message):
        self.parent.warning(message)

    def is_canceled(self):
        return self.parent.is_canceled()


class ConsoleFeedback(Feedback):
    """A one-line progress bar on stderr plus log lines, for the command line."""

    def __init__(self, stream=None, quiet: bool = False):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self._shown = -1

    def progress(self, percent):
        step = int(percent)
        if self.quiet or step == self._shown:
            return
        self._shown = step
        bar = "#" * (step // 4)
        self.stream.write(f"\r[{bar:<25}] {step:3d}%")
        if step >= 100:
            self.stream.write("\n")
        self.stream.flush()

    def info(self, message):
        if not self.quiet:
            if 0 <= self._shown < 100:
                self.stream.write("\n")
                self._shown = -1
            self.stream.write(message + "\n")
            self.stream.flush()
