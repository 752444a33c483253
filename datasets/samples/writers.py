"""Writing generated graphs: SMILES files, ``.npz`` edge lists and PNG grids.

Formats
-------
* Molecules: a text file with one canonical SMILES per line, the literal ``None`` for a graph that is
  not a valid molecule (DiGress writes the same), in sample order.
* Graphs: an ``.npz`` in the format of the SPECTRE copies in ``shared/data/spectre/``: ``num_nodes``
  (G,), ``edges`` (M, 2) int64 with u < v per graph, ``edge_ptr`` (G + 1,) so that graph g owns
  ``edges[edge_ptr[g]:edge_ptr[g + 1]]``; generated multi-class graphs also get ``edge_classes`` (M,)
  and ``node_classes`` (sum of num_nodes,), and labelled graphs (``dataset=graphs`` with a node or edge label) the
  string arrays ``node_class_names`` / ``edge_class_names`` (read without unpickling).
Every file is written through :func:`sympe.diffusion.files.atomic_path` (a temporary name, then a rename), so
an interrupted run leaves no half file.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sympe.diffusion.files import atomic_path, atomic_write_text
from sympe.diffusion.graph import DenseGraph


def dense_to_class_lists(g: DenseGraph) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per graph: (node classes (n_b,), edge-class matrix (n_b, n_b)) of the real nodes."""
    Xi, Ei = g.collapse(fill=0)
    out = []
    for b in range(g.batch_size):
        n = int(g.node_mask[b].sum())
        out.append((Xi[b, :n].cpu().numpy(), Ei[b, :n, :n].cpu().numpy()))
    return out


def save_graphs_npz(path: str | Path, graphs: list[tuple[np.ndarray, np.ndarray]], node_class_names=None,
                    edge_class_names=None) -> None:
    """Save (node classes, edge-class matrix) pairs; any non-zero edge class is an edge. ``node_class_names`` /
    ``edge_class_names`` (optional lists of strings) are stored as string arrays of those names, so that the class
    indices of a file of labelled graphs can be read back as their names (``dataset=graphs``)."""
    num_nodes, edges, ecls, ncls, ptr = [], [], [], [], [0]
    for atoms, bonds in graphs:
        n = len(atoms)
        iu = np.triu_indices(n, k=1)
        mask = bonds[iu] > 0
        e = np.stack([iu[0][mask], iu[1][mask]], axis=1).astype(np.int64)
        num_nodes.append(n)
        edges.append(e)
        ecls.append(bonds[iu][mask].astype(np.int64))
        ncls.append(np.asarray(atoms, dtype=np.int64))
        ptr.append(ptr[-1] + len(e))
    with atomic_path(path, keep_suffix=True) as tmp:
        np.savez_compressed(
            tmp, num_nodes=np.asarray(num_nodes, dtype=np.int64),
            edges=np.concatenate(edges) if edges else np.zeros((0, 2), np.int64),
            edge_ptr=np.asarray(ptr, dtype=np.int64),
            edge_classes=np.concatenate(ecls) if ecls else np.zeros(0, np.int64),
            node_classes=np.concatenate(ncls) if ncls else np.zeros(0, np.int64),
            **{k: np.asarray([str(c) for c in v], dtype=str) for k, v in (
                ("node_class_names", node_class_names), ("edge_class_names", edge_class_names)) if v is not None},
        )


def write_lines(path: str | Path, lines: list[str | None]) -> None:
    """One line per entry, the literal ``None`` for ``None`` (the SMILES file format of the module docstring)."""
    atomic_write_text(path, "".join(("None" if s is None else s) + "\n" for s in lines))


def graphs_to_smiles(graphs, spec, relaxed: bool = False, fill_hydrogens: bool = False) -> list[str | None]:
    """Canonical SMILES of each (atoms, bonds) pair, None when it is not a valid molecule.

    ``relaxed``: infer formal charges first; ``fill_hydrogens``: explicit-H graphs may let RDKit add missing H
    (as :class:`~sympe.datasets.metrics.mol_metrics.MoleculeMetrics` with the same option).
    """
    from sympe.datasets.molecules import build_molecule, mol_to_smiles

    explicit = spec.explicit_h and not fill_hydrogens
    return [mol_to_smiles(build_molecule(a, b, spec, relaxed=relaxed, explicit_h=explicit)) for a, b in graphs]


