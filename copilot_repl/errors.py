"""Typed errors: the library raises these, only the faces (CLI, REPL) turn them into a red line."""


class CopilotReplError(Exception):
    """Base of every error a user can cause; its message says what to do next."""


class UsageError(CopilotReplError):
    """A command, flag or setting was given a wrong name or value."""


class CheckpointError(CopilotReplError):
    """A checkpoint directory is missing, incomplete, corrupt or from an unknown format."""


class CorpusError(CopilotReplError):
    """The corpus has no usable Python text."""


class TokenizerError(CopilotReplError):
    """A tokenizer plugin is unknown or its files cannot be used."""


class DeviceError(CopilotReplError):
    """The requested device is not available on this machine."""


def one_line(error: Exception) -> str:
    """How every face reports an error: what the user can fix, or one line naming an internal error."""
    if isinstance(error, CopilotReplError):
        return f"error: {error}"
    return f"internal error: {error.__class__.__name__}: {error} (run with --debug for the traceback)"
