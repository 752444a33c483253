"""sympe.datasets.samples"""
