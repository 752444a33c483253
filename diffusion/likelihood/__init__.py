"""sympe.diffusion.likelihood"""
