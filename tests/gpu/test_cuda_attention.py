"""The edge attention on CUDA (PyTorch operations with a hand-written backward, ``_EdgeAttention``) against the
fused CPU kernel (``_EdgeAttentionCPU``) and against float64 autograd of the reference formulation: values and all
nine gradients, padded nodes and a graph without real nodes; and under bf16 autocast."""
from __future__ import annotations

import pytest
import torch

import sympe.diffusion.nn.cpu_kernel as ck
import sympe.diffusion.nn.edge_attention as ea

pytestmark = pytest.mark.cuda
NAMES = ["Q", "K", "V", "E", "W", "b", "m", "W_out", "c"]


def inputs(B=4, n=9, d=16, de=8, dout=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    shapes = [(B, n, d), (B, n, d), (B, n, d), (B, n, n, de), (2 * d, de), (2 * d,), (B, d), (dout, d), (B, dout)]
    scales = [0.5, 1.0, 1.0, 1.0, 0.3, 0.1, 1.0, 0.2, 1.0]
    args = [torch.randn(s, generator=g) * c for s, c in zip(shapes, scales)]
    sizes = torch.tensor([n, n - 3, 0, 5])[:B]  # padded keys and queries, and a graph without real nodes
    mask = torch.arange(n)[None] < sizes[:, None]
    cot = (torch.randn(B, n, n, dout, generator=g), torch.randn(B, n, d, generator=g))
    return args, mask, cot


def values_and_grads(fn, args, mask, cot, device, dtype=torch.float32):
    a = [x.to(device, dtype).requires_grad_() for x in args]
    E_out, h = fn(*a, mask.to(device))
    real = mask.to(device)
    # compare real entries only (padding is the caller's to mask): zero the cotangents of padded queries / pairs
    wE = cot[0].to(device, dtype) * (real[:, :, None] & real[:, None, :])[..., None]
    wh = cot[1].to(device, dtype) * real[..., None]
    grads = torch.autograd.grad((E_out.float() * wE.float()).sum() + (h.float() * wh.float()).sum(), a)
    pair = (real[:, :, None] & real[:, None, :])
    return [E_out[pair].double().cpu(), h[real].double().cpu()] + [x.double().cpu() for x in grads]


def assert_close(got, want, rel, what):
    for name, a, b in zip(["E_out", "h"] + NAMES, got, want):
        scale = b.abs().max().clamp_min(1e-12)
        err = ((a - b).abs().max() / scale).item()
        assert err < rel, f"{what}: {name} differs by {err:.2e} (relative to its largest entry) > {rel}"


def test_cuda_path_matches_float64_reference(device):
    args, mask, cot = inputs()
    got = values_and_grads(ea.edge_attention, args, mask, cot, device)
    want = values_and_grads(ea.edge_attention_reference, args, mask, cot, "cpu", torch.float64)
    assert_close(got, want, 1e-4, "CUDA path vs float64 reference")


def test_cuda_path_matches_the_fused_cpu_kernel(device):
    try:
        ck.load_kernel()
    except ck.KernelBuildError as err:
        pytest.skip(f"the fused CPU kernel does not build on this machine: {err}")
    args, mask, cot = inputs(seed=1)
    got = values_and_grads(ea.edge_attention, args, mask, cot, device)
    kernel = values_and_grads(lambda *a: ea._EdgeAttentionCPU.apply(*a, True), args, mask, cot, "cpu")
    assert_close(got, kernel, 1e-4, "CUDA path vs fused CPU kernel")


def test_cuda_path_is_the_pytorch_formulation(device, monkeypatch):
    """On CUDA the dispatcher must not take the CPU kernel (a CUDA tensor there would crash or copy)."""
    calls = []
    monkeypatch.setattr(ea._EdgeAttention, "apply", lambda *a: calls.append("torch") or ea.edge_attention_reference(*a))
    args, mask, _ = inputs(seed=2)
    ea.edge_attention(*[x.to(device) for x in args], mask.to(device), recompute=True)
    if device.type == "cuda":
        assert calls == ["torch"]


def test_bf16_autocast_on_cuda_stays_close_to_float32(device):
    args, mask, cot = inputs(seed=3)
    want = values_and_grads(ea.edge_attention_reference, args, mask, cot, "cpu", torch.float64)

    def under_autocast(*a):
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            return ea.edge_attention(*a, recompute=True)

    got = values_and_grads(under_autocast, args, mask, cot, device)
    assert all(torch.isfinite(x).all() for x in got)
    assert_close(got, want, 5e-2, "bf16 autocast vs float64 reference")
