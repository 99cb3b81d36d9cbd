"""The argument parser of every evalframes command line (``python -m collect``,
``python -m collect.check``, ``python -m render``)."""

from __future__ import annotations

import argparse
from typing import NoReturn

__all__ = ["OneLineErrorParser"]


class OneLineErrorParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (no usage dump), exit status 2.

    Shared by every evalframes command line (collect, collect.check, render).
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")
