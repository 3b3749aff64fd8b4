"""Built-in model parts a plugin may reuse (public API).

The built-in ``tiny-gem`` model is a small CNN with GeM pooling, fast on a CPU. Its pieces are
public so a method plugin can put its own head on the same trunk, e.g. NetVLAD's ``tiny``
backbone::

    from vpr_bench.models import TinyGeM, TinyGeMConfig

    trunk = TinyGeM(TinyGeMConfig(width=16, dim=0, seed=None)).features  # [B, 64, h, w]

Attributes:
    TinyGeM: The model (``features`` conv trunk, GeM pooling, optional projection).
    TinyGeMConfig: Its options (width, descriptor dim, GeM exponent, normalisation, seed).
    build_tiny_gem: ``build_tiny_gem(config) -> TinyGeM`` (the ``tiny-gem`` ModelSpec's build).
"""

from __future__ import annotations

from vpr_bench.builtin.tiny_model import TinyGeM, TinyGeMConfig, build_tiny_gem

__all__ = ["TinyGeM", "TinyGeMConfig", "build_tiny_gem"]
