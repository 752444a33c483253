"""sympe.diffusion.nn"""
