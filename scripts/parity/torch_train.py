#!/usr/bin/python3
"""PyTorch side of the training parity harness (scripts/parity/harness.ts).

Reads <dir>/run.json (recipe and model shape), <dir>/init.safetensors (lightclip's initial
weights, OpenAI state-dict names) and <dir>/data.safetensors (images NHWC float32, token ids
int32), trains OpenAI's CLIP architecture (the modules of scripts/bench/torch_clip.py, with the
head counts of run.json) with open_clip's recipe, and writes <dir>/torch.json (per-step losses)
and <dir>/torch_final.safetensors.

Recipe (open_clip_train): AdamW over two groups (no decay for ndim < 2, 'bn', 'ln', 'bias',
'logit_scale'), lr = base * (step+1)/warmup during warmup then half-cosine to 0 at `steps`
(open_clip's cosine_lr), loss = symmetric InfoNCE over the batch, logit_scale clamped to
[0, ln 100] after every optimizer step.

With minibatch_size > 0 and a ResNet image tower, the images go through the tower in chunks
of minibatch_size (BatchNorm sees chunk statistics, as under lightclip's gradient caching);
the text tower and ViTs always run the full batch.
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
from torch_clip import ModifiedResNet, Transformer, VisionTransformer  # noqa: E402

DTYPES = {"F32": np.float32, "I32": np.int32, "I64": np.int64, "F64": np.float64}
NAMES = {np.dtype(v): k for k, v in DTYPES.items()}


def read_safetensors(path):
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8:8 + n])
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        arr = np.frombuffer(buf[8 + n + a:8 + n + b], dtype=DTYPES[v["dtype"]]).reshape(v["shape"])
        out[k] = arr.copy()
    return out


def write_safetensors(path, tensors):
    header, chunks, off = {}, [], 0
    for k, arr in tensors.items():
        arr = np.asarray(arr)
        if not arr.flags.c_contiguous:
            arr = arr.copy()  # (np.ascontiguousarray would turn a 0-d logit_scale into shape [1])
        data = arr.tobytes()
        header[k] = {"dtype": NAMES[arr.dtype], "shape": list(arr.shape), "data_offsets": [off, off + len(data)]}
        chunks.append(data)
        off += len(data)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(chunks))


class CLIP(nn.Module):
    """OpenAI's CLIP (clip/model.py) with explicit head counts; weights come from a file."""

    def __init__(self, m):
        super().__init__()
        if not m["quick_gelu"]:
            raise SystemExit("torch_train.py: the parity models use QuickGELU (OpenAI's activation)")
        if m["patch_size"] is None:
            self.visual = ModifiedResNet(m["vision_layers"], m["embed_dim"], m["vision_heads"], m["image_size"], m["vision_width"])
        else:
            self.visual = VisionTransformer(m["image_size"], m["patch_size"], m["vision_width"], m["vision_layers"],
                                            m["vision_heads"], m["embed_dim"])
        ctx, w = m["context_length"], m["text_width"]
        mask = torch.empty(ctx, ctx).fill_(float("-inf")).triu_(1)
        self.transformer = Transformer(w, m["text_layers"], m["text_heads"], attn_mask=mask)
        self.token_embedding = nn.Embedding(m["vocab_size"], w)
        self.positional_embedding = nn.Parameter(torch.empty(ctx, w))
        self.ln_final = nn.LayerNorm(w)
        self.text_projection = nn.Parameter(torch.empty(w, m["embed_dim"]))
        self.logit_scale = nn.Parameter(torch.ones([]))

    def encode_image(self, images, chunk):
        if chunk <= 0 or chunk >= images.shape[0]:
            return self.visual(images)
        return torch.cat([self.visual(images[s:s + chunk]) for s in range(0, images.shape[0], chunk)])

    def encode_text(self, text):
        x = self.token_embedding(text) + self.positional_embedding
        x = self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
        x = self.ln_final(x)
        return x[torch.arange(x.shape[0]), text.argmax(dim=-1)] @ self.text_projection


def cosine_lr_factor(step, warmup, steps):
    """open_clip's cosine_lr: (step+1)/warmup, then 0.5·(1 + cos(π·e/es))."""
    if step < warmup:
        return (step + 1) / warmup
    e, es = step - warmup, steps - warmup
    return 0.5 * (1 + math.cos(math.pi * e / es))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--float64", action="store_true",
                    help="train in float64 and write torch64*.json/safetensors: the float32 rounding floor of the comparison")
    args = ap.parse_args()
    torch.set_num_threads(1)
    run = json.load(open(os.path.join(args.dir, "run.json")))
    m = run["model"]
    model = CLIP(m)
    init = read_safetensors(os.path.join(args.dir, "init.safetensors"))
    sd = {k: torch.from_numpy(v) for k, v in init.items()}
    for k, v in model.state_dict().items():
        if k in sd and v.dtype != sd[k].dtype:
            sd[k] = sd[k].to(v.dtype)
    model.load_state_dict(sd, strict=True)
    if args.float64:
        model.double()
    model.train()

    data = read_safetensors(os.path.join(args.dir, "data.safetensors"))
    images = torch.from_numpy(data["images"]).permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW
    if args.float64:
        images = images.double()
    texts = torch.from_numpy(data["texts"]).long()

    def exclude(n, p):
        return p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or "logit_scale" in n

    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [{"params": [p for n, p in named if not exclude(n, p)], "weight_decay": run["weight_decay"]},
              {"params": [p for n, p in named if exclude(n, p)], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=run["lr"], betas=tuple(run["betas"]), eps=run["eps"])
    chunk = run["minibatch_size"] if m["patch_size"] is None else 0
    b, steps = run["batch_size"], run["steps"]
    per_epoch = steps // run["epochs"]  # the same batches again each epoch, in order
    losses = []
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = run["lr"] * cosine_lr_factor(step, run["warmup_steps"], steps)
        k = step % per_epoch
        x, t = images[k * b:(k + 1) * b], texts[k * b:(k + 1) * b]
        opt.zero_grad(set_to_none=True)
        img = F.normalize(model.encode_image(x, chunk), dim=-1)
        txt = F.normalize(model.encode_text(t), dim=-1)
        logits = model.logit_scale.exp() * img @ txt.t()
        labels = torch.arange(x.shape[0])
        loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        losses.append(loss.item())

    out = {}
    for k, v in model.state_dict().items():
        a = v.detach().numpy()
        out[k] = a.astype(init[k].dtype) if k in init else a
    name = "torch64" if args.float64 else "torch"
    write_safetensors(os.path.join(args.dir, name + "_final.safetensors"), out)
    json.dump({"losses": losses, "torch": torch.__version__}, open(os.path.join(args.dir, name + ".json"), "w"))


if __name__ == "__main__":
    main()
