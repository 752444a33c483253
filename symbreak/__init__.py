"""sympe.symbreak"""
