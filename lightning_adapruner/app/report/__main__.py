"""``python -m lightning_adapruner.app.report <sweep dir | runs.jsonl>``: the same as ``adapruner-report``."""

import logging
import sys

from lightning_adapruner.app.report.build import main

log = logging.getLogger(__name__)

if __name__ == "__main__":
    sys.exit(main())
