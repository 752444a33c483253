"""sympe.datasets.floor"""
