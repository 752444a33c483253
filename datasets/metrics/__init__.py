"""sympe.datasets.metrics"""
