"""Read one YAML file into plain data plus a map from key paths to line numbers.

The map lets every error name the line of the key it is about. Duplicate keys, which PyYAML
silently collapses to the last one, are refused here because the first value would be lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from casabook.errors import CasabookError

KeyPath = tuple[str | int, ...]


class _Loader(yaml.SafeLoader):
    """SafeLoader that leaves dates as text, so the model checks them and names the key when one is wrong."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def format_key(path: KeyPath) -> str:
    """('schedule', 1, 'notebooks', 0) -> 'schedule[1].notebooks[0]'."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text


@dataclass(frozen=True)
class YamlFile:
    path: Path
    display: str
    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def line_of(self, key: KeyPath) -> int | None:
        """The line of the key, or of its nearest enclosing key that has one."""
        for end in range(len(key), -1, -1):
            if key[:end] in self.lines:
                return self.lines[key[:end]]
        return None

    def error(self, code: str, key: KeyPath, message: str) -> CasabookError:
        return CasabookError(code, message, file=self.display, key=format_key(key) or None,
                             line=self.line_of(key))


def _walk(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], file: str) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                raise CasabookError("duplicate-key", f"key {key!r} appears twice in one mapping",
                                    file=file, key=format_key((*path, key)),
                                    line=key_node.start_mark.line + 1)
            seen.add(key)
            lines[(*path, key)] = key_node.start_mark.line + 1
            _walk(value_node, (*path, key), lines, file)
            lines[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), lines, file)


def read_yaml(path: Path, display: str | None = None) -> YamlFile:
    display = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CasabookError("file-missing", "file not found", file=display) from None
    except (OSError, UnicodeDecodeError) as error:
        raise CasabookError("file-unreadable", f"cannot read the file: {error}", file=display) from None
    try:
        root = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise CasabookError("bad-yaml", f"not valid YAML: {problem}", file=display,
                            line=mark.line + 1 if mark else None) from None
    lines: dict[KeyPath, int] = {}
    if root is not None:
        _walk(root, (), lines, display)
    return YamlFile(path=path, display=display, data=data, lines=lines)
