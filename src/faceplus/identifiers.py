"""The characters client-chosen text may hold, and the rule for identifiers (outer_id, user_id): one spelling
per string a person sees.

Face++ refuses ``^@,&=*'"`` in its text fields, and faceplus refuses control characters there too. An
identifier must also be written one way only: before this rule "alice" in NFC and NFD, in full-width letters,
or with a zero-width space, a byte-order mark or a right-to-left override inside, made six FaceSets that all
read "alice", and erasing user_id "alice" missed the look-alikes. So an identifier must already be in Unicode
NFKC form (full-width letters, ligatures, NFD accents and compatibility spaces are refused, not silently
folded: what is stored is what the client sent) and must not hold a character people cannot see: format
characters (zero-width, bidi controls, BOM), other default-ignorable code points (variation selectors, fillers),
line/paragraph separators, unassigned, private-use or surrogate code points, nor begin or end with white space.
Letters of different scripts that look alike (Latin "a", Cyrillic "а") stay distinct: telling them apart needs a
confusables table, not a normal form.
"""

from __future__ import annotations

import unicodedata

#: Characters Face++ refuses in outer_id, display_name, tags, user_data and user_id.
FORBIDDEN_TEXT = "^@,&=*'\""
FORBIDDEN_CHARS = frozenset(FORBIDDEN_TEXT)
#: Control characters (C0, DEL, C1): refused in those fields too (user_data may hold tabs and line breaks).
CONTROL_CHARS = frozenset(chr(c) for c in (*range(0x20), *range(0x7F, 0xA0)))
#: Unicode general categories refused in identifiers: control, format, surrogate, private use, unassigned,
#: line and paragraph separators.
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
#: Default_Ignorable_Code_Point ranges (Unicode DerivedCoreProperties.txt) that are not format characters already:
#: renderers draw nothing for them.
DEFAULT_IGNORABLE = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)


def has_forbidden_chars(value: str, allowed_controls: frozenset[str] = frozenset()) -> bool:
    """Whether ``value`` holds one of Face++'s refused characters or a control character not in ``allowed_controls``."""
    return any(c in FORBIDDEN_CHARS or (c in CONTROL_CHARS and c not in allowed_controls) for c in value)


def _invisible(c: str) -> bool:
    code = ord(c)
    return unicodedata.category(c) in REFUSED_CATEGORIES or any(lo <= code <= hi for lo, hi in DEFAULT_IGNORABLE)


def is_identifier(value: str) -> bool:
    """Whether ``value`` may be stored as an outer_id or user_id: Face++'s characters, NFKC form, nothing
    invisible, no white space at either end (the empty string passes: "no id" is the caller's rule)."""
    return (
        not has_forbidden_chars(value)
        and unicodedata.is_normalized("NFKC", value)
        and value == value.strip()
        and not any(_invisible(c) for c in value)
    )


def to_identifier(text: str, limit: int = 255) -> str:
    """``text`` (a folder name, say) made into an identifier: NFKC form, refused and invisible characters as
    ``_``, white space at the ends dropped, at most ``limit`` characters."""
    folded = unicodedata.normalize("NFKC", text)
    cleaned = "".join("_" if c in FORBIDDEN_CHARS or c in CONTROL_CHARS or _invisible(c) else c for c in folded)
    return unicodedata.normalize("NFKC", cleaned).strip()[:limit].strip()