def write_samples(out_dir: str | Path, graphs, info, relaxed: bool = False, fill_hydrogens: bool = False,
                  max_items: int = 16) -> list[str | None] | None:
    """Write generated ``(atoms, bonds)`` pairs of a dataset with :class:`~sympe.diffusion.info.DatasetInfo` ``info``
    into ``out_dir`` (created if needed): molecules as ``samples.smi`` (:func:`graphs_to_smiles` with ``relaxed`` and
    ``fill_hydrogens``), other graphs as ``samples.npz`` (:func:`save_graphs_npz`), and the first ``max_items`` in
    ``samples.png`` (:func:`draw_grid`, molecules titled valid as their line of ``samples.smi``). Returns the SMILES,
    or None for graphs that are not molecules."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    spec, smiles = None, None
    if info.is_molecular:
        from sympe.datasets.molecules import MoleculeSpec

        spec = MoleculeSpec.from_info(info)
        smiles = graphs_to_smiles(graphs, spec, relaxed=relaxed, fill_hydrogens=fill_hydrogens)
        write_lines(out_dir / "samples.smi", smiles)
    else:  # labelled graphs (dataset=graphs with node_label / edge_label) keep their class names beside the indices
        labelled = info.num_node_classes > 1 or info.num_edge_classes > 2
        save_graphs_npz(out_dir / "samples.npz", graphs, *((info.node_classes, info.edge_classes) if labelled else ()))
    draw_grid(out_dir / "samples.png", graphs, spec=spec, max_items=max_items,
              valid=None if smiles is None else [s is not None for s in smiles])
    return smiles


def draw_grid(path: str | Path, graphs, spec=None, max_items: int = 16, ncols: int = 4, valid=None) -> None:
    """PNG grid of the first graphs: RDKit drawings for molecules (``spec`` given), networkx otherwise.

    Molecules are titled "valid" / "invalid": by ``valid`` (one bool per graph, e.g. ``s is not None`` for the
    SMILES written beside the grid, so that the titles agree with that file) or, when ``valid`` is None, by
    strict validity (:func:`~sympe.datasets.molecules.build_molecule` with neutral atoms). Molecules that are
    not valid are drawn from the relaxed (charge-inferred) or raw molecule.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx

    items = graphs[:max_items]
    nrows = max(1, (len(items) + ncols - 1) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3 * ncols, 3 * nrows))
    axes = np.atleast_1d(axes).ravel()
    for ax in axes:
        ax.axis("off")
    if valid is not None and len(valid) < len(items):
        raise ValueError(f"draw_grid: {len(valid)} validity flags for {len(items)} drawn graphs")
    for k, (ax, (atoms, bonds)) in enumerate(zip(axes, items)):
        if spec is not None:
            from rdkit.Chem import Draw

            from sympe.datasets.molecules import build_molecule, graph_to_mol

            strict = build_molecule(atoms, bonds, spec, relaxed=False)
            is_valid = strict is not None if valid is None else bool(valid[k])
            mol = strict if strict is not None else build_molecule(atoms, bonds, spec, relaxed=True)
            if mol is None:
                mol = graph_to_mol(atoms, bonds, spec, sanitize=False)
            if mol is not None:
                try:
                    ax.imshow(Draw.MolToImage(mol, size=(300, 300)))
                except Exception:
                    ax.text(0.5, 0.5, "not drawable", ha="center")
            ax.set_title("valid" if is_valid else "invalid", fontsize=8)
        else:
            G = nx.from_numpy_array((bonds > 0).astype(int))
            nx.draw(G, ax=ax, node_size=12, width=0.6, pos=nx.spring_layout(G, seed=0))
            ax.set_title(f"n={len(atoms)}, m={G.number_of_edges()}", fontsize=8)
    fig.tight_layout()
    try:
        with atomic_path(path, keep_suffix=True) as tmp:
            fig.savefig(tmp, dpi=80)
    finally:
        plt.close(fig)
