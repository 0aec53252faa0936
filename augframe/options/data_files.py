"""Reading configuration files as data: YAML without aliases, bounded nesting and size.

Run configs and pipeline files are written by users and shared between
them, so they are read as data, never as programs: `load_yaml` is the one
YAML loader of the project (a `yaml.SafeLoader` that refuses anchors and
aliases, which expand a few hundred bytes into billions of nodes, caps the
nesting and the number of nodes, and refuses a key given twice). Files are
opened with `augframe._files.read_regular` (regular files only, without
blocking, bounded) and JSON's nesting is checked with
`augframe._files.json_too_deep` before parsing. Design notes: docs/design/options.md.

Example:
>>> load_yaml("image_size: [8, 8]\\n")
{'image_size': [8, 8]}
>>> load_yaml("a: &x [1]\\nb: *x\\n")
Traceback (most recent call last):
...
yaml.composer.ComposerError: YAML anchors and aliases (&name, *name) are not allowed in augframe's files: write each value out
  in "<unicode string>", line 1, column 4:
    a: &x [1]
       ^
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError

__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
    "load_yaml",
    "yaml_problem",
]

MAX_DEPTH = 32
"""The deepest nesting of mappings and lists a YAML or JSON file may have."""

MAX_NODES = 3_000
"""The most YAML nodes (scalars, lists, mappings) a file may hold; the
largest shipped pipeline (heavy) has 309; PyYAML composes 10,000 to 20,000 a
second (about 0.2 s for 3,000 on 2 shared cores), so a file is refused within
a fraction of a second."""


class _DataLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` with no aliases or anchors, bounded depth and size,
    and unique keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise ComposerError(
                None,
                None,
                "YAML anchors and aliases (&name, *name) are not allowed in "
                "augframe's files: write each value out",
                event.start_mark,
            )
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise ComposerError(
                None, None, f"more than {MAX_NODES} values", event.start_mark
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise ComposerError(
                    None,
                    None,
                    f"nested more than {MAX_DEPTH} levels deep",
                    event.start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                if key_node.value in seen:
                    raise ConstructorError(
                        None,
                        None,
                        f"field `{key_node.value}` is given twice (line "
                        f"{key_node.start_mark.line + 1}); keep one",
                        key_node.start_mark,
                    )
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """The data a YAML document holds, read as data only.

    Raises:
        yaml.YAMLError: not YAML; a tag other than the plain types; an
            anchor or alias; nesting deeper than `MAX_DEPTH`; more than
            `MAX_NODES` values; a key given twice. `problem` says which,
            `problem_mark` where.
    """
    loader = _DataLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error in words: the problem, and its line and column.

    Example:
    >>> try:
    ...     load_yaml("a: [1")
    ... except yaml.YAMLError as exc:
    ...     print(yaml_problem(exc))
    expected ',' or ']', but got '<stream end>' at line 1 column 6
    """
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
    return f"{getattr(exc, 'problem', None) or type(exc).__name__}{where}"
