"""One module per CLI sub-command.

Each module defines ``add_parser(subparsers)`` (argparse only; no heavy import) and
``execute(args, ctx) -> int``, which may import what it needs. :mod:`vpr_bench.cli` only parses
and dispatches.
"""

COMMANDS: tuple[str, ...] = (
    "plugins",
    "list",
    "run",
    "train",
    "eval",
    "data",
    "leaderboard",
    "check",
    "new-plugin",
)
