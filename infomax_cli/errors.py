"""The two kinds of failure a user can meet, the one table from a failure to its exit status (see the
contract), and the one rule for text from files that reaches a terminal (`printable`)."""

import re
import signal
import unicodedata


def first_line(e: BaseException) -> str:
    """The first non-blank line of an exception's message (libraries' messages run to many lines)."""
    return next((line.strip() for line in str(e).splitlines() if line.strip()), "")


class InfomaxError(Exception):
    """A failure with a one-line message for the user; `exit_status` says the process status."""


class ConfigError(InfomaxError):
    """The user's command or configuration is wrong: exit 2, one line naming the key and the fix."""


class Refused(ConfigError):
    """The run stopped before writing anything into its directory (which may be another run's):
    nothing, not even failed.json, is recorded there."""


class RunError(InfomaxError):
    """Something failed while running (data, numerics, disk): exit 1; finished files stay."""


class Damaged(RunError):
    """A file of a run or sweep directory that cannot be read as the contract says, or that infomax
    refuses to read (a link leaving the directory, a FIFO, too large): the message names it."""


class Interrupted(InfomaxError):
    """Stopped by a signal after a checkpoint was saved: exit 128 + the signal's number (130 SIGINT,
    143 SIGTERM, 140 SIGUSR2: a cluster's time-limit warning)."""

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message)
        self.signum = int(signum)

    @classmethod
    def by(cls, signal_name: str, message: str) -> "Interrupted":
        return cls(message, signal.Signals[signal_name].value)


class Stop(BaseException):
    """Carries an InfomaxError past code that turns every Exception into a warning (Hydra's callbacks):
    the command that started Hydra catches it and exits with the error's status."""

    def __init__(self, error: InfomaxError, shown: bool = False):
        super().__init__(str(error))
        self.error = error
        self.shown = shown  # its line is already printed


# The one table from what stopped a command to its exit status (the contract's): the first row that
# matches; an interrupt is 128 + its signal's number; anything else (a bug) is a runtime failure.
EXIT_STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (ConfigError, 2),
    (InfomaxError, 1),
    (KeyboardInterrupt, 128 + signal.SIGINT),
)


def exit_status(error: BaseException | None) -> int:
    """The process status of a command that stopped with `error` (None: it finished): 0 done, 2 usage or
    configuration error, 1 runtime failure, 128 + the signal's number when interrupted."""
    if error is None:
        return 0
    if isinstance(error, Stop):
        error = error.error
    if isinstance(error, Interrupted):
        return 128 + error.signum
    return next((status for kind, status in EXIT_STATUS if isinstance(error, kind)), 1)


def sweep_status(statuses: list[int]) -> int:
    """The exit status of a sweep whose jobs stopped with these statuses: 0 when none did, 1 when any
    hit a runtime failure, else the interrupt's status (resumable), else 2 (every job rejected its
    config)."""
    if not statuses:
        return 0
    if any(c not in (0, 2) and c < 128 for c in statuses):
        return 1
    return next((c for c in statuses if c >= 128), 2)


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
