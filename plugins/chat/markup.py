"""Incremental rewriting of Grok's inline elements (``<grok:render …>…</grok:render>`` and kin).

Answer text arrives in small pieces and a tag may be split anywhere, even inside an
attribute value. :class:`ElementRewriter` holds back only what could still become one
of the element names it watches, and replaces each whole element (opening tag, content,
closing tag) once it has seen all of it. Everything else passes through untouched.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable

_NAME = re.compile(r"[A-Za-z_][\w:.\-]*")
_ATTR = re.compile(r"""([^\s=/>]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""")
#: a would-be tag longer than this is plain text, so a stray ``<`` never stalls a stream
MAX_TAG = 2048

Replace = Callable[[dict[str, str], str], str]


def parse_attrs(text: str) -> dict[str, str]:
    return {m.group(1).lower(): next(g for g in m.groups()[1:] if g is not None) for m in _ATTR.finditer(text)}


class _Tag:
    __slots__ = ("name", "closing", "self_closing", "attrs", "end")

    def __init__(self, name: str, closing: bool, self_closing: bool, attrs: str, end: int) -> None:
        self.name, self.closing, self.self_closing, self.attrs, self.end = name, closing, self_closing, attrs, end


def _scan_tag(text: str, start: int) -> _Tag | None | bool:
    """The tag at ``text[start] == "<"``: a :class:`_Tag`, ``None`` when it is not a tag,
    ``True`` when the text ends before the tag does."""
    pos = start + 1
    closing = text.startswith("/", pos)
    pos += closing
    match = _NAME.match(text, pos)
    if match is None:
        return True if pos >= len(text) else None
    if match.end() >= len(text):
        return True
    if text[match.end()] not in " \t\r\n/>":
        return None
    quote = ""
    for i in range(match.end(), len(text)):
        char = text[i]
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "<":
            return None
        elif char == ">":
            body = text[match.end():i]
            self_closing = body.rstrip().endswith("/")
            return _Tag(match.group().lower(), closing, self_closing, body.rstrip("/ \t\r\n"), i + 1)
    return True


@functools.lru_cache(maxsize=64)
def _element_names(names: tuple[str, ...]) -> frozenset[str]:
    """The names as matched: ``<xai:Card>`` and ``xai:card`` alike (made once per list, not
    once per response)."""
    return frozenset(n.strip().strip("<>/").lower() for n in names if n.strip().strip("<>/"))


class ElementRewriter:
    """Replace every element named in ``names`` (case-insensitive) by ``replace(attrs, raw)``.

    A closing tag without its opening one and a self-closing tag are replaced the same
    way. An element still open when the text ends is replaced too: its content is
    whatever had arrived.
    """

    def __init__(self, names: Iterable[str], replace: Replace) -> None:
        self._names = _element_names(tuple(names))
        self._replace = replace
        self._held = ""  # text not yet decided
        self._open: _Tag | None = None  # the element being collected
        self._depth = 0
        self._raw: list[str] = []  # raw text of the element being collected

    def _could_be_watched(self, partial: str) -> bool:
        """Whether an unfinished ``<…`` may still turn into a watched tag."""
        name = partial[1:].lstrip("/").lower()
        cut = len(name)
        for i, char in enumerate(name):
            if char in " \t\r\n/>":
                cut = i
                break
        head = name[:cut]
        if cut < len(name):
            return head in self._names
        return any(n.startswith(head) for n in self._names)

    def feed(self, text: str) -> str:
        if not self._names:
            return text
        text = self._held + text
        self._held = ""
        out: list[str] = []
        pos = 0
        while True:
            lt = text.find("<", pos)
            if lt < 0:
                if self._open is None:
                    out.append(text[pos:])
                else:
                    self._raw.append(text[pos:])
                return "".join(out)
            if self._open is None:
                out.append(text[pos:lt])
            else:
                self._raw.append(text[pos:lt])
            tag = _scan_tag(text, lt)
            if tag is True:
                if len(text) - lt <= MAX_TAG and (self._open is not None or self._could_be_watched(text[lt:])):
                    self._held = text[lt:]
                    return "".join(out)
                tag = None
            if tag is None:
                (out if self._open is None else self._raw).append("<")
                pos = lt + 1
                continue
            assert isinstance(tag, _Tag)
            raw_tag = text[lt:tag.end]
            pos = tag.end
            if self._open is not None:
                self._raw.append(raw_tag)
                if tag.name == self._open.name and not tag.self_closing:
                    self._depth += -1 if tag.closing else 1
                    if self._depth == 0:
                        out.append(self._close())
            elif tag.name in self._names:
                if tag.closing or tag.self_closing:
                    out.append(self._replace(parse_attrs(tag.attrs), raw_tag))
                else:
                    self._open, self._depth, self._raw = tag, 1, [raw_tag]
            else:
                out.append(raw_tag)

    def _close(self) -> str:
        assert self._open is not None
        attrs, raw = parse_attrs(self._open.attrs), "".join(self._raw)
        self._open, self._depth, self._raw = None, 0, []
        return self._replace(attrs, raw)

    def flush(self) -> str:
        held, self._held = self._held, ""
        if self._open is None:
            return held
        self._raw.append(held)
        return self._close()
