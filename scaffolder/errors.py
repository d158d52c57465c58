"""One error tree for scaffolder. The CLI catches `ScaffoldError` in one place and prints its one-line message.

Every message says what is wrong and how to fix it. Exit codes are part of the interface (README: "Exit codes").
"""

from __future__ import annotations


class ScaffoldError(Exception):
    """Base class: a problem the user can act on. `exit_code` is what the CLI exits with."""

    exit_code = 1


class SpecError(ScaffoldError):
    """A flag or a scaffold.toml field is invalid (unknown task, bad PEFT method, bad value)."""

    exit_code = 2


class DataError(ScaffoldError):
    """A data file is missing, empty, unreadable, or its columns/labels cannot be worked out."""

    exit_code = 2


class OutputError(ScaffoldError):
    """The output directory cannot be used (exists and is not empty, or cannot be written)."""

    exit_code = 2


class BusyError(ScaffoldError):
    """Another scaffold command holds the project's lock; the message names its pid."""

    exit_code = 2


class HistoryError(ScaffoldError):
    """The project's git history is not one `scaffold regen` can merge into (rewritten, detached, a branch
    missing, an interrupted run's record that no longer fits); nothing was changed, the message says what to do."""

    exit_code = 2


class GenerationError(ScaffoldError):
    """Generated files fail their checks (nothing was written), or `scaffold check` found errors."""

    exit_code = 3


class SmokeError(ScaffoldError):
    """The smoke run failed. The project is written and committed; the message says what failed."""

    exit_code = 4


class MissingToolError(ScaffoldError):
    """Something scaffolder needs on this machine is missing (git, the training stack for the smoke run)."""

    exit_code = 5


class MergeConflict(ScaffoldError):
    """`scaffold regen` overlapped the user's edits: markers are in the files, registered in git; nothing committed."""

    exit_code = 6


EXIT_CODES = {
    0: "success",
    1: "unexpected internal error (a bug: please report it with SCAFFOLD_DEBUG=1 output)",
    2: "bad input: a flag, scaffold.toml, a data file, the model path, the output directory, or a git state "
    "regen cannot work from (another scaffold command running, rewritten history, a detached HEAD)",
    3: "generated files failed their checks (nothing was written), or `scaffold check` found errors",
    4: "smoke run failed; the project was written and committed, the message names what failed",
    5: "missing tool on this machine (git, or the training stack for the smoke run)",
    6: "scaffold regen stopped at merge conflicts: resolve them and commit, or git merge --abort",
    130: "interrupted (Ctrl-C)",
    143: "terminated (SIGTERM)",
}
