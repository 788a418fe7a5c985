"""Checks for registration artefacts, for the tests of the core and of every LMS plugin.

Each check returns a list of problems, one sentence each (empty when all is well), so a
test can assert ``== []`` and show every mistake at once::

    artifacts = registration_artifacts("main", "https://tool.example.edu", {})
    assert artifact_problems(artifacts, "https://tool.example.edu") == []

The cartridge rules follow the 1EdTech Basic LTI Implementation Guide 1.0 ("Basic LTI
Links in Common Cartridge": the ``cartridge_basiclti_link`` element, its namespaces and
the order of its children) and Canvas's "Importing Extended Tool Configurations" page
(the ``canvas.instructure.com`` extension).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ltipro.extension import RegistrationArtifact
from ltipro.registration_artifacts import (
    BLTI_NS,
    CARTRIDGE_NS,
    LTICM_NS,
    LTICP_NS,
    read_values,
    tool_urls,
)

KINDS = ("json", "xml", "url", "values")
# The children of cartridge_basiclti_link, in the order the schema's sequence requires.
CARTRIDGE_ORDER = (
    f"{{{BLTI_NS}}}title",
    f"{{{BLTI_NS}}}description",
    f"{{{BLTI_NS}}}custom",
    f"{{{BLTI_NS}}}extensions",
    f"{{{BLTI_NS}}}launch_url",
    f"{{{BLTI_NS}}}secure_launch_url",
    f"{{{BLTI_NS}}}icon",
    f"{{{BLTI_NS}}}secure_icon",
    f"{{{BLTI_NS}}}vendor",
    f"{{{CARTRIDGE_NS}}}cartridge_bundle",
    f"{{{CARTRIDGE_NS}}}cartridge_icon",
)
PROPERTY = f"{{{LTICM_NS}}}property"
OPTIONS = f"{{{LTICM_NS}}}options"
URL = re.compile(r"https?://[^\s\"'<>]+")
# What a pasted key looks like: PEM armour, or a JWK's members.
INLINE_KEY = re.compile(r"-----BEGIN [A-Z ]*KEY-----|\"kty\"\s*:|\"public_jwk\"\s*:")


@dataclass
class Cartridge:
    """What a cartridge says, read back for tests."""

    title: str
    description: str
    launch_url: str | None
    secure_launch_url: str | None
    custom: dict[str, str] = field(default_factory=dict)
    # Per platform: its properties, and each options block (a placement) as a mapping.
    extensions: dict[str, dict[str, Any]] = field(default_factory=dict)
    vendor: dict[str, str] = field(default_factory=dict)


def _text(element: ET.Element | None) -> str | None:
    return (element.text or "").strip() if element is not None else None


def _properties(element: ET.Element) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for child in element:
        if child.tag == PROPERTY:
            out[child.get("name", "")] = (child.text or "").strip()
        elif child.tag == OPTIONS:
            out[child.get("name", "")] = _properties(child)
    return out


def read_cartridge(xml_text: str) -> Cartridge:
    """Parse a cartridge (raises ``xml.etree.ElementTree.ParseError`` when it is not XML)."""
    # The XML is what the tool itself made, not input from outside.
    root = ET.fromstring(xml_text)  # noqa: S314
    blti = f"{{{BLTI_NS}}}"
    custom = root.find(blti + "custom")
    vendor = root.find(blti + "vendor")
    return Cartridge(
        title=_text(root.find(blti + "title")) or "",
        description=_text(root.find(blti + "description")) or "",
        launch_url=_text(root.find(blti + "launch_url")),
        secure_launch_url=_text(root.find(blti + "secure_launch_url")),
        custom=_properties(custom) if custom is not None else {},
        extensions={
            ext.get("platform", ""): _properties(ext) for ext in root.findall(blti + "extensions")
        },
        vendor={
            child.tag.removeprefix(f"{{{LTICP_NS}}}"): (child.text or "").strip()
            for child in (vendor if vendor is not None else [])
        },
    )


def cartridge_problems(xml_text: str, base_url: str | None = None) -> list[str]:
    """Everything that keeps ``xml_text`` from being a valid basic LTI link of the tool."""
    try:
        root = ET.fromstring(xml_text)  # noqa: S314 - see read_cartridge
    except ET.ParseError as exc:
        return [f"the cartridge is not XML: {exc}"]
    if root.tag != f"{{{CARTRIDGE_NS}}}cartridge_basiclti_link":
        return [f"the root element is {root.tag}, not cartridge_basiclti_link in {CARTRIDGE_NS}"]
    problems: list[str] = []
    positions = []
    for child in root:
        if child.tag not in CARTRIDGE_ORDER:
            problems.append(f"{child.tag} is not an element of cartridge_basiclti_link")
            continue
        positions.append(CARTRIDGE_ORDER.index(child.tag))
    if positions != sorted(positions):
        problems.append("the elements are not in the order the schema requires")
    extensions = CARTRIDGE_ORDER.index(f"{{{BLTI_NS}}}extensions")
    repeated = {CARTRIDGE_ORDER[p] for p in positions if positions.count(p) > 1}
    # One extensions element per platform is allowed; every other element is single.
    repeated.discard(CARTRIDGE_ORDER[extensions])
    problems.extend(f"{tag} appears more than once" for tag in sorted(repeated))
    cartridge = read_cartridge(xml_text)
    if not cartridge.title:
        problems.append("blti:title is missing or empty")
    if not cartridge.launch_url and not cartridge.secure_launch_url:
        problems.append("there is neither a blti:launch_url nor a blti:secure_launch_url")
    if cartridge.secure_launch_url and not cartridge.secure_launch_url.startswith("https://"):
        problems.append("blti:secure_launch_url is not an https:// URL")
    if not cartridge.vendor.get("code") or not cartridge.vendor.get("name"):
        problems.append("blti:vendor needs lticp:code and lticp:name")
    for ext in root.findall(f"{{{BLTI_NS}}}extensions"):
        if not ext.get("platform"):
            problems.append("a blti:extensions element has no platform attribute")
    for element in root.iter(PROPERTY):
        if not element.get("name"):
            problems.append("an lticm:property has no name")
    if base_url is not None:
        launch = tool_urls(base_url).launch
        for name, url in (
            ("blti:launch_url", cartridge.launch_url),
            ("blti:secure_launch_url", cartridge.secure_launch_url),
        ):
            if url is not None and url != launch:
                problems.append(f"{name} is {url}, not the tool's launch URL {launch}")
    return problems


def _json_keys(data: Any) -> set[str]:
    if isinstance(data, Mapping):
        keys = set(data)
        for value in data.values():
            keys |= _json_keys(value)
        return keys
    if isinstance(data, list):
        return set().union(*(_json_keys(item) for item in data)) if data else set()
    return set()


def artifact_problems(artifacts: Any, base_url: str) -> list[str]:
    """Everything wrong with a plugin's answer to ``registration_artifacts``.

    The answer must be a list of :class:`RegistrationArtifact` of a known kind whose
    content reads as that kind, every URL in it must be on the tool's host, and no
    artefact may carry a key instead of the key-set URL.
    """
    if not isinstance(artifacts, list):
        return [f"the answer is {type(artifacts).__name__}, not a list"]
    host = tool_urls(base_url).domain
    problems: list[str] = []
    for artifact in artifacts:
        if not isinstance(artifact, RegistrationArtifact):
            problems.append(f"{artifact!r} is not a RegistrationArtifact")
            continue
        where = f"{artifact.title!r}"
        if not artifact.title.strip():
            problems.append("an artefact has no title")
        if artifact.kind not in KINDS:
            problems.append(f"{where} has the unknown kind {artifact.kind!r}")
        elif artifact.kind == "json":
            try:
                data = json.loads(artifact.content)
            except ValueError as exc:
                problems.append(f"{where} is not JSON: {exc}")
            else:
                for key in sorted(_json_keys(data) & {"public_jwk", "kty"}):
                    problems.append(f"{where} carries a key ({key!r}) instead of its URL")
        elif artifact.kind == "xml":
            problems.extend(f"{where}: {p}" for p in cartridge_problems(artifact.content, base_url))
        elif artifact.kind == "url":
            if not URL.fullmatch(artifact.content.strip()):
                problems.append(f"{where} is not one URL")
        else:
            try:
                read_values(artifact.content)
            except ValueError as exc:
                problems.append(f"{where}: {exc}")
        if INLINE_KEY.search(artifact.content):
            problems.append(f"{where} carries a key instead of the key-set URL")
        for url in URL.findall(artifact.content):
            if not _is_xml_namespace(artifact, url) and urlsplit(url).netloc.lower() != host:
                problems.append(f"{where} names {url}, which is not on the tool's host {host}")
    return problems


def _is_xml_namespace(artifact: RegistrationArtifact, url: str) -> bool:
    # A cartridge names the 1EdTech schemas by URL; those are not addresses to call.
    return artifact.kind == "xml" and urlsplit(url).netloc in (
        "www.imsglobal.org",
        "www.w3.org",
    )


def values_of(artifact: RegistrationArtifact) -> dict[str, list[str]]:
    """A ``values`` artefact's rows by name; a name on several rows has several values."""
    out: dict[str, list[str]] = {}
    for name, value in read_values(artifact.content):
        out.setdefault(name, []).append(value)
    return out


def find_artifact(artifacts: list[RegistrationArtifact], kind: str) -> list[RegistrationArtifact]:
    """The artefacts of one kind, in order."""
    return [a for a in artifacts if a.kind == kind]


__all__ = [
    "Cartridge",
    "artifact_problems",
    "cartridge_problems",
    "find_artifact",
    "read_cartridge",
    "values_of",
]
