"""``vpr-bench check PLUGIN``: run the conformance kit on an installed plugin."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from vpr_bench.commands.context import CliContext
from vpr_bench.errors import UnknownNameError, UsageError

HELP = "run the conformance kit on an installed plugin's models and losses"

EPILOG = """\
The kit checks every model (output shape and dtype, unit-norm descriptors, batch independence,
gradients reaching trainable parameters, state-dict round trip) and every loss (finite scalar,
differentiable, decreases under gradient descent) the plugin registers. Models are built with
the model.* keys of the 'quick' profile of a method that uses them, so the check runs on a CPU.

examples:
  vpr-bench check netvlad
  vpr-bench check sare -- -x -v        (arguments after -- go to pytest: stop at the first
                                       failure, one line per check)

In your plugin's own test suite, subclass the same bases (see vpr_bench.testing).
"""


def add_parser(subparsers: Any) -> None:
    """Register the ``check`` sub-command."""
    from vpr_bench.cli import add_common_options

    parser = subparsers.add_parser(
        "check",
        help=HELP,
        description=HELP + ".",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("plugin", help="plugin name as listed by 'vpr-bench plugins'")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    add_common_options(parser)


def execute(args: argparse.Namespace, ctx: CliContext) -> int:
    """Generate the conformance tests for the plugin and run them with pytest."""
    import pytest

    from vpr_bench.testing.generate import conformance_module_source

    manager = ctx.manager()
    manager.registries()
    names = [p.name for p in manager.plugins]
    if args.plugin not in names:
        raise UnknownNameError("plugin", args.plugin, names, hint="See: vpr-bench plugins.")
    info = next(p for p in manager.plugins if p.name == args.plugin)
    if not info.provides.get("models") and not info.provides.get("losses"):
        raise UsageError(
            f"Plugin {args.plugin!r} registers no model or loss, so the conformance kit has "
            "nothing to check yet."
        )
    source = conformance_module_source(manager, args.plugin)
    with tempfile.TemporaryDirectory(prefix="vpr-bench-check-") as tmp:
        test_file = Path(tmp) / f"test_conformance_{args.plugin.replace('-', '_')}.py"
        test_file.write_text(source, encoding="utf-8")
        ctx.print(f"Checking plugin {args.plugin} ({info.distribution} {info.version})")
        extra = list(args.pytest_args)
        quiet = [] if any(_sets_verbosity(a) for a in extra) else ["-q"]  # -q -v would cancel
        # vpr_bench is imported before pytest starts, so pytest cannot rewrite the asserts of
        # the kit's pytest plugin and would warn about it on every check: the kit's checks
        # carry their own messages, the warning says nothing to a plugin author.
        quiet_rewrite = ["-W", "ignore::pytest.PytestAssertRewriteWarning"]
        options = [*quiet, "-p", "no:cacheprovider", *quiet_rewrite, "--rootdir", tmp]
        code = pytest.main([str(test_file), *options, *extra])
    return 0 if code == 0 else 1


def _sets_verbosity(arg: str) -> bool:
    """True for pytest's -v/-q flags (``-v``, ``-vv``, ``-xv``, ``--verbose``, ``--quiet``)."""
    if arg in ("--verbose", "--quiet") or arg.startswith("--verbosity"):
        return True
    return arg.startswith("-") and not arg.startswith("--") and bool(set(arg[1:]) & {"v", "q"})
