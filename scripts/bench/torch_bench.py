#!/usr/bin/python3
"""PyTorch side of `npm run bench`: GEMM GFLOP/s and the transformer-block training step of
scripts/bench/transformer_block.ts, same architecture and optimiser. Prints one JSON object.

    python3 torch_bench.py gemm --threads 2 --sizes 64,128
    python3 torch_bench.py step --threads 2 --name vit-b32-block
"""
import argparse
import json
import math
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

# name -> (batch, tokens, width, heads, causal); mirrors steps.ts (whole CLIP models: torch_clip.py)
STEPS = {
    "vit-b32-block": (32, 50, 768, 12, False),
    "text-block": (32, 77, 512, 8, True),
    "vit-b32-block-b2": (2, 50, 768, 12, False),
}


def time_steps(step, reps, warmup=2):
    """Seconds of each of `reps` timed calls of `step`, after `warmup` untimed ones."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return times


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def parse_size(s):
    parts = [int(v) for v in s.split("x")]
    return parts * 3 if len(parts) == 1 else parts


def bench_gemm(sizes, budget):
    out = []
    for s in sizes:
        m, n, k = parse_size(s)
        a, b = torch.randn(m, k), torch.randn(k, n)
        a @ b
        best = math.inf
        for _ in range(3):
            reps, t0 = 0, time.perf_counter()
            while True:
                a @ b
                reps += 1
                dt = time.perf_counter() - t0
                if dt >= budget and reps >= 2:
                    break
            best = min(best, dt / reps)
        out.append({"size": s, "gflops": 2.0 * m * n * k / best / 1e9})
    return out


class Block(torch.nn.Module):
    """CLIP ResidualAttentionBlock with the same ops as transformer_block.ts."""

    def __init__(self, width, heads, causal, tokens):
        super().__init__()
        d = width
        self.heads, self.causal = heads, causal
        self.ln_1 = torch.nn.LayerNorm(d)
        self.in_proj_weight = torch.nn.Parameter(torch.randn(3 * d, d) * 0.02)
        self.in_proj_bias = torch.nn.Parameter(torch.zeros(3 * d))
        self.out_proj = torch.nn.Linear(d, d)
        self.ln_2 = torch.nn.LayerNorm(d)
        self.c_fc = torch.nn.Linear(d, 4 * d)
        self.c_proj = torch.nn.Linear(4 * d, d)
        mask = torch.triu(torch.full((tokens, tokens), -1e9), diagonal=1)
        self.register_buffer("mask", mask)

    def forward(self, x):
        b, n, d = x.shape
        h, dh = self.heads, d // self.heads
        a = self.ln_1(x)
        q, k, v = F.linear(a, self.in_proj_weight, self.in_proj_bias).split(d, dim=2)
        q, k, v = (t.reshape(b, n, h, dh).transpose(1, 2) for t in (q, k, v))
        s = q @ k.transpose(-1, -2)
        if self.causal:
            s = s + self.mask
        attn = torch.softmax(s * (1.0 / math.sqrt(dh)), dim=-1)
        ctx = (attn @ v).transpose(1, 2).reshape(b, n, d)
        x = x + self.out_proj(ctx)
        hid = self.c_fc(self.ln_2(x))
        return x + self.c_proj(hid * torch.sigmoid(1.702 * hid))


def bench_step(name, reps):
    batch, tokens, width, heads, causal = STEPS[name]
    torch.manual_seed(0)
    model = Block(width, heads, causal, tokens)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.2}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-4, betas=(0.9, 0.98), eps=1e-6)
    x = torch.randn(batch, tokens, width)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = model(x).pow(2).mean()
        loss.backward()
        opt.step()
        return loss.item()

    times = time_steps(step, reps)
    med = statistics.median(times)
    return {"name": name, "pairsPerStep": batch, "medianSec": med, "minSec": min(times),
            "pairsPerSec": batch / med}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["gemm", "step"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sizes", default="256,512,1024")
    ap.add_argument("--name", default="vit-b32-block")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--budget", type=float, default=0.3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.mode == "gemm":
        res = {"results": bench_gemm(args.sizes.split(","), args.budget)}
    else:
        res = bench_step(args.name, args.reps)
    res.update({"torch": torch.__version__, "threads": torch.get_num_threads(), "peakRssMB": peak_rss_mb()})
    json.dump(res, sys.stdout)


if __name__ == "__main__":
    main()
