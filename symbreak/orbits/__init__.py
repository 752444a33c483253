"""sympe.symbreak.orbits: the node partitions that symmetry breaking must break.

* :mod:`~sympe.symbreak.orbits.wl`: 1-WL colour refinement (the coarsest equitable partition);
* :mod:`~sympe.symbreak.orbits.vf2`: exact automorphism orbits and |Aut(G)| of small labelled graphs (VF2);
* :mod:`~sympe.symbreak.orbits.partitions`: orders of the groups that preserve a partition, refinement.
"""
from sympe.symbreak.orbits.partitions import log_tie_group_size, partition_refines, same_partition, tie_group_size
from sympe.symbreak.orbits.vf2 import automorphism_group_size, automorphism_orbits
from sympe.symbreak.orbits.wl import color_refinement

__all__ = ["color_refinement", "automorphism_orbits", "automorphism_group_size", "tie_group_size",
           "log_tie_group_size", "partition_refines", "same_partition"]
