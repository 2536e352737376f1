"""The one exception type for bad input: its message names the file and what was expected."""


class DataError(Exception):
    """Bad input data (wrong layout, corrupt or truncated file, unknown label, unsafe archive)."""

    def __init__(self, path, problem: str):
        # a name that is not UTF-8 (os.fsdecode's surrogates) or holds a line end is shown
        # escaped: the message must print, on one line
        self.path = (str(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
                     .replace("\n", "\\n").replace("\r", "\\r"))
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
