"""Argument checks of the datamodule zoo: one ``ValueError`` naming the argument, what it must be and what it got."""

from __future__ import annotations

from typing import Any


def check_arg(name: str, value: Any, ok: bool, allowed: str) -> None:
    """Raise ``ValueError`` naming the argument, the allowed values and the value received, unless ``ok``.

    Args:
        name: the argument's name.
        value: the value received.
        ok: whether ``value`` is allowed.
        allowed: what the argument must be, e.g. ``"an int >= 1"``.

    Raises:
        ValueError: ``"<name> must be <allowed>, got <value!r>"`` when ``ok`` is false.

    Example::

        >>> check_arg("root", "???", False, "the path of a class-per-folder image set")
        Traceback (most recent call last):
        ...
        ValueError: root must be the path of a class-per-folder image set, got '???'
    """
    if not ok:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")


def is_int(value: Any) -> bool:
    """``True`` for a Python ``int`` that is not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """``True`` for a Python ``int`` or ``float`` that is not a ``bool``."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_int(name: str, value: Any, low: int, high: int | None = None) -> None:
    """Check that ``value`` is an ``int`` in ``[low, high]`` (``high=None``: no upper bound).

    Args:
        name: the argument's name.
        value: the value received.
        low: the smallest value allowed.
        high: the largest value allowed (``None``: no upper bound).

    Raises:
        ValueError: naming the argument, the range and the value received.

    Example::

        >>> check_int("batch_size", 0, 1)
        Traceback (most recent call last):
        ...
        ValueError: batch_size must be an int >= 1, got 0
        >>> check_int("cutout", 16, 0, 32)  # passes silently
    """
    if high is None:
        check_arg(name, value, is_int(value) and value >= low, f"an int >= {low}")
    else:
        check_arg(name, value, is_int(value) and low <= value <= high, f"an int in [{low}, {high}]")


def check_fraction(name: str, value: Any, *, below_one: bool = False) -> None:
    """Check that ``value`` is a number in ``[0, 1]`` (``[0, 1)`` with ``below_one``).

    Args:
        name: the argument's name.
        value: the value received.
        below_one: exclude 1.

    Raises:
        ValueError: naming the argument, the range and the value received.

    Example::

        >>> check_fraction("val_fraction", 1.0, below_one=True)
        Traceback (most recent call last):
        ...
        ValueError: val_fraction must be a float in [0, 1), got 1.0
    """
    ok = is_number(value) and value >= 0.0 and (value < 1.0 if below_one else value <= 1.0)
    check_arg(name, value, ok, "a float in [0, 1)" if below_one else "a float in [0, 1]")
