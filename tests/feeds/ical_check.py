"""A strict reader of the iCalendar text the feeds serve (RFC 5545), for the tests.

It refuses what calendar programs choke on: bare LF or CR, lines over 75 octets, folds
that split a UTF-8 character, unbalanced components, a VEVENT without exactly one UID,
DTSTAMP and DTSTART, times not in UTC form, unescaped commas and semicolons in TEXT, and
escapes RFC 5545 does not define.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

TEXT_PROPERTIES = {"SUMMARY", "DESCRIPTION", "LOCATION", "NAME", "X-WR-CALNAME", "UID"}
UTC_TIME = re.compile(r"\d{8}T\d{6}Z")
NAME = re.compile(r"[A-Z0-9-]+")


@dataclass
class Component:
    name: str
    properties: list[tuple[str, dict[str, str], str]] = field(default_factory=list)
    children: list[Component] = field(default_factory=list)

    def all(self, name: str) -> list[str]:
        return [value for key, _, value in self.properties if key == name]

    def one(self, name: str) -> str:
        values = self.all(name)
        assert len(values) == 1, f"{self.name} has {len(values)} {name}, not one"
        return values[0]

    def text(self, name: str) -> str:
        return unescape_text(self.one(name))

    def time(self, name: str) -> datetime:
        value = self.one(name)
        assert UTC_TIME.fullmatch(value), f"{name} {value!r} is not a UTC DATE-TIME"
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)

    @property
    def events(self) -> list[Component]:
        return [c for c in self.children if c.name == "VEVENT"]


def unescape_text(value: str) -> str:
    out = []
    i = 0
    while i < len(value):
        c = value[i]
        if c == "\\":
            assert i + 1 < len(value), f"a TEXT value ends in a lone backslash: {value!r}"
            nxt = value[i + 1]
            assert nxt in "\\;,nN", f"\\{nxt} is no TEXT escape: {value!r}"
            out.append("\n" if nxt in "nN" else nxt)
            i += 2
            continue
        assert c not in ",;", f"an unescaped {c!r} in TEXT: {value!r}"
        out.append(c)
        i += 1
    return "".join(out)


def unfold(body: bytes) -> list[str]:
    """The content lines, after checking the physical lines and unfolding them."""
    assert body.endswith(b"\r\n"), "the calendar must end with CRLF"
    physical = body[:-2].split(b"\r\n")
    for line in physical:
        assert b"\n" not in line and b"\r" not in line, f"bare LF or CR in {line!r}"
        assert len(line) <= 75, f"a line of {len(line)} octets: {line!r}"
        line.decode()  # each physical line is whole UTF-8: no character split by a fold
    lines: list[str] = []
    for raw in physical:
        text = raw.decode()
        if text.startswith((" ", "\t")):
            assert lines, "a continuation line first"
            lines[-1] += text[1:]
        else:
            lines.append(text)
    return lines


def parse(body: bytes) -> Component:
    """The VCALENDAR in ``body``, checked as described in the module docstring."""
    stack: list[Component] = []
    root: Component | None = None
    for line in unfold(body):
        head, sep, value = line.partition(":")
        assert sep, f"no ':' in {line!r}"
        name, *params = head.split(";")
        assert NAME.fullmatch(name), f"bad property name {name!r}"
        parameters = dict(p.split("=", 1) for p in params)
        if name == "BEGIN":
            component = Component(value)
            if stack:
                stack[-1].children.append(component)
            else:
                assert root is None, "more than one top-level component"
                root = component
            stack.append(component)
            continue
        if name == "END":
            assert stack and stack[-1].name == value, f"END:{value} does not close its BEGIN"
            stack.pop()
            continue
        assert stack, f"{name} outside any component"
        if name in TEXT_PROPERTIES:
            unescape_text(value)
        stack[-1].properties.append((name, parameters, value))
    assert root is not None and not stack, "unbalanced BEGIN/END"
    assert root.name == "VCALENDAR"
    assert root.one("VERSION") == "2.0"
    assert root.one("PRODID")
    for event in root.events:
        event.one("UID")
        event.time("DTSTAMP")
        start, end = event.time("DTSTART"), event.time("DTEND")
        assert end > start
    return root
