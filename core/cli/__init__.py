"""The `configurable-agents` command line: the parser, exit codes and one handler module
per command. Handlers parse nothing themselves and print what core.analytics, core.engine
and the rest return.

May import everything in core; imports inside handlers keep start-up fast.
"""

from core.cli.parser import build_parser, main

__all__ = ["build_parser", "main"]
