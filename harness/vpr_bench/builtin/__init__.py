"""Internal plugins, registered through the same hooks as third-party plugins.

Each module is one plugin (``builtin.<module>`` in ``vpr-bench plugins``); heavy code is
referenced by lazy ``"pkg.mod:obj"`` targets so that listing stays instant.
"""
