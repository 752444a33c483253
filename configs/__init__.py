"""sympe.configs: the Hydra presets shipped with the package (package data; the typed defaults are in
sympe.diffusion.runs.schema). A regular package so that Hydra can read them as ``pkg://sympe.configs`` when a
command runs as an installed module (``sympe train``, ``python -m sympe.cli.train_diffusion``)."""
