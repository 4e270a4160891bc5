"""Make dronekit 2.9.2 importable on Python >= 3.10.

dronekit's last release (2019) uses ``collections.MutableMapping`` and friends,
which moved to :mod:`collections.abc` and were removed from :mod:`collections`
in Python 3.10; it also needs the (undeclared) ``future`` package. This shim
restores the old names before dronekit is imported, so existing dronekit
scripts can drive the simulator (``haulwatch sim``) or a vehicle::

    from haulwatch.drone.dronekit_compat import import_dronekit
    dronekit = import_dronekit()
    vehicle = dronekit.connect("tcp:127.0.0.1:5760", wait_ready=True)

Nothing happens on import of this module; call :func:`install` or
:func:`import_dronekit`.
"""

from __future__ import annotations

import collections
import collections.abc
import sys
from types import ModuleType

__all__ = ["ABC_NAMES", "import_dronekit", "install"]

#: Names dronekit (and its dependencies) still look up in ``collections``.
ABC_NAMES: tuple[str, ...] = (
    "Callable",
    "Iterable",
    "Mapping",
    "MutableMapping",
    "MutableSequence",
    "MutableSet",
    "Sequence",
)


def install() -> list[str]:
    """Restore the ``collections`` ABC aliases that Python 3.10 removed.

    Returns
    -------
    list of str
        The names added (empty on Python < 3.10 or when already installed).
    """
    added = []
    for name in ABC_NAMES:
        if not hasattr(collections, name):
            setattr(collections, name, getattr(collections.abc, name))
            added.append(name)
    return added


def import_dronekit() -> ModuleType:
    """Install the shim and import dronekit.

    Returns
    -------
    module
        The ``dronekit`` module.

    Raises
    ------
    ImportError
        When dronekit or the ``future`` package it needs is not installed
        (``pip install dronekit==2.9.2 future``).
    """
    install()
    try:
        import dronekit
    except ImportError as exc:
        raise ImportError(
            f"dronekit could not be imported on Python {sys.version_info.major}."
            f"{sys.version_info.minor} ({exc}); install it with "
            "'pip install dronekit==2.9.2 future'"
        ) from exc
    return dronekit
