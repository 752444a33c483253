"""The primary config of scripts/evaluate.py (a package so that Hydra finds it as ``pkg://sympe.configs.evaluate``)."""
