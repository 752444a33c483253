"""sympe.diffusion: discrete denoising diffusion over graphs (DiGress-style).

Subpackages, one concept each (dependencies point down this list's reverse: ``runs`` uses all, ``process`` none):

* :mod:`~sympe.diffusion.process`: the noise schedule, the transitions, the exact posteriors, the process object
  (:class:`~sympe.diffusion.process.discrete_process.DiscreteProcess`) and ancestral sampling;
* :mod:`~sympe.diffusion.likelihood`: the variational bound (NLL, nats per graph) and its estimators, the mixture
  bound, DiGress's formula, the leak test;
* :mod:`~sympe.diffusion.objectives`: training losses (cross-entropy, the g~-mixture objective);
* :mod:`~sympe.diffusion.nn`: the denoiser (graph transformer, structural features, the CPU kernel);
* :mod:`~sympe.diffusion.benchmarking`: timers and probes of ``scripts/benchmark.py``;
* :mod:`~sympe.diffusion.runs`: the only part that knows Lightning and Hydra (typed configs, the LightningModule,
  training, run folders, checkpoints, the report).

The package itself exports the two data types every part shares (``sympe.datasets`` imports them too), and
holds two small utilities without Lightning: :mod:`~sympe.diffusion.bars` (when to draw progress bars) and
:mod:`~sympe.diffusion.files` (atomic writes). :func:`load_pretrained` (``load_pretrained("qm9")``: a model that
ships with the package, :mod:`~sympe.diffusion.runs.pretrained`) is imported on first use, so that importing this
package loads no Lightning.
"""
from sympe.diffusion.graph import DenseGraph
from sympe.diffusion.info import DatasetInfo

__all__ = ["DenseGraph", "DatasetInfo", "load_pretrained"]


def __getattr__(name: str):
    if name == "load_pretrained":
        from sympe.diffusion.runs.pretrained import load_pretrained

        return load_pretrained
    raise AttributeError(f"module 'sympe.diffusion' has no attribute {name!r}")
