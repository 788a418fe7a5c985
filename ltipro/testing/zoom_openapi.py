"""Zoom's OpenAPI document, the part the tests use, and a small checker for it.

The Zoom API test double (:mod:`ltipro.testing.zoom_double`) runs every request it
receives and every response it sends through :class:`ZoomApiChecker`, so the client is
tested against what Zoom documents, not against what its authors assumed.

The subset lives in ``data/zoom-openapi-subset.json``. It is cut from Zoom's own document
(``shared/reference/zoom-meeting-api-spec.json``, Zoom Meeting API v2 as published in
October 2023) by :func:`build_subset`: the operations in :data:`OPERATIONS`, with prose
and examples removed and the error codes that Zoom lists only in response descriptions
kept as ``x-error-codes``. A test rebuilds it from the reference copy and compares.

The checker understands the part of OpenAPI 3.0 the subset uses: ``type``,
``properties``, ``required``, ``items``, ``enum``, ``format`` (date-time, date, email,
int64), ``pattern``, length and range bounds, ``maxItems``. Objects are closed: a
property the document does not name is a violation (a misspelt request field is ignored
by Zoom in silence, which is exactly the bug this should catch). Where Zoom's document is
wrong or incomplete, the fix is a named entry in :data:`TOLERANCES`, applied to the
loaded schemas, never a silent loosening.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

SUBSET_PATH = Path(__file__).parent / "data" / "zoom-openapi-subset.json"

# (method, path) of every operation the Zoom client calls.
OPERATIONS: tuple[tuple[str, str], ...] = (
    ("post", "/users"),
    ("get", "/users/{userId}"),
    ("patch", "/users/{userId}"),
    ("get", "/users/{userId}/token"),
    ("post", "/users/{userId}/meetings"),
    ("get", "/users/{userId}/meetings"),
    ("get", "/meetings/{meetingId}"),
    ("patch", "/meetings/{meetingId}"),
    ("delete", "/meetings/{meetingId}"),
    ("get", "/tracking_fields"),
    ("post", "/groups/{groupId}/members"),
    ("get", "/meetings/{meetingId}/recordings"),
    ("delete", "/meetings/{meetingId}/recordings"),
    ("get", "/users/{userId}/recordings"),
    ("get", "/report/meetings/{meetingId}/participants"),
    ("get", "/past_meetings/{meetingId}/instances"),
    ("get", "/accounts/{accountId}/managed_domains"),
)

SOURCE = {
    "title": "Zoom Meeting API",
    "version": "2",
    "published": "October 2023, by Zoom",
    "found_in": "public repository shr968/Prokalp, file ZoomMeetingAPISpec.json",
    "copied_from": "shared/reference/zoom-meeting-api-spec.json",
    "cut_by": "ltipro.testing.zoom_openapi.build_subset",
    "changes": (
        "only the operations the ltipro Zoom client calls; descriptions, examples, "
        "summaries of fields and vendor extensions removed; error codes listed in each "
        "error response's description kept as x-error-codes"
    ),
}

# Every gap between Zoom's document and Zoom's API that the checker tolerates, by name.
TOLERANCES: dict[str, str] = {
    "create-meeting-response-fields": (
        "The create-meeting (201) response schema omits uuid, host_id and status, which "
        "real responses carry; they are checked against the get-meeting schema instead."
    ),
    "retired-user-type-3": (
        "User type 3 (On-prem) is retired and missing from the enums, but accounts that "
        "still have it report and accept it; 3 is allowed wherever a user type is."
    ),
    "weekly-days-list": (
        "recurrence.weekly_days is documented as taking comma-separated days ('1,3') "
        "but its enum lists single days only; a comma-separated list of 1-7 is allowed."
    ),
    "local-start-time": (
        "Request start_time may be a local time without an offset (yyyy-MM-ddTHH:mm:ss) "
        "interpreted in the request's timezone, as the field's description says."
    ),
    "parameter-style-casing": (
        "Parameter styles are spelt 'SIMPLE' and 'FORM' where OpenAPI says 'simple' and "
        "'form'; they are compared without case."
    ),
    "array-maximum": ("A 'maximum' on an array (group members: at most 30) means maxItems."),
    "common-errors": (
        "Errors every operation can answer but few document: 401 with code 124 (invalid "
        "or expired access token), 429 with code 429 (rate limits), 400 with code 300 "
        "(validation failed) and any 5xx."
    ),
}

ERROR_CODE = re.compile(r"Error Code:\*\*\s*`?(\d+)`?")
DROPPED_KEYS = {"description", "example", "examples", "extensions", "summary", "title"}


class SchemaViolation(AssertionError):
    """A request or response that does not match Zoom's document."""


