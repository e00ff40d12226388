"""Built-in methods: nnU-Net v2 (`baselines.nnunet`) and 2.5D SMP networks (`baselines.smp`).

`bench.builtin_methods` names each one as "module:Class"; importing this package registers
nothing.
"""
