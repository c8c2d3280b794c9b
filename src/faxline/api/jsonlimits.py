"""Limits on a JSON text before it is parsed: its size and how deep it nests.

Python's `json` recurses once per level, so a text nested some thousands deep raises
RecursionError (a 500 and a stack trace) instead of a decoding error. The depth is found
here by one linear scan that knows strings and their escapes, without recursion.
"""

from __future__ import annotations


def nesting_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in `text` (0 for a scalar).

    Meant for text that is then parsed: on malformed JSON the figure is still an upper
    bound of what a parser would reach, never an error.
    """
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth = max(depth - 1, 0)
    return deepest
