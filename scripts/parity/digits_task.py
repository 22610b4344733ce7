#!/usr/bin/python3
"""Builds the real-image caption task of the accuracy comparison (scripts/parity/accuracy.ts).

Images: the 1797 handwritten-digit scans of UCI's "Optical Recognition of Handwritten Digits"
(8x8, 17 grey levels), as shipped in Debian's python3-sklearn (sklearn.datasets.load_digits),
upsampled once with PIL bicubic to 32x32 RGB PNGs. A fixed, stratified 75/25 split: training
pairs go to <out>/train/<stem>.png + <stem>.txt (several caption lines per image, one drawn per
sample and epoch), held-out images to <out>/test/<class>/<stem>.png for zero-shot top-1.

    /usr/bin/python3 scripts/parity/digits_task.py --out parity_digits
"""
import argparse
import json
import os

import numpy as np
from PIL import Image

NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
CAPTIONS = ["a photo of the digit {}.", "a handwritten {}.", "the number {}, written by hand.",
            "a scan of a handwritten digit {}.", "{}"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--size", type=int, default=32)
    args = ap.parse_args()
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise SystemExit("digits_task.py needs Debian's python3-sklearn (apt-get install python3-sklearn)")
    d = load_digits()
    rng = np.random.RandomState(0)
    train_dir, test_dir = os.path.join(args.out, "train"), os.path.join(args.out, "test")
    os.makedirs(train_dir, exist_ok=True)
    counts = {"train": 0, "test": 0}
    for c in range(10):
        idx = np.flatnonzero(d.target == c)
        rng.shuffle(idx)
        n_test = len(idx) // 4
        for k, i in enumerate(idx):
            grey = (d.images[i] * (255.0 / 16.0)).round().astype(np.uint8)
            img = Image.fromarray(255 - grey, "L").resize((args.size, args.size), Image.BICUBIC).convert("RGB")
            stem = f"digit{i:04d}"
            if k < n_test:
                os.makedirs(os.path.join(test_dir, NAMES[c]), exist_ok=True)
                img.save(os.path.join(test_dir, NAMES[c], stem + ".png"))
                counts["test"] += 1
            else:
                img.save(os.path.join(train_dir, stem + ".png"))
                with open(os.path.join(train_dir, stem + ".txt"), "w") as f:
                    f.write("\n".join(t.format(NAMES[c]) for t in CAPTIONS) + "\n")
                counts["train"] += 1
    json.dump({"classes": NAMES, **counts}, open(os.path.join(args.out, "task.json"), "w"))
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