# --------------------------------------------------------------------------- subset


def _strip(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: (_strip_properties(value) if key == "properties" else _strip(value))
            for key, value in node.items()
            if key not in DROPPED_KEYS
        }
    if isinstance(node, list):
        return [_strip(item) for item in node]
    return node


def _strip_properties(properties: Mapping[str, Any]) -> dict[str, Any]:
    # Under "properties" the keys are field names (a field may be called "description").
    return {name: _strip(schema) for name, schema in properties.items()}


def build_subset(document: Mapping[str, Any], *, digest: str | None = None) -> dict[str, Any]:
    """Cut the operations in :data:`OPERATIONS` out of Zoom's full OpenAPI document."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path in OPERATIONS:
        operation = document["paths"][path][method]
        responses: dict[str, Any] = {}
        for status, response in operation["responses"].items():
            kept: dict[str, Any] = {}
            codes = sorted(
                {int(code) for code in ERROR_CODE.findall(response.get("description", ""))}
            )
            if codes and not status.startswith("2"):
                kept["x-error-codes"] = codes
            if "content" in response:
                kept["content"] = _strip(response["content"])
            responses[status] = kept
        entry: dict[str, Any] = {"operationId": operation["operationId"]}
        if "parameters" in operation:
            entry["parameters"] = _strip(operation["parameters"])
        if "requestBody" in operation:
            entry["requestBody"] = _strip(operation["requestBody"])
        entry["responses"] = responses
        paths.setdefault(path, {})[method] = entry
    source = dict(SOURCE)
    if digest:
        source["sha256"] = digest
    return {
        "openapi": document["openapi"],
        "info": {"title": document["info"]["title"], "version": document["info"]["version"]},
        "x-source": source,
        "servers": document.get("servers", []),
        "paths": paths,
    }


def subset_from_file(reference: Path) -> dict[str, Any]:
    """The subset cut from a copy of Zoom's document on disk (with its SHA-256 recorded)."""
    raw = reference.read_bytes()
    return build_subset(json.loads(raw), digest=hashlib.sha256(raw).hexdigest())


def write_subset(reference: Path, target: Path = SUBSET_PATH) -> None:
    """Re-vendor the subset, e.g. after adding an operation to :data:`OPERATIONS`."""
    target.write_text(json.dumps(subset_from_file(reference), indent=1) + "\n")


@cache
def load_subset() -> dict[str, Any]:
    """The vendored subset, as shipped (no tolerances applied)."""
    loaded: dict[str, Any] = json.loads(SUBSET_PATH.read_text())
    return loaded


# --------------------------------------------------------------------------- tolerances


def _schema(document: dict[str, Any], path: str, method: str, where: str) -> dict[str, Any]:
    operation = document["paths"][path][method]
    if where == "request":
        found: dict[str, Any] = operation["requestBody"]["content"]["application/json"]["schema"]
    else:
        found = operation["responses"][where]["content"]["application/json"]["schema"]
    return found


def _walk(node: Any, visit: Callable[[dict[str, Any], str], None], name: str = "") -> None:
    if isinstance(node, dict):
        visit(node, name)
        for key, value in node.get("properties", {}).items():
            _walk(value, visit, key)
        if "items" in node:
            _walk(node["items"], visit, name)


