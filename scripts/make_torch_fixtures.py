"""Write tests/fixtures/from_torch/<arch>.npz: reference-architecture PyTorch models and their logits.

Needs PyTorch (not a dependency of the project), numpy, scipy and wfdb, e.g.::

    python3.11 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch==2.13.0 numpy scipy wfdb
    /tmp/torchenv/bin/python scripts/make_torch_fixtures.py [--archs fcn_wang,lstm] \
        [--ludb ../shared/data/ludb-1.0.1/data]

Each model is ``benchmarks/torch_peer.py``'s re-implementation of the reference (71 classes),
with random weights (2-D+ tensors regenerated from a seed by tests/torch_fixtures.py, so they
need not be stored), random BatchNorm affine parameters and head biases, and BatchNorm running
statistics calibrated on the 8 LUDB windows and then randomly perturbed. The file layout is
described in tests/torch_fixtures.py.

torch_peer's module names were checked against the reference itself (2026-12-04): its
code/models/{basic_conv1d,resnet1d,xresnet1d,inception1d,rnn1d}.py (commit ff776de), built with
fastai_model's arguments and fastai v1's bn_drop_lin/Flatten/Lambda, give for all 11 architectures
the same state-dict keys, shapes, order and aliases as torch_peer.build, and identical outputs
once the reference's weights are loaded into torch_peer (load_state_dict(strict=True)).
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "benchmarks"), str(REPO / "tests")]

import torch_peer  # noqa: E402
import torch_fixtures as tf_fix  # noqa: E402

SEED = 20261204
LOGIT_SCALE = 0.25


def randomise(model: nn.Module, x: torch.Tensor, seed: int) -> None:
    """Seeded weights, random BN affine + Linear biases, calibrated then perturbed BN statistics."""
    g = torch.Generator().manual_seed(seed)
    seen: dict[int, str] = {}
    with torch.no_grad():
        for key, t in model.state_dict(keep_vars=True).items():
            if id(t) in seen or not tf_fix.is_generated(tuple(t.shape)):
                continue
            seen[id(t)] = key
            t.copy_(torch.from_numpy(tf_fix.generated_tensor(key, tuple(t.shape), seed)))
        bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
        for bn in bns:
            bn.weight.copy_(0.5 + torch.rand(bn.weight.shape, generator=g))
            bn.bias.copy_(0.2 * torch.randn(bn.bias.shape, generator=g))
        for block in model.modules():  # xresnet: residual branches end in a small-gamma BN (as fastai's
            if isinstance(block, torch_peer.ResBlock):  # BatchZero intends); with gamma ~1 in 23-36 random
                last_bn = block.convs[-1][1]  # blocks float32 rounding grows to ~1e-4 in the logits
                last_bn.weight.copy_(0.05 + 0.2 * torch.rand(last_bn.weight.shape, generator=g))
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        for m in linears:
            m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
        # logits of magnitude ~1 (not ~5): float32 rounding of the real, spiky LUDB inputs reaches
        # ~1e-5 in logits of ~5 in PyTorch alone (threads / float64 change them that much); a wrong
        # mapping changes them by ~0.1-1
        linears[-1].weight.mul_(LOGIT_SCALE)
        # running statistics: cumulative averages over the inputs (BN layers in train mode only) ...
        model.eval()
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None
            bn.train()
        model(x)
        model.eval()
        # ... then randomised
        for bn in bns:
            bn.running_mean.add_(0.1 * bn.running_var.sqrt() * torch.randn(bn.running_mean.shape, generator=g))
            bn.running_var.mul_(0.7 + 0.7 * torch.rand(bn.running_var.shape, generator=g))
            # 8 windows leave some features (head BN after pooling, dead ReLU channels) with a
            # variance near 0: dividing by it would amplify float32 rounding ~100x
            bn.running_var.clamp_(min=0.1 * float(bn.running_var.median()))
            bn.running_var.copy_(torch.maximum(bn.running_var, (0.25 * bn.running_mean) ** 2))
            bn.momentum = 0.1


def fixture(arch: str, windows: np.ndarray, seed: int) -> dict:
    torch.manual_seed(seed)
    model = torch_peer.build(arch, num_classes=tf_fix.NUM_CLASSES)
    torch_peer.check_params(arch, torch_peer.count_params(model))
    x = torch.from_numpy(windows).transpose(1, 2).contiguous()  # (8, 12, 250)
    randomise(model, x, seed)
    with torch.no_grad():
        logits = model(x).numpy().astype(np.float32)
        exact = copy.deepcopy(model).double()(x.double()).numpy()  # float64: the float32 floor
    sd = model.state_dict(keep_vars=True)
    last = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1] + ".weight"  # scaled: stored
    first: dict[int, str] = {}
    alias_keys, alias_targets, gen_keys, gen_shapes, stored, generated = [], [], [], [], {}, []
    for key, t in sd.items():
        if id(t) in first:
            alias_keys.append(key)
            alias_targets.append(first[id(t)])
            continue
        first[id(t)] = key
        if tf_fix.is_generated(tuple(t.shape)) and key != last:
            gen_keys.append(key)
            gen_shapes.append(list(t.shape))
            generated.append(t.detach().numpy())
        else:
            stored[f"t/{key}"] = t.detach().numpy().copy()
    width = max(len(s) for s in gen_shapes)
    return {"arch": np.array(arch), "keys": np.array(list(sd)), "alias_keys": np.array(alias_keys, dtype=str),
            "alias_targets": np.array(alias_targets, dtype=str), "gen_keys": np.array(gen_keys),
            "gen_shapes": np.array([s + [0] * (width - len(s)) for s in gen_shapes]),  # 0-padded
            "seed": np.array(seed), "generated_digest": np.array(tf_fix.digest(generated)),
            "input_digest": np.array(tf_fix.digest([windows])), "logits": logits, "logits_float64": exact,
            "torch_version": np.array(torch.__version__), **stored}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--archs", default=",".join(torch_peer.PROTOCOL_PARAMS))
    p.add_argument("--ludb", default=str(REPO.parent / "shared" / "data" / "ludb-1.0.1" / "data"))
    p.add_argument("--out", default=str(tf_fix.FIXTURES))
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    windows = tf_fix.ludb_windows(Path(a.ludb))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for arch in a.archs.split(","):
        f = fixture(arch, windows, SEED)
        np.savez_compressed(out / f"{arch}.npz", **f)
        lg = f["logits"]
        print(f"{arch:14s} {len(f['keys'])} keys ({len(f['alias_keys'])} aliases), logits |max| {np.abs(lg).max():.3g} "
              f"std {lg.std():.3g} -> {out / (arch + '.npz')} ({(out / (arch + '.npz')).stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
