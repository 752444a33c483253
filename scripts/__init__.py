"""sympe.cli: the entry points of scripts/ (python scripts/<name>.py in a checkout, sympe <verb> when installed)."""
