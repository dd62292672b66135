"""``python -m lightning_adapruner.app.report <sweep dir | runs.jsonl>``: the same as ``adapruner-report``."""

import sys

from lightning_adapruner.app.report.build import main

if __name__ == "__main__":
    sys.exit(main())
