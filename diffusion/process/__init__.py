"""sympe.diffusion.process"""
