"""Writing CFL literals: the inverse of the string decoding in `cfglang.syntax.build`.

Shared by every tool that writes CFL source (import, secrets encrypt/decrypt), so that a
string always reads back as exactly the text it was made from.
"""

from __future__ import annotations

import unicodedata


def quote(text: str) -> str:
    """A CFL string literal that reads back as exactly ``text``."""
    out = ['"']
    for i, ch in enumerate(text):
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\0":
            out.append("\\0")
        elif ch == "$" and text.startswith("<", i + 1):
            out.append("$$")  # `$$<` is a literal `$<`, not a substitution
        elif unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp") or ch == "\ufeff":
            # Invisible or line-breaking characters are written as escapes, so the file
            # shows them and editors cannot mangle them (lone surrogates cannot even be
            # encoded as UTF-8).
            out.append(f"\\u{{{ord(ch):X}}}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)
