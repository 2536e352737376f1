"""The exception types a script reports in one line (imgdag.cli.run): bad input, whose message
names the file and what was expected, and a worker process that died."""
import signal


class DataError(Exception):
    """Bad input data (wrong layout, corrupt or truncated file, unknown label, unsafe archive)."""

    def __init__(self, path, problem: str):
        # a name that is not UTF-8 (os.fsdecode's surrogates) or holds a line end is shown
        # escaped: the message must print, on one line
        self.path = (str(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
                     .replace("\n", "\\n").replace("\r", "\\r"))
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):  # from a worker process, or a task generator run in a pool's thread
        return DataError, (self.path, self.problem)


class WorkerDied(RuntimeError):
    """A pool's worker process died while the pool ran (imgdag.pool); its tasks are lost."""

    def __init__(self, exitcode: int):
        how = f"killed by {signal.Signals(-exitcode).name}" if exitcode < 0 else f"exit status {exitcode}"
        super().__init__(f"a worker process died ({how}; SIGKILL is often the kernel's out-of-memory "
                         "killer): its images are lost, so this step stopped")
