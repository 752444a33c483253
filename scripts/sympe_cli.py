"""The ``sympe`` command of an installed package: one verb per entry point of ``scripts/``.

    sympe train dataset=planar train.max_steps=300      # = python scripts/train_diffusion.py ...
    sympe sample checkpoint=outputs/qm9/<run>/checkpoints/last.ckpt num_samples=1000
    sympe evaluate checkpoint=... | samples=FILE dataset=NAME
    sympe report --preset cpu --smoke                   # = python scripts/nll_report.py ...
    sympe benchmark --train-steps 20                    # = python scripts/benchmark.py ...
    sympe sweep --checkpoint ... --property logp        # = python scripts/guidance_sweep.py ...

Every verb takes exactly the arguments of its script (Hydra overrides, or the options of ``--help``); the
configs are the ones shipped with the package (``sympe/configs``), found relative to the scripts as in a
checkout (``scripts/../configs``).
"""
from __future__ import annotations

import importlib
import sys

#: verb -> module of ``sympe.cli`` (a script of ``scripts/``) whose ``main()`` runs it
COMMANDS = {"train": "train_diffusion", "sample": "sample", "evaluate": "evaluate", "report": "nll_report",
            "benchmark": "benchmark", "sweep": "guidance_sweep"}

USAGE = ("usage: sympe {" + ",".join(COMMANDS) + "} [arguments of the command]\n"
         "  sympe train [overrides]        train a model (scripts/train_diffusion.py)\n"
         "  sympe sample checkpoint=PATH   sample graphs or molecules (scripts/sample.py)\n"
         "  sympe evaluate ...             NLL and sample metrics of a checkpoint or a samples file (scripts/evaluate.py)\n"
         "  sympe report --preset NAME     the symmetry-breaking NLL report (scripts/nll_report.py)\n"
         "  sympe benchmark ...            speed and memory (scripts/benchmark.py)\n"
         "  sympe sweep --checkpoint PATH  guidance-weight sweep of a conditional model (scripts/guidance_sweep.py)\n"
         "Options of each command: sympe <command> --help")


def main(argv: list[str] | None = None) -> None:
    """Run ``sympe <verb> [args...]``; an unknown verb prints the usage and exits with status 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        raise SystemExit(0 if argv else 2)
    verb, rest = argv[0], argv[1:]
    if verb not in COMMANDS:
        print(f"sympe: unknown command {verb!r}\n{USAGE}", file=sys.stderr)
        raise SystemExit(2)
    module = importlib.import_module(f"sympe.cli.{COMMANDS[verb]}")
    sys.argv = [f"sympe {verb}", *rest]  # Hydra and argparse read the command line from sys.argv
    raise SystemExit(module.main())  # a Hydra command returns None (status 0); the report returns its status


if __name__ == "__main__":
    main()
