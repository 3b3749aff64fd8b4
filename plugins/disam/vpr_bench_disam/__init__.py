"""DISAM for vpr-bench: per-domain ComboGAN encoders, Grad-SAM losses and their retrieval.

Modules: :mod:`~vpr_bench_disam.networks` (encoder, decoder, discriminator, blur, LSGAN),
:mod:`~vpr_bench_disam.metrics` (mean cosine, descriptors, retrieval distances),
:mod:`~vpr_bench_disam.sam` (Grad-SAM), :mod:`~vpr_bench_disam.loss` (the ``disam`` loss),
:mod:`~vpr_bench_disam.model` (the ``disam`` model), :mod:`~vpr_bench_disam.checkpoint` and
:mod:`~vpr_bench_disam.released` (the authors' weights), :mod:`~vpr_bench_disam.plugin` (hooks).
"""

from __future__ import annotations

__all__: list[str] = []
