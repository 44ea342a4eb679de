"""scripts/calibrate-confidence.py: its pure parts, and a run on a tiny report."""

import importlib.util
import json
import math
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "calibrate-confidence.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("calibrate_confidence", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cc = _load_script()


def report():
    """40 meaning reconstructions whose token F1 is exactly 0.1 + 0.5 * confidence, and two
    fragments the fit must ignore."""
    fragments = [{"id": "man1.page.%d" % i, "method": "context-meaning-v1", "confidence": i / 40,
                  "token_f1": 0.1 + 0.5 * i / 40} for i in range(40)]
    fragments.append({"id": "man1.copy.0", "method": "redundancy", "confidence": 1.0, "token_f1": 1.0})
    fragments.append({"id": "man1.blank.0", "method": "context-meaning-v1"})
    return {"fragments": fragments}


def test_reconstructed_and_halves() -> None:
    fragments = cc.reconstructed(report())
    assert len(fragments) == 40
    fit, held = cc.halves(fragments)
    assert len(fit) + len(held) == 40 and fit and held
    assert all(zlib.crc32(f["id"].encode()) % 2 == 0 for f in fit)


def test_fit_refit_gap_and_bands() -> None:
    p, q = cc.fit_line(cc.reconstructed(report()))
    assert (p, q) == (pytest.approx(0.1), pytest.approx(0.5))
    assert cc.refit(p, q, 0.5) == pytest.approx(0.35)
    assert cc.refit(2.0, 1.0, 0.5) == 1.0 and cc.refit(-1.0, 0.5, 0.5) == 0.0
    assert cc.mean_gap([(0.5, 0.25), (0.5, 1.0)]) == 0.375 and math.isnan(cc.mean_gap([]))
    assert cc.bands([(0.1, 0.2), (0.15, 0.4), (0.9, 0.8), (1.0, 1.0)]) == "2 at 0.12 had 0.30; 2 at 0.95 had 0.90"


def test_calibrate_on_a_tiny_report(tmp_path) -> None:
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report()))
    run = subprocess.run([sys.executable, str(SCRIPT), str(path), "--intercept", "0.2", "--cosine", "1", "--coverage", "0.4"],
                         capture_output=True, text=True, check=True)
    lines = run.stdout.splitlines()
    fit, held = cc.halves(cc.reconstructed(report()))
    assert lines[0] == "fitted on %d, held out %d; token_f1 = 0.1000 + 0.5000 * confidence" % (len(fit), len(held))
    assert lines[1].startswith("held out, before: mean |confidence - token F1| ")
    # the line fits exactly, so after the refit the held-out gap is 0
    assert lines[2].startswith("held out, after:  mean |confidence - token F1| 0.000; ")
    assert lines[3] == "constants: intercept 0.2000, cosine 0.5000, coverage 0.2000"
    assert lines == cc.calibrate(report(), 0.2, 1, 0.4)
