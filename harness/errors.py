"""Errors that are the user's to fix: the CLI prints them without a traceback and exits 2."""


class HarnessError(Exception):
    """A user's mistake (bad spec, unknown name, missing file), reported as one message."""


class SpecError(HarnessError):
    """A spec field that is wrong, named by experiment and path (`model.1.units`)."""

    def __init__(self, experiment, path, message, source=None):
        self.experiment, self.path, self.source, self.message = experiment, path, source, message
        where = f"experiment {experiment!r}" if experiment else "an experiment"
        if source:
            where += f" ({source})"
        field = f"{path}: " if path else ""
        super().__init__(f"{where}: {field}{message}")

    def __reduce__(self):  # so that a worker's spec check sends it back as it is
        return (SpecError, (self.experiment, self.path, self.message, self.source))
