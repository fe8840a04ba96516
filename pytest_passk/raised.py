"""Stand-ins for the candidate's own exception classes, as a task's test sees them.

A candidate's exception whose class is a builtin one (``ValueError``, ``KeyError``) reaches the
test as that builtin type, with its plain arguments. One of the candidate's own classes cannot
cross (its code stays in the candidate's process): it reaches the test as a class of the same
name, made here once per name, that subclasses :class:`CandidateError` and the nearest builtin
exception class of the original (``class Insufficient(ValueError)`` arrives as an
``Insufficient`` that is both a ``CandidateError`` and a ``ValueError``)::

    with pytest.raises(passk.candidate_exception("Insufficient"), match="no money"):
        account.withdraw(100)

Stdlib only: the sandbox's judge finds this module among the test's imports.
"""

from __future__ import annotations

__all__ = ["CandidateError", "candidate_exception"]


class CandidateError(Exception):
    """Base of every stand-in for an exception class the candidate defined itself."""


_MADE: dict[tuple[str, type[BaseException]], type[CandidateError]] = {}


def candidate_exception(name: str, base: type[Exception] = Exception) -> type[CandidateError]:
    """The stand-in class for the candidate's exception class ``name``.

    ``pytest.raises(candidate_exception("Insufficient"))`` matches the candidate's
    ``Insufficient`` whatever builtin class it derives from: the stand-in for a subclass of a
    builtin (``base``) derives from the one made for ``name`` alone.
    """
    key = (name, base)
    made = _MADE.get(key)
    if made is None:
        if base is Exception:
            made = type(name, (CandidateError,), {"__module__": "candidate"})
        else:
            made = type(name, (candidate_exception(name), base), {"__module__": "candidate"})
        _MADE[key] = made
    return made
