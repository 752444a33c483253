"""sympe.diffusion.objectives"""
