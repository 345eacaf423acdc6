"""Exit codes of every command: scripts and CI gates branch on them (docs/cli.md)."""

EXIT_OK = 0
EXIT_FAILED = 1  # the run failed, or a check found a violation
EXIT_INVALID = 2  # invalid input, workflow or arguments; a missing API key
EXIT_BUDGET = 3  # the run stopped at its token or cost budget
EXIT_CANCELLED = 130  # Ctrl-C, as a shell reports SIGINT
