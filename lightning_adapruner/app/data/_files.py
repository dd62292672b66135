"""Where a datamodule's files are: look in places, try a download, and one not-found error naming both and the fixes."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

DOWNLOAD_FIX = "go online with download=True and call prepare_data() (the Trainer does)"


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are in none of the places looked at (and could not be downloaded)."""


def missing_files(directory: Path, names: Iterable[str]) -> list[str]:
    """The ``names`` that are not files in ``directory``, in order.

    Args:
        directory: the folder to look in.
        names: the file names expected there.
    """
    return [name for name in names if not (directory / name).is_file()]


class DatasetFiles:
    """The download bookkeeping of one datamodule: where its files were looked for and what the download did.

    ``prepare_data`` calls :meth:`try_download`; ``setup`` calls :meth:`locate` and, when nothing is found,
    raises :meth:`not_found`, whose message lists every place looked in, the download's outcome and the fixes.

    Args:
        display_name: the dataset's name in messages (``"MNIST"``).
        download: whether :meth:`try_download` may download (the datamodule's ``download`` argument).
        download_dir: where a download goes (the datamodule's ``data_dir``).

    Example::

        >>> files = DatasetFiles("MNIST", download=False, download_dir="data")
        >>> found, looked = files.locate([(Path("no-such-dir"), "data_dir")], lambda d: (d, []))
        >>> found, looked
        (None, ['no-such-dir (data_dir): no such directory'])
        >>> print(files.not_found(looked, ["put the files in data/MNIST/raw"]))
        MNIST not found. Looked in:
          - no-such-dir (data_dir): no such directory
          - download: disabled (download=False)
        Fix it in one of these ways:
          - put the files in data/MNIST/raw
          - go online with download=True and call prepare_data() (the Trainer does)
    """

    def __init__(self, display_name: str, download: bool, download_dir: str) -> None:
        self.display_name = display_name
        self.download = download
        self.download_dir = download_dir
        self.tried = False
        self.error: str | None = None

    @staticmethod
    def locate(
        places: Sequence[tuple[Path, str]], find: Callable[[Path], tuple[T | None, list[str]]]
    ) -> tuple[T | None, list[str]]:
        """The files ``find`` finds in the first of ``places`` (``(directory, label)``) that has them all.

        Args:
            places: the directories to look in, in order, each with a label saying what it is.
            find: ``directory -> (files or None, names missing there)``.

        Returns:
            ``(files, report)``: ``files`` is ``None`` when no place has them; ``report`` has a line for every
            place looked in before (why it was passed over).
        """
        report = []
        for directory, label in places:
            if not directory.is_dir():
                report.append(f"{directory} ({label}): no such directory")
                continue
            files, missing = find(directory)
            if files is not None:
                return files, report
            report.append(f"{directory} ({label}): missing {', '.join(missing)}")
        return None, report

    def try_download(self, fetch: Callable[[], object]) -> None:
        """Call ``fetch`` when downloads are allowed; a failure is logged and kept for :meth:`not_found`.

        Args:
            fetch: downloads the files (raising on failure).
        """
        if not self.download:
            return
        self.tried = True
        try:
            fetch()
        except Exception as err:  # network errors come in many types (URLError, RuntimeError, OSError, ...)
            self.error = f"{type(err).__name__}: {err}"
            log.warning("%s download into %s failed: %s", self.display_name, self.download_dir, self.error)

    def status(self) -> str:
        """One line for a not-found message: what the download step did."""
        if not self.download:
            return "download: disabled (download=False)"
        if self.error is not None:
            return f"download into {self.download_dir}: failed ({self.error})"
        if not self.tried:
            return "download: not attempted; prepare_data() downloads (the Trainer calls it; call it before setup())"
        return "download: done, but the files are still missing or corrupted"

    def not_found(self, looked: Sequence[str], fixes: Sequence[str]) -> DatasetNotFoundError:
        """The error to raise: every place ``looked`` in, the download's outcome, ``fixes`` and the download fix.

        Args:
            looked: one line per place looked in (see :meth:`locate`).
            fixes: the dataset's own fixes, before the download fix.
        """
        places = "\n".join(f"  - {line}" for line in [*looked, self.status()])
        how = "\n".join(f"  - {fix}" for fix in [*fixes, DOWNLOAD_FIX])
        return DatasetNotFoundError(
            f"{self.display_name} not found. Looked in:\n{places}\nFix it in one of these ways:\n{how}"
        )
