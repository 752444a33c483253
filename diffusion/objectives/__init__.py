"""sympe.diffusion.objectives: training losses of the denoiser (plain torch).

* :mod:`~sympe.diffusion.objectives.cross_entropy`: CE_X + λ CE_E of the predicted clean graph (DiGress's loss);
* :mod:`~sympe.diffusion.objectives.mixture`: the K-draw g~-mixture objective for denoisers with a breaker.
"""
from sympe.diffusion.objectives.cross_entropy import diffusion_ce_loss
from sympe.diffusion.objectives.mixture import WEIGHTINGS, mixture_nll, mixture_nll_loss

__all__ = ["diffusion_ce_loss", "WEIGHTINGS", "mixture_nll", "mixture_nll_loss"]
