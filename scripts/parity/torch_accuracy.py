#!/usr/bin/python3
"""PyTorch side of the accuracy comparison (scripts/parity/accuracy.ts): trains OpenAI's CLIP
(ViT) with OpenAI's initialisation on the digits caption task with train-CLIP's data pipeline
and open_clip's optimizer/schedule, then prints zero-shot top-1 on the held-out images as JSON.

Data pipeline, as train-CLIP's TextImageDataset + Lightning's DataLoader(shuffle=True,
drop_last=True): a fresh permutation every epoch; per sample one caption line drawn uniformly
(random.choice); torchvision's RandomResizedCrop(size, scale=(0.75, 1), ratio=(1, 1)) with its
default BILINEAR interpolation on PIL images (get_params and resized_crop written out below,
torchvision not being part of Debian's python3-torch), ToTensor, CLIP's Normalize.
"""
import argparse
import json
import math
import os
import random
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from torch_train import CLIP, cosine_lr_factor, read_safetensors, write_safetensors

MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


def openai_init(model, m):
    """OpenAI's CLIP.initialize_parameters for a ViT CLIP (the ViT keeps its constructor's init)."""
    nn.init.normal_(model.token_embedding.weight, std=0.02)
    nn.init.normal_(model.positional_embedding, std=0.01)
    w, layers = m["text_width"], m["text_layers"]
    proj_std = w ** -0.5 * (2 * layers) ** -0.5
    for block in model.transformer.resblocks:
        nn.init.normal_(block.attn.in_proj_weight, std=w ** -0.5)
        nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
        nn.init.normal_(block.mlp.c_fc.weight, std=(2 * w) ** -0.5)
        nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)
    nn.init.normal_(model.text_projection, std=w ** -0.5)
    with torch.no_grad():
        model.logit_scale.fill_(math.log(1 / 0.07))


def rrc_params(width, height, scale, ratio, gen):
    """torchvision.transforms.RandomResizedCrop.get_params."""
    area = height * width
    log_ratio = torch.log(torch.tensor(ratio))
    for _ in range(10):
        target_area = area * torch.empty(1).uniform_(scale[0], scale[1], generator=gen).item()
        aspect = math.exp(torch.empty(1).uniform_(log_ratio[0].item(), log_ratio[1].item(), generator=gen).item())
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            i = torch.randint(0, height - h + 1, size=(1,), generator=gen).item()
            j = torch.randint(0, width - w + 1, size=(1,), generator=gen).item()
            return i, j, h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def to_tensor(img):
    a = (np.asarray(img, dtype=np.float32) / 255.0 - MEAN) / STD
    return torch.from_numpy(a.transpose(2, 0, 1).copy())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", required=True)
    ap.add_argument("--recipe", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--interpolation", default="bilinear", choices=["bilinear", "bicubic"])
    ap.add_argument("--init", help="start from these weights (e.g. lightclip's initialisation) instead of OpenAI's init")
    ap.add_argument("--save_init", help="write the initial weights here (safetensors)")
    args = ap.parse_args()
    started = time.time()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rnd = random.Random(args.seed)
    gen = torch.Generator().manual_seed(args.seed + 1)
    interp = Image.BILINEAR if args.interpolation == "bilinear" else Image.BICUBIC
    cfg, recipe = json.loads(args.model), json.loads(args.recipe)
    m = {"embed_dim": cfg["embed_dim"], "image_size": cfg["image_resolution"], "patch_size": cfg["vision_patch_size"],
         "vision_width": cfg["vision_width"], "vision_layers": cfg["vision_layers"], "vision_heads": cfg["vision_heads"],
         "context_length": cfg["context_length"], "vocab_size": cfg["vocab_size"], "text_width": cfg["transformer_width"],
         "text_heads": cfg["transformer_heads"], "text_layers": cfg["transformer_layers"], "quick_gelu": True}
    model = CLIP(m)
    openai_init(model, m)
    if args.init:
        sd = {k: torch.from_numpy(v) for k, v in read_safetensors(args.init).items()}
        model.load_state_dict(sd, strict=True)
    if args.save_init:
        write_safetensors(args.save_init, {k: v.detach().numpy().copy() for k, v in model.state_dict().items()})
    model.train()
    size = m["image_size"]

    tok = json.load(open(args.tokens))
    stems = sorted(tok["train"])
    train_dir = os.path.join(args.data, "train")
    images = [Image.open(os.path.join(train_dir, s + ".png")).convert("RGB") for s in stems]
    captions = [tok["train"][s] for s in stems]

    def exclude(n, p):
        return p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or "logit_scale" in n

    named = list(model.named_parameters())
    opt = torch.optim.AdamW([{"params": [p for n, p in named if not exclude(n, p)], "weight_decay": recipe["weightDecay"]},
                             {"params": [p for n, p in named if exclude(n, p)], "weight_decay": 0.0}],
                            lr=recipe["lr"], betas=(0.9, 0.98), eps=1e-6)
    b, steps, step = recipe["batchSize"], recipe["steps"], 0
    scale = (recipe["resizeRatio"], 1.0)
    while step < steps:
        order = torch.randperm(len(stems), generator=gen).tolist()
        for k in range(len(order) // b):
            if step >= steps:
                break
            idx = order[k * b:(k + 1) * b]
            xs, ts = [], []
            for i in idx:
                img = images[i]
                top, left, h, w = rrc_params(img.width, img.height, scale, (1.0, 1.0), gen)
                xs.append(to_tensor(img.crop((left, top, left + w, top + h)).resize((size, size), interp)))
                ts.append(rnd.choice(captions[i]))
            x, t = torch.stack(xs), torch.tensor(ts, dtype=torch.long)
            for g in opt.param_groups:
                g["lr"] = recipe["lr"] * cosine_lr_factor(step, recipe["warmupSteps"], steps)
            opt.zero_grad(set_to_none=True)
            img_f = F.normalize(model.visual(x), dim=-1)
            txt_f = F.normalize(model.encode_text(t), dim=-1)
            logits = model.logit_scale.exp() * img_f @ txt_f.t()
            labels = torch.arange(x.shape[0])
            loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2
            loss.backward()
            opt.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, math.log(100))
            step += 1

    model.eval()
    with torch.no_grad():
        classifier = []
        for prompts in tok["prompts"]:
            e = F.normalize(model.encode_text(torch.tensor(prompts, dtype=torch.long)), dim=-1).mean(0)
            classifier.append(F.normalize(e, dim=-1))
        classifier = torch.stack(classifier)
        correct = total = 0
        test_dir = os.path.join(args.data, "test")
        for c, name in enumerate(tok["classes"]):
            files = sorted(os.listdir(os.path.join(test_dir, name)))
            x = torch.stack([to_tensor(Image.open(os.path.join(test_dir, name, f)).convert("RGB")) for f in files])
            pred = (F.normalize(model.visual(x), dim=-1) @ classifier.t()).argmax(1)
            correct += int((pred == c).sum())
            total += len(files)
    print(json.dumps({"top1": correct / total, "seconds": time.time() - started, "count": total}))


if __name__ == "__main__":
    main()