def apply_tolerances(
    document: Mapping[str, Any], names: Iterable[str] = TOLERANCES
) -> dict[str, Any]:
    """A copy of the document with the named tolerances applied to its schemas."""
    doc = copy.deepcopy(dict(document))
    chosen = set(names)
    unknown = chosen - set(TOLERANCES)
    if unknown:
        raise ValueError(f"unknown tolerances: {sorted(unknown)}")

    if "create-meeting-response-fields" in chosen:
        created = _schema(doc, "/users/{userId}/meetings", "post", "201")
        fetched = _schema(doc, "/meetings/{meetingId}", "get", "200")
        for name in ("uuid", "host_id", "status"):
            created["properties"].setdefault(name, copy.deepcopy(fetched["properties"][name]))

    if "retired-user-type-3" in chosen:
        for schema in (
            _schema(doc, "/users", "post", "request")["properties"]["user_info"],
            _schema(doc, "/users", "post", "201"),
            _schema(doc, "/users/{userId}", "patch", "request"),
            _schema(doc, "/users/{userId}", "get", "200"),
        ):
            enum = schema["properties"]["type"]["enum"]
            if 3 not in enum:
                enum.insert(2, 3)

    if "weekly-days-list" in chosen:

        def weekly(node: dict[str, Any], name: str) -> None:
            if name == "weekly_days" and "enum" in node:
                del node["enum"]
                node["pattern"] = "^[1-7](,[1-7])*$"

        for path_item in doc["paths"].values():
            _walk_everything(path_item, weekly)

    if "local-start-time" in chosen:
        for path, method in (
            ("/users/{userId}/meetings", "post"),
            ("/meetings/{meetingId}", "patch"),
        ):
            _schema(doc, path, method, "request")["properties"]["start_time"]["format"] = (
                "x-local-or-offset-date-time"
            )

    if "parameter-style-casing" in chosen:
        for path_item in doc["paths"].values():
            for operation in path_item.values():
                for parameter in operation.get("parameters", []):
                    if "style" in parameter:
                        parameter["style"] = parameter["style"].lower()
                    parameter["in"] = parameter["in"].lower()

    if "array-maximum" in chosen:

        def array_maximum(node: dict[str, Any], name: str) -> None:
            if node.get("type") == "array" and "maximum" in node:
                node["maxItems"] = node.pop("maximum")

        for path_item in doc["paths"].values():
            _walk_everything(path_item, array_maximum)

    doc["x-tolerances"] = sorted(chosen)
    return doc


def _walk_everything(node: Any, visit: Callable[[dict[str, Any], str], None]) -> None:
    """Visit every schema below ``node`` (request bodies, responses, parameters)."""
    if isinstance(node, dict):
        if "schema" in node:
            _walk(node["schema"], visit, node.get("name", ""))
        for key, value in node.items():
            if key != "schema":
                _walk_everything(value, visit)
    elif isinstance(node, list):
        for item in node:
            _walk_everything(item, visit)


# --------------------------------------------------------------------------- validation

DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
LOCAL_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
INT64 = (-(2**63), 2**63 - 1)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _has_type(value: Any, expected: str) -> bool:
    actual = _type_name(value)
    if expected == "number":
        return actual in ("integer", "number")
    return actual == expected


def _check_format(fmt: str, value: str) -> bool:
    if fmt in ("date-time", "x-local-or-offset-date-time"):
        pattern = DATE_TIME if fmt == "date-time" else LOCAL_DATE_TIME
        if not pattern.match(value):
            return False
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return False
        return True
    if fmt == "date":
        try:
            date.fromisoformat(value)
        except ValueError:
            return False
        return len(value) == 10
    if fmt == "email":
        return bool(EMAIL.match(value))
    return True  # "password" and other informational formats


