"""nnU-Net v2 baselines: adapters (`adapters`), workspace and environment (`workspace`),
planning and preprocessing (`planning`), trainers (`trainers`), the runner's predictor
(`predictor`). Importing this package imports nothing heavy; the submodules import nnU-Net.
"""
