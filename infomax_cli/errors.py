"""The two kinds of failure a user can meet, each with its exit status (see the contract), and the one
rule for text from files that reaches a terminal (`printable`)."""

import re
import signal
import unicodedata


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


class Damaged(RunError):
    """A file of a run or sweep directory that cannot be read as the contract says, or that infomax
    refuses to read (a link leaving the directory, a FIFO, too large): the message names it."""


class Interrupted(InfomaxError):
    """Stopped by a signal after a checkpoint was saved: exit 128 + the signal's number (130 SIGINT,
    143 SIGTERM, 140 SIGUSR2: a cluster's time-limit warning)."""

    def __init__(self, message: str, exit_code: int = 130):
        super().__init__(message)
        self.exit_code = exit_code

    @classmethod
    def by(cls, signal_name: str, message: str) -> "Interrupted":
        return cls(message, 128 + signal.Signals[signal_name].value)


# Control characters (C0, DEL, C1) and the invisible format characters that reorder or hide text
# (bidirectional overrides, zero-width joiners): a name from a file could otherwise clear the screen,
# move the cursor or print a forged line.
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: object) -> str:
    """`text` as a terminal may show it: control and invisible format characters removed (newlines and
    tabs kept)."""
    s = _UNPRINTABLE.sub("", str(text))
    return "".join(c for c in s if unicodedata.category(c) != "Cf")


def has_control(text: str) -> bool:
    """Whether `text` holds a control or invisible format character (newlines and tabs included)."""
    return any(unicodedata.category(c) in ("Cc", "Cf") for c in str(text))


class PrintableFilter:
    """A logging filter for a terminal's handler: each message as `printable` has it (the log file
    keeps the message as it was)."""

    def filter(self, record) -> bool:
        message = record.getMessage()
        clean = printable(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True
