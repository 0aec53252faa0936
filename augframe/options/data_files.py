"""Reading configuration files as data: YAML without aliases, bounded nesting and size.

Run configs and pipeline files are written by users and shared between
them, so they are read as data, never as programs: `load_yaml` is the one
YAML loader of the project (a `yaml.SafeLoader` that refuses anchors and
aliases, which expand a few hundred bytes into billions of nodes, caps the
nesting and the number of nodes, refuses a key given twice and YAML merge
keys (`<<:`), reads dates as plain text and refuses integers of more than
`MAX_INT_DIGITS` digits; whatever a constructor raises is a YAML error with
its line). Files are
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

import json
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.scanner import ScannerError

__all__ = [
    "MAX_DEPTH",
    "MAX_INT_DIGITS",
    "MAX_NODES",
    "DuplicateKeyError",
    "load_yaml",
    "unique_keys",
    "yaml_problem",
]

MAX_DEPTH = 32
"""The deepest nesting of mappings and lists a YAML or JSON file may have."""

MAX_NODES = 3_000
"""The most YAML nodes (scalars, lists, mappings) a file may hold; the
largest shipped pipeline (heavy) has 309; PyYAML composes 10,000 to 20,000 a
second (about 0.2 s for 3,000 on 2 shared cores), so a file is refused within
a fraction of a second."""


MAX_INT_DIGITS = 100
"""The most digits an integer in a YAML file may have: no option of augframe
or argument of a transform takes more (a seed has at most 20), and Python
refuses to convert integers of more than 4,300 digits to and from text."""

_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"


class _DataLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` with no aliases, anchors or merge keys, bounded depth
    and size, unique keys, dates read as text and bounded integers."""

    # YAML 1.1 reads `2024-01-02` as a date (and `2024-13-45` fails with a
    # ValueError); no file of augframe holds a date: it stays text.
    yaml_implicit_resolvers = {  # noqa: RUF012 (PyYAML reads the class attribute)
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:
        """Refuses `[` or `{` nested deeper than `MAX_DEPTH` as it is scanned.

        The composer's own depth check comes later: PyYAML's scanner reads up
        to 1,024 characters ahead to place a possible key, at a cost that
        grows with the square of the flow levels it holds (seconds for a
        line of `[`).
        """
        if self.flow_level >= MAX_DEPTH:
            raise ScannerError(
                None,
                None,
                f"nested more than {MAX_DEPTH} levels deep",
                self.get_mark(),
            )
        super().fetch_flow_collection_start(TokenClass)

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

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        """The value of `node`; whatever its constructor raises (a date
        `!!timestamp 2024-13-45`, an integer too long for Python) becomes a
        `ConstructorError` at the node's line and column."""
        try:
            value = super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except Exception as exc:  # ValueError, OverflowError, TypeError, ...
            raise ConstructorError(
                None,
                None,
                f"cannot read the value {_excerpt(node)} "
                f"({type(exc).__name__}: {str(exc).split(';')[0][:120]})",
                node.start_mark,
            ) from None
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and abs(value) >= 10**MAX_INT_DIGITS
        ):
            raise ConstructorError(
                None,
                None,
                f"the integer {_excerpt(node)} has more than {MAX_INT_DIGITS} "
                "digits (10**{MAX_INT_DIGITS} or more); no value in augframe's "
                "files is that large",
                node.start_mark,
            )
        return value

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE:
                raise ConstructorError(
                    None,
                    None,
                    "YAML merge keys (`<<:`) are not allowed in augframe's "
                    "files: write each key out once",
                    key_node.start_mark,
                )
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


class DuplicateKeyError(ValueError):
    """A JSON object gives a key twice (`unique_keys`)."""


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`object_pairs_hook` for `json.loads` that refuses a key given twice.

    `json` keeps the last of two values silently (`{"p": 0.5, "p": 0.9}` is
    0.9); augframe's JSON files refuse it, as its YAML files do.

    Raises:
        DuplicateKeyError: naming the key.

    Example:
    >>> import json
    >>> json.loads('{"p": 0.5, "p": 0.9}', object_pairs_hook=unique_keys)
    Traceback (most recent call last):
    ...
    augframe.options.data_files.DuplicateKeyError: key "p" is given twice; keep one
    """
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise DuplicateKeyError(
                f"key {json.dumps(key)[:80]} is given twice; keep one"
            )
        found[key] = value
    return found


def _excerpt(node: Any) -> str:
    """A node's text, shortened: `2024-13-45`, `99999...` (5000 characters)."""
    text = str(node.value) if isinstance(node, yaml.ScalarNode) else node.tag
    return repr(text if len(text) <= 24 else f"{text[:20]}... ({len(text)} characters)")


def load_yaml(text: str) -> Any:
    """The data a YAML document holds, read as data only.

    Dates (`2024-01-02`) are read as text.

    Raises:
        yaml.YAMLError: not YAML; a tag other than the plain types; an
            anchor or alias; a merge key (`<<:`); nesting deeper than
            `MAX_DEPTH`; more than `MAX_NODES` values; a key given twice; an
            integer of more than `MAX_INT_DIGITS` digits; a value its
            constructor cannot make (`!!timestamp 2024-13-45`, `!!binary
            @@`). `problem` says which, `problem_mark` where.
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
