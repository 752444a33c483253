"""sympe.datasets.sources"""
