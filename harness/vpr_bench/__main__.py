"""``python -m vpr_bench``: the same as the ``vpr-bench`` command."""

from vpr_bench.cli import main

raise SystemExit(main())
