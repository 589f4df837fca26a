"""Results computed from engine results, kept while those results live.

The dashboard keeps each quarter's scores (and the ranked history built from them) until a write
touches them, so what is computed from them — rank intervals, 核查 flags, a quarter's ranking, the
group statistics of the history — is computed once per data version, not at every rerun of every
page. A command's results die with it, and their entries with them.
"""
from __future__ import annotations

import weakref

import pandas as pd

_MEMO: dict[tuple, object] = {}


def memoised(sources: list, key: tuple, compute):
    """``compute()`` for ``sources`` (engine blocks, a Scores, a ranked frame: objects never
    modified once made) and ``key``, kept while every source lives. A DataFrame is returned as a
    copy, so that a caller may change what it got."""
    memo_key = (tuple(id(s) for s in sources), *key)
    if memo_key not in _MEMO:
        _MEMO[memo_key] = compute()
        for s in sources:
            weakref.finalize(s, _MEMO.pop, memo_key, None)
    value = _MEMO[memo_key]
    return value.copy() if isinstance(value, pd.DataFrame) else value


def forget() -> None:
    """Empty the memo (the benchmark times the computations themselves)."""
    _MEMO.clear()
