#!/usr/bin/env python3
"""Fits the meaning reconstructor's confidence to the real token F1 of its reconstructions.

Input: the report.json of a `carma experiment` run against carmad with the model and
`--reconstruction meaning` (bench/reconstruction.sh writes bench-results/reconstruction-meaning.json).
Each reconstructed fragment there has the server's `confidence` (c = i + a·cosine + b·coverage with
the constants in Sources/DreamEngine/MeaningReconstructor.swift) and the real `token_f1` against the
original. The fit is a least-squares line token_f1 ≈ p + q·c on the fragments whose id hashes even;
the fragments whose id hashes odd are held out, and the script reports the mean absolute gap between
the refitted confidence and the real token F1 on them, by confidence band, before and after.

    scripts/calibrate-confidence.py bench-results/reconstruction-meaning.json --intercept I --cosine A --coverage B
prints the new constants (i' = p + q·i, a' = q·a, b' = q·b).
"""
import argparse
import json
import zlib

import numpy as np


def bands(pairs):
    out = []
    for low in np.arange(0, 1, 0.2):
        band = [(c, f) for c, f in pairs if low <= c < low + 0.2 or (low >= 0.8 and c >= low)]
        if band:
            out.append("%d at %.2f had %.2f" % (len(band), np.mean([c for c, _ in band]), np.mean([f for _, f in band])))
    return "; ".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report")
    parser.add_argument("--intercept", type=float, required=True)
    parser.add_argument("--cosine", type=float, required=True)
    parser.add_argument("--coverage", type=float, required=True)
    args = parser.parse_args()
    fragments = [f for f in json.load(open(args.report))["fragments"]
                 if f.get("method") == "context-meaning-v1" and "confidence" in f and "token_f1" in f]
    fit = [f for f in fragments if zlib.crc32(f["id"].encode()) % 2 == 0]
    held = [f for f in fragments if zlib.crc32(f["id"].encode()) % 2 == 1]
    x = np.array([f["confidence"] for f in fit])
    y = np.array([f["token_f1"] for f in fit])
    q, p = np.polyfit(x, y, 1)
    def refit(c):
        return float(min(1, max(0, p + q * c)))
    before = [(f["confidence"], f["token_f1"]) for f in held]
    after = [(refit(f["confidence"]), f["token_f1"]) for f in held]
    gap = lambda pairs: np.mean([abs(c - f) for c, f in pairs])
    print("fitted on %d, held out %d; token_f1 = %.4f + %.4f * confidence" % (len(fit), len(held), p, q))
    print("held out, before: mean |confidence - token F1| %.3f; %s" % (gap(before), bands(before)))
    print("held out, after:  mean |confidence - token F1| %.3f; %s" % (gap(after), bands(after)))
    print("constants: intercept %.4f, cosine %.4f, coverage %.4f" % (p + q * args.intercept, q * args.cosine, q * args.coverage))


if __name__ == "__main__":
    main()
