"""The training engine: tuple mining, a resumable loop, checkpoints and multi-process training.

Import the pieces from their modules (``vpr_bench.train.context``, ``.loop``, ``.tuples``, ...);
this package imports nothing heavy so that plugin listings stay instant.
"""