def validate(schema: Mapping[str, Any], value: Any, where: str = "body") -> list[str]:
    """Every way ``value`` breaks ``schema``, as ``"where: what"`` lines (empty when valid)."""
    problems: list[str] = []
    expected = schema.get("type")
    if value is None:
        if not schema.get("nullable"):
            problems.append(f"{where}: null where {expected or 'a value'} is expected")
        return problems
    if expected and not _has_type(value, expected):
        problems.append(f"{where}: expected {expected}, got {_type_name(value)} {value!r:.60}")
        return problems
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, str):
        if "format" in schema and not _check_format(schema["format"], value):
            problems.append(f"{where}: {value!r} is not a valid {schema['format']}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            problems.append(f"{where}: {value!r} does not match {schema['pattern']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            problems.append(f"{where}: longer than {schema['maxLength']} characters")
        if "minLength" in schema and len(value) < schema["minLength"]:
            problems.append(f"{where}: shorter than {schema['minLength']} characters")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "maximum" in schema and value > schema["maximum"]:
            problems.append(f"{where}: {value} is above the maximum {schema['maximum']}")
        if "minimum" in schema and value < schema["minimum"]:
            problems.append(f"{where}: {value} is below the minimum {schema['minimum']}")
        if schema.get("format") == "int64" and not INT64[0] <= value <= INT64[1]:
            problems.append(f"{where}: {value} does not fit in int64")
    if isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            problems.append(f"{where}: more than {schema['maxItems']} items")
        if "items" in schema:
            for index, item in enumerate(value):
                problems.extend(validate(schema["items"], item, f"{where}[{index}]"))
    if isinstance(value, dict):
        properties: Mapping[str, Any] = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                problems.append(f"{where}.{name}: required property missing")
        additional = schema.get("additionalProperties", False)
        for name, item in value.items():
            if name in properties:
                problems.extend(validate(properties[name], item, f"{where}.{name}"))
            elif isinstance(additional, dict):
                problems.extend(validate(additional, item, f"{where}.{name}"))
            elif additional is not True and properties:
                problems.append(f"{where}.{name}: property not in Zoom's document")
    return problems


# --------------------------------------------------------------------------- operations


@dataclass(frozen=True)
class Parameter:
    name: str
    location: str  # "path" or "query"
    required: bool
    schema: Mapping[str, Any]


@dataclass(frozen=True)
class Operation:
    """One documented operation, e.g. ``PATCH /meetings/{meetingId}`` (``meetingUpdate``)."""

    method: str
    template: str
    operation_id: str
    parameters: tuple[Parameter, ...]
    request_schema: Mapping[str, Any] | None
    request_required: bool
    responses: Mapping[str, Mapping[str, Any]]

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(self.template.strip("/").split("/"))

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.template}"


@dataclass
class CheckedRequest:
    """What the checker made of a request: the operation, typed parameters, problems."""

    operation: Operation | None
    path_params: dict[str, Any] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    violations: list[str] = field(default_factory=list)


def _coerce(raw: str, schema: Mapping[str, Any]) -> Any:
    """A path or query string in the type its schema names (ValueError when it is not)."""
    kind = schema.get("type", "string")
    if kind == "integer":
        if not re.fullmatch(r"-?\d+", raw):
            raise ValueError(raw)
        return int(raw)
    if kind == "number":
        return float(raw)
    if kind == "boolean":
        if raw not in ("true", "false"):
            raise ValueError(raw)
        return raw == "true"
    return raw


PARAMETER_LOCATIONS = {"path", "query", "header", "cookie"}
PARAMETER_STYLES = {
    "matrix",
    "label",
    "form",
    "simple",
    "spaceDelimited",
    "pipeDelimited",
    "deepObject",
}


# Only meeting UUIDs hold "/" (they are base64); other parameters take one segment.
SPANNING_PARAMETERS = {"meetingId", "meetingUUID"}


def _bind(template: tuple[str, ...], segments: tuple[str, ...]) -> dict[str, str] | None:
    """Path parameters when ``segments`` fit ``template`` (parameters as short as possible)."""
    if not template:
        return {} if not segments else None
    head, rest = template[0], template[1:]
    if head.startswith("{") and head.endswith("}"):
        longest = len(segments) - len(rest) if head[1:-1] in SPANNING_PARAMETERS else 1
        for take in range(1, longest + 1):
            part = segments[:take]
            if "" in part:
                break
            bound = _bind(rest, segments[take:])
            if bound is not None:
                return {head[1:-1]: "/".join(part), **bound}
        return None
    if segments and segments[0] == head:
        return _bind(rest, segments[1:])
    return None


class ZoomApiChecker:
    """Checks requests and responses against (a subset of) Zoom's OpenAPI document.

    The document itself is checked first: a parameter whose ``in`` or ``style`` OpenAPI
    does not define is an error, as in strict validators (hence the tolerance
    ``parameter-style-casing``).
    """

    def __init__(
        self,
        document: Mapping[str, Any] | None = None,
        tolerances: Iterable[str] = tuple(TOLERANCES),
    ) -> None:
        self.tolerances = frozenset(tolerances)
        self.document = apply_tolerances(document or load_subset(), self.tolerances)
        self.operations: list[Operation] = []
        for template, item in self.document["paths"].items():
            for method, spec in item.items():
                for parameter in spec.get("parameters", []):
                    if (
                        parameter["in"] not in PARAMETER_LOCATIONS
                        or parameter.get("style", "simple") not in PARAMETER_STYLES
                    ):
                        raise ValueError(
                            f"{method.upper()} {template} parameter {parameter['name']}: "
                            f"in={parameter['in']!r} style={parameter.get('style')!r} are not OpenAPI values"
                        )
                body = spec.get("requestBody")
                self.operations.append(
                    Operation(
                        method=method,
                        template=template,
                        operation_id=spec["operationId"],
                        parameters=tuple(
                            Parameter(
                                p["name"], p["in"], bool(p.get("required")), p.get("schema", {})
                            )
                            for p in spec.get("parameters", [])
                        ),
                        request_schema=(
                            body["content"]["application/json"]["schema"] if body else None
                        ),
                        request_required=bool(body and body.get("required")),
                        responses=spec["responses"],
                    )
                )

    def operation(self, operation_id: str) -> Operation:
        """The operation with this ``operationId`` (KeyError when the subset lacks it)."""
        for operation in self.operations:
            if operation.operation_id == operation_id:
                return operation
        raise KeyError(operation_id)

    def match(
        self, method: str, segments: Sequence[str]
    ) -> tuple[Operation | None, dict[str, str], str]:
        """The operation a path (split into decoded segments) and method select.

        Literal segments win over parameters, as in Zoom's router (``/users/email`` is not
        ``/users/{userId}``). A parameter takes one segment, or several when that is the
        only way the rest of the path fits: Zoom accepts a meeting UUID with one ``/``
        encoded once, so its router lets a parameter span a decoded slash. Returns the
        operation, the raw path parameters, and the reason when nothing matches
        ("unknown path" or "method not allowed").
        """
        method = method.lower()
        candidates: list[tuple[int, Operation, dict[str, str]]] = []
        for operation in self.operations:
            params = _bind(operation.segments, tuple(segments))
            if params is not None:
                literal = sum(1 for part in operation.segments if not part.startswith("{"))
                candidates.append((literal, operation, params))
        if not candidates:
            return None, {}, "unknown path"
        best = max(literal for literal, _, _ in candidates)
        for literal, operation, params in candidates:
            if literal == best and operation.method == method:
                return operation, params, ""
        return None, {}, "method not allowed"

    def check_request(
        self,
        method: str,
        segments: Sequence[str],
        query: Sequence[tuple[str, str]],
        body: bytes,
        content_type: str | None,
    ) -> CheckedRequest:
        """Match a request to its operation and list everything wrong with it."""
        operation, raw_params, reason = self.match(method, segments)
        shown = f"{method.upper()} /{'/'.join(segments)}"
        if operation is None:
            return CheckedRequest(None, violations=[f"{shown}: {reason} in Zoom's document"])
        checked = CheckedRequest(operation)
        problems = checked.violations
        declared = {(p.location, p.name): p for p in operation.parameters}
        for name, raw in raw_params.items():
            parameter = declared.get(("path", name))
            schema = parameter.schema if parameter else {"type": "string"}
            try:
                checked.path_params[name] = _coerce(raw, schema)
            except ValueError:
                problems.append(f"{operation} path {name}: {raw!r} is not a {schema.get('type')}")
                continue
            problems.extend(validate(schema, checked.path_params[name], f"path {name}"))
        seen: set[str] = set()
        for name, raw in query:
            parameter = declared.get(("query", name))
            if parameter is None:
                problems.append(f"{operation} query {name}: parameter not in Zoom's document")
                continue
            if name in seen:
                problems.append(f"{operation} query {name}: given more than once")
            seen.add(name)
            try:
                value = _coerce(raw, parameter.schema)
            except ValueError:
                problems.append(
                    f"{operation} query {name}: {raw!r} is not a {parameter.schema.get('type')}"
                )
                continue
            checked.query[name] = value
            problems.extend(validate(parameter.schema, value, f"query {name}"))
        for parameter in operation.parameters:
            if parameter.required and parameter.location == "query" and parameter.name not in seen:
                problems.append(f"{operation} query {parameter.name}: required parameter missing")
        if operation.request_schema is None:
            if body.strip():
                problems.append(f"{operation}: a body where Zoom's document has none")
            return checked
        if not body.strip():
            if operation.request_required:
                problems.append(f"{operation}: the JSON body is missing")
            return checked
        if (content_type or "").split(";")[0].strip().lower() != "application/json":
            problems.append(f"{operation}: body sent as {content_type!r}, not application/json")
        try:
            checked.body = json.loads(body)
        except ValueError:
            problems.append(f"{operation}: the body is not JSON")
            return checked
        problems.extend(
            f"{operation} request {line}"
            for line in validate(operation.request_schema, checked.body)
        )
        return checked

    def check_response(
        self, operation: Operation, status: int, body: bytes, content_type: str | None
    ) -> list[str]:
        """Everything wrong with a response the double is about to send for ``operation``."""
        problems: list[str] = []
        documented = operation.responses.get(str(status))
        if status >= 400:
            return self._check_error(operation, status, body, documented)
        if documented is None:
            return [f"{operation}: status {status} is not documented"]
        schema = documented.get("content", {}).get("application/json", {}).get("schema")
        if schema is None:
            if body:
                problems.append(f"{operation} {status}: a body where Zoom's document has none")
            return problems
        if (content_type or "").split(";")[0].strip() != "application/json":
            problems.append(f"{operation} {status}: content type {content_type!r}")
        try:
            payload = json.loads(body)
        except ValueError:
            return [*problems, f"{operation} {status}: the body is not JSON"]
        problems.extend(
            f"{operation} {status} response {line}" for line in validate(schema, payload)
        )
        return problems

    def _check_error(
        self, operation: Operation, status: int, body: bytes, documented: Mapping[str, Any] | None
    ) -> list[str]:
        if status >= 500 and "common-errors" in self.tolerances:
            return []  # gateways answer these with whatever body they have
        try:
            payload = json.loads(body)
        except ValueError:
            return [f"{operation} {status}: an error body that is not JSON"]
        shape = {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "integer"},
                "message": {"type": "string"},
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                    },
                },
            },
        }
        problems = [f"{operation} {status} error {line}" for line in validate(shape, payload)]
        if problems:
            return problems
        code = payload["code"]
        common = {(401, 124), (429, 429), (400, 300)}
        if (status, code) in common and "common-errors" in self.tolerances:
            return []
        if documented is None:
            return [f"{operation}: error status {status} (code {code}) is not documented"]
        codes = documented.get("x-error-codes")
        if codes and code not in codes:
            return [
                f"{operation} {status}: error code {code} is not documented (documented: {codes})"
            ]
        return []
