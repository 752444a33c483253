"""sympe.diffusion.runs"""
