"""Read one YAML 1.2 file into plain data plus a map from key paths to line numbers.

YAML 1.2 (ruamel.yaml) reads `start: 9:00` as the text "9:00", where YAML 1.1 readers make it
the number 540. The line map lets every error name the line of the key it is about. Duplicate
keys are refused here, all of them at once, because the first value would otherwise be lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode

from casabook.errors import CasabookError, collect

KeyPath = tuple[str | int, ...]


class _DatesAsText(SafeConstructor):
    """Leaves dates as text, so the model checks them and names the key when one is wrong."""


_DatesAsText.add_constructor("tag:yaml.org,2002:timestamp", SafeConstructor.construct_yaml_str)


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


def _walk(node: Node, path: KeyPath, lines: dict[KeyPath, int], file: str, duplicates: list[CasabookError]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                duplicates.append(CasabookError("duplicate-key", f"key {key!r} appears twice in one mapping",
                                                file=file, key=format_key((*path, key)),
                                                line=key_node.start_mark.line + 1))
                continue
            seen.add(key)
            # A key's line is where the key is written, not where its value starts.
            lines[(*path, key)] = key_node.start_mark.line + 1
            _walk(value_node, (*path, key), lines, file, duplicates)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), lines, file, duplicates)


def _reader() -> YAML:
    reader = YAML(typ="safe", pure=True)
    reader.Constructor = _DatesAsText
    return reader


def read_yaml(path: Path, display: str | None = None) -> YamlFile:
    display = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CasabookError("file-missing", "file not found", file=display) from None
    except (OSError, UnicodeDecodeError) as error:
        raise CasabookError("file-unreadable", f"cannot read the file: {error}", file=display) from None
    reader = _reader()
    try:
        root = reader.compose(text)
        lines: dict[KeyPath, int] = {}
        duplicates: list[CasabookError] = []
        if root is not None:
            _walk(root, (), lines, display, duplicates)
        if duplicates:
            raise collect(duplicates)
        # The tree is composed once: the constructor turns the same nodes into data.
        data = reader.constructor.construct_document(root) if root is not None else None
    except YAMLError as error:
        mark = error.problem_mark if isinstance(error, MarkedYAMLError) else None
        problem = (error.problem if isinstance(error, MarkedYAMLError) else None) or str(error).splitlines()[0]
        raise CasabookError("bad-yaml", f"not valid YAML: {problem}", file=display,
                            line=mark.line + 1 if mark else None) from None
    return YamlFile(path=path, display=display, data=data, lines=lines)
