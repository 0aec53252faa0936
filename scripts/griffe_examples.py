"""A griffe extension for the documentation site (mkdocs.yml loads it).

augframe's docstrings head their doctests `Example:`, with the `>>>` lines
at the heading's own indentation (doctest runs them). griffe reads only an
indented `Examples:` section as examples and would render the rest as prose,
so this rewrites the section before griffe parses a docstring. Nothing in the
package changes.
"""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension

_HEADING = re.compile(r"^(\s*)Example:\s*$")
_SECTION = re.compile(r"^(\s*)[A-Z][A-Za-z ]*:\s*$")


def _rewrite(text: str) -> str:
    """`Example:` and the lines after it (up to the next heading) as `Examples:`."""
    out: list[str] = []
    indent: str | None = None
    for line in text.splitlines():
        heading = _HEADING.match(line)
        if heading:
            indent = heading.group(1)
            out.append(f"{indent}Examples:")
        elif indent is not None and _SECTION.match(line) and line.startswith(indent):
            indent = None
            out.append(line)
        elif indent is not None and line.strip():
            out.append(f"{indent}    {line[len(indent) :]}")
        else:
            out.append(line)
    return "\n".join(out)


class ExampleSections(Extension):
    """Reads an `Example:` heading as griffe's `Examples:` section."""

    def on_instance(self, *, obj: Any, **kwargs: Any) -> None:
        docstring = getattr(obj, "docstring", None)
        if docstring is not None and "Example" in docstring.value:
            docstring.value = _rewrite(docstring.value)
