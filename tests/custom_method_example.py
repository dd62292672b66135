"""``examples/custom_method.py`` importable by name, also in spawned ranks (tests add tests/ to the path)."""

import runpy
from pathlib import Path

_namespace = runpy.run_path(str(Path(__file__).resolve().parents[1] / "examples" / "custom_method.py"))
KeepHardest = _namespace["KeepHardest"]
