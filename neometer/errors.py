"""User-facing errors: caught by the CLI and printed without a traceback."""


class NeometerError(Exception):
    """An error the user can fix; the message names the file, the row and the fix."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = problems or []

    def __str__(self) -> str:
        head = super().__str__()
        if not self.problems:
            return head
        return head + "\n" + "\n".join(f"  - {p}" for p in self.problems)
