"""The one exception type for bad input: its message names the file and what was expected."""


class DataError(Exception):
    """Bad input data (wrong layout, corrupt or truncated file, unknown label, unsafe archive)."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
