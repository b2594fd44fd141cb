"""The two kinds of failure a user can meet, each with its exit status (see the contract)."""

import signal


def first_line(e: BaseException) -> str:
    """The first non-blank line of an exception's message (libraries' messages run to many lines)."""
    return next((line.strip() for line in str(e).splitlines() if line.strip()), "")


class InfomaxError(Exception):
    """A failure with a one-line message for the user; `exit_code` is the process status."""

    exit_code = 1


class ConfigError(InfomaxError):
    """The user's command or configuration is wrong: exit 2, one line naming the key and the fix."""

    exit_code = 2


class Refused(ConfigError):
    """The run stopped before writing anything into its directory (which may be another run's):
    nothing, not even failed.json, is recorded there."""


class RunError(InfomaxError):
    """Something failed while running (data, numerics, disk): exit 1; finished files stay."""

    exit_code = 1


class Interrupted(InfomaxError):
    """Stopped by a signal after a checkpoint was saved: exit 128 + the signal's number (130 SIGINT,
    143 SIGTERM, 140 SIGUSR2: a cluster's time-limit warning)."""

    def __init__(self, message: str, exit_code: int = 130):
        super().__init__(message)
        self.exit_code = exit_code

    @classmethod
    def by(cls, signal_name: str, message: str) -> "Interrupted":
        return cls(message, 128 + signal.Signals[signal_name].value)
