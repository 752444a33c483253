"""The primary config of scripts/sample.py (a package so that Hydra finds it as ``pkg://sympe.configs.sample``)."""
