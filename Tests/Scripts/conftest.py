"""scripts/ on the import path, so that the tests import evalkit and the mancorpus package."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
