"""sympe.datasets"""
