"""What every sub-command receives: the global options and a lazily built plugin manager."""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import TYPE_CHECKING, TextIO

from vpr_bench.errors import UsageError

if TYPE_CHECKING:
    from vpr_bench.plugins import PluginManager
    from vpr_bench.registry import Registries

__all__ = ["CliContext", "not_built_yet"]


class CliContext:
    """Global CLI options and shared lazily built objects.

    Args:
        args: The parsed arguments (global options included).
        out: Where user-facing output goes (stdout by default).
    """

    def __init__(self, args: argparse.Namespace, out: TextIO | None = None) -> None:
        self.args = args
        self.out = out or sys.stdout
        self._manager: PluginManager | None = None

    def print(self, text: str = "") -> None:
        """Write one line of user-facing output."""
        self.out.write(text + "\n")

    def manager(self) -> PluginManager:
        """The plugin manager built from ``--plugins``, ``-p no:x``, ``--strict-plugins``.

        Plugin load warnings are printed to stderr, one ``warning: ...`` line each (``vpr-bench
        plugins`` lists them after its table instead).
        """
        if self._manager is None:
            from vpr_bench.plugins import PluginLoadWarning, PluginManager, parse_plugin_list

            block = []
            for item in self.args.block or []:
                if not item.startswith("no:"):
                    raise UsageError(f"-p expects 'no:<plugin>' to block a plugin, got {item!r}.")
                block.append(item[3:])
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", PluginLoadWarning)
                self._manager = PluginManager(
                    allow=parse_plugin_list(self.args.plugins),
                    block=block,
                    autoload=False if self.args.no_autoload else None,
                    strict=self.args.strict_plugins,
                )
            for item in caught:  # one line each, not Python's two-line warning format
                if issubclass(item.category, PluginLoadWarning):
                    if getattr(self.args, "command", None) != "plugins":  # it lists them itself
                        print(f"warning: {item.message}", file=sys.stderr)
                else:  # pragma: no cover - other warnings keep their usual route
                    warnings.showwarning(item.message, item.category, item.filename, item.lineno)
        return self._manager

    def registries(self) -> Registries:
        """The registries of every loaded plugin."""
        return self.manager().registries()


def not_built_yet(command: str, piece: str) -> int:
    """Refuse a command whose engine has not landed yet, saying which piece is missing."""
    raise UsageError(
        f"'vpr-bench {command}' is not available yet: it needs {piece}, which is not built in "
        "this version. See the issue tracker for its status."
    )
