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
import statistics
import zlib

METHOD = "context-meaning-v1"


def reconstructed(report):
    """The report's fragments reconstructed by meaning that carry both confidence and token_f1."""
    return [f for f in report["fragments"]
            if f.get("method") == METHOD and "confidence" in f and "token_f1" in f]


def halves(fragments):
    """(fit, held out): the fragments whose id's CRC-32 is even, and those whose is odd."""
    fit = [f for f in fragments if zlib.crc32(f["id"].encode()) % 2 == 0]
    held = [f for f in fragments if zlib.crc32(f["id"].encode()) % 2 == 1]
    return fit, held


def fit_line(fragments):
    """(p, q) of the least-squares line token_f1 = p + q * confidence."""
    q, p = statistics.linear_regression([f["confidence"] for f in fragments],
                                        [f["token_f1"] for f in fragments])
    return p, q


def refit(p, q, confidence):
    """The refitted confidence, clamped to [0, 1]."""
    return float(min(1, max(0, p + q * confidence)))


def mean_gap(pairs):
    """Mean |confidence - token F1| over (confidence, token F1) pairs; nan for none."""
    return statistics.fmean(abs(c - f) for c, f in pairs) if pairs else float("nan")


def bands(pairs):
    """"n at mean confidence had mean F1" per confidence band of 0.2 (the last one open above)."""
    out = []
    for i in range(5):
        low = i * 0.2
        band = [(c, f) for c, f in pairs if low <= c < low + 0.2 or (low >= 0.8 and c >= low)]
        if band:
            out.append("%d at %.2f had %.2f" % (len(band), statistics.fmean(c for c, _ in band),
                                                statistics.fmean(f for _, f in band)))
    return "; ".join(out)


def calibrate(report, intercept, cosine, coverage):
    """The lines the script prints for a report and the current constants."""
    fit, held = halves(reconstructed(report))
    p, q = fit_line(fit)
    before = [(f["confidence"], f["token_f1"]) for f in held]
    after = [(refit(p, q, f["confidence"]), f["token_f1"]) for f in held]
    return [
        "fitted on %d, held out %d; token_f1 = %.4f + %.4f * confidence" % (len(fit), len(held), p, q),
        "held out, before: mean |confidence - token F1| %.3f; %s" % (mean_gap(before), bands(before)),
        "held out, after:  mean |confidence - token F1| %.3f; %s" % (mean_gap(after), bands(after)),
        "constants: intercept %.4f, cosine %.4f, coverage %.4f" % (p + q * intercept, q * cosine, q * coverage),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report")
    parser.add_argument("--intercept", type=float, required=True)
    parser.add_argument("--cosine", type=float, required=True)
    parser.add_argument("--coverage", type=float, required=True)
    args = parser.parse_args()
    with open(args.report) as f:
        report = json.load(f)
    print("\n".join(calibrate(report, args.intercept, args.cosine, args.coverage)))


if __name__ == "__main__":
    main()
