"""Graph-level conditions: the properties a model can be conditioned on, their values for a dataset, the targets
asked for at sampling and how well samples meet them.

* :mod:`~sympe.datasets.conditions.properties`: the registry (RDKit, networkx, dataset columns);
* :mod:`~sympe.datasets.conditions.split_values`: the values of a split's graphs (computed once, cached);
* :mod:`~sympe.datasets.conditions.attach`: fit the encoding on train and put ``y`` on every graph.

The encoding itself (:class:`~sympe.diffusion.conditioning.ConditionSpec`) and the guided sampler
(:mod:`sympe.diffusion.process.guidance`) know nothing of molecules.
"""
from sympe.datasets.conditions.attach import (ConditionedDataset, attach_conditions, check_condition_names,
                                              check_condition_option)
from sympe.datasets.conditions.properties import PROPERTIES, PropertyDef
from sympe.datasets.conditions.split_values import available_properties, split_values

__all__ = ["PROPERTIES", "PropertyDef", "ConditionedDataset", "attach_conditions", "check_condition_names", "check_condition_option",
           "available_properties", "split_values"]
