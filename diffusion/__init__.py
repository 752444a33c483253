"""sympe.diffusion"""
