"""sympe.diffusion.nn: the denoiser p^(x0 | z_t) (plain torch).

* :mod:`~sympe.diffusion.nn.denoiser`: :class:`DenoisingNetwork` = structural features + symmetry breaker +
  graph transformer;
* :mod:`~sympe.diffusion.nn.transformer`: DiGress's graph transformer, with its fused attention
  (:mod:`~sympe.diffusion.nn.edge_attention`; the C loops of ``csrc/`` built by :mod:`~sympe.diffusion.nn.cpu_kernel`),
  :mod:`~sympe.diffusion.nn.pooling` and :mod:`~sympe.diffusion.nn.dropout`;
* :mod:`~sympe.diffusion.nn.features`, :mod:`~sympe.diffusion.nn.molecular_features`: channels of the noisy graph.
"""
from sympe.diffusion.nn.denoiser import DenoisingNetwork
from sympe.diffusion.nn.features import ExtraFeatures
from sympe.diffusion.nn.molecular_features import MolecularFeatures
from sympe.diffusion.nn.transformer import GraphTransformer, GraphTransformerLayer, NodeEdgeAttention

__all__ = ["DenoisingNetwork", "ExtraFeatures", "MolecularFeatures", "GraphTransformer", "GraphTransformerLayer",
           "NodeEdgeAttention"]
