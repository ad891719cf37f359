"""Makes the 3-messaging components importable as `messaging` for these tests."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "3-messaging"))
