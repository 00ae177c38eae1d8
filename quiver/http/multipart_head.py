"""The head of a GraphQL multipart request, read before any file part.

The GraphQL multipart request spec puts the ``operations`` and ``map`` fields before the
files. They are read first (capped like any GraphQL body), so that the operation can say
where the files would go before a byte of them is spooled: a caller who may not write
there is answered without the files being read at all.
"""

from __future__ import annotations

import io
import json
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    ObjectValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    StringValueNode,
    ValueNode,
    VariableNode,
    get_named_type,
    parse,
)
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.datastructures import Headers, UploadFile
from starlette.types import Message, Receive, Scope

from quiver.http.body_limits import BodyTooLarge, header
from quiver.resolvers.errors import Refused

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

HEAD_FIELDS = ("operations", "map")


class UnreadableMultipart(Exception):
    """A multipart body whose head is not what the spec says: 400."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class MultipartHead:
    """``operations`` and ``map`` as sent, and the messages received to find them."""

    fields: dict[str, bytearray] = field(default_factory=dict)
    received: list[Message] = field(default_factory=list)
    bytes_read: int = 0

    @property
    def operations(self) -> Any:
        return _json_object(self.fields.get("operations"), "operations")

    @property
    def files_map(self) -> dict[str, Any]:
        parsed = _json_object(self.fields.get("map"), "map")
        assert isinstance(parsed, dict)
        return parsed

    def replay(self, receive: Receive) -> Receive:
        """``receive`` that hands out what was read for the head again, then the rest."""
        pending = deque(self.received)

        async def replaying() -> Message:
            if pending:
                return pending.popleft()
            return await receive()

        return replaying


class _HeadReader:
    """Parser callbacks that keep the head fields and notice the first other part."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.fields: dict[str, bytearray] = {}
        self.current: str | None = None
        self.header_field = bytearray()
        self.header_value = bytearray()
        self.disposition: dict[bytes, bytes] = {}
        self.ended: set[str] = set()
        self.other_part = False
        self.too_large = False

    @property
    def done(self) -> bool:
        return self.other_part or self.ended.issuperset(HEAD_FIELDS)

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.part_begin,
            "on_header_field": self.header_field_data,
            "on_header_value": self.header_value_data,
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished,
            "on_part_data": self.part_data,
            "on_part_end": self.part_end,
        }

    def part_begin(self) -> None:
        self.current = None
        self.disposition = {}

    def header_field_data(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def header_value_data(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def header_end(self) -> None:
        if bytes(self.header_field).lower() == b"content-disposition":
            _, self.disposition = parse_options_header(bytes(self.header_value))
        self.header_field.clear()
        self.header_value.clear()

    def headers_finished(self) -> None:
        if self.done:
            return
        name = self.disposition.get(b"name", b"").decode("latin-1")
        if name in HEAD_FIELDS and b"filename" not in self.disposition:
            self.current = name
            self.fields[name] = bytearray()
        else:
            self.other_part = True

    def part_end(self) -> None:
        if self.current is not None:
            self.ended.add(self.current)
        self.current = None

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self.current is None:
            return
        value = self.fields[self.current]
        value += data[start:end]
        if sum(len(found) for found in self.fields.values()) > self.limit:
            self.too_large = True


async def read_head(scope: Scope, receive: Receive, limit: int) -> MultipartHead:
    """Receive a multipart body up to the end of its ``operations`` and ``map`` fields (or
    the first other part), at most ``limit`` bytes of them plus one message."""
    boundary = _boundary(scope)
    reader = _HeadReader(limit)
    parser = MultipartParser(boundary, reader.callbacks())
    head = MultipartHead()
    while not reader.done:
        message = await receive()
        head.received.append(message)
        if message["type"] != "http.request":
            break
        body: bytes = message.get("body", b"")
        head.bytes_read += len(body)
        parser.write(body)
        if reader.too_large or (not reader.done and head.bytes_read > limit):
            raise BodyTooLarge(limit)
        if not message.get("more_body", False):
            break
    missing = [name for name in HEAD_FIELDS if name not in reader.ended]
    if missing:
        raise UnreadableMultipart(
            "A GraphQL multipart request starts with its operations and map fields, "
            f"before any file; {' and '.join(missing)} did not come first"
        )
    head.fields = reader.fields
    return head


def _boundary(scope: Scope) -> bytes:
    content_type = header(scope, b"content-type") or ""
    _, options = parse_options_header(content_type.encode("latin-1"))
    boundary = options.get(b"boundary")
    if not boundary:
        raise UnreadableMultipart("The multipart Content-Type names no boundary")
    return boundary


def _json_object(raw: bytearray | None, name: str) -> Any:
    try:
        parsed = json.loads(bytes(raw or b"{}"))
    except (ValueError, RecursionError):
        raise UnreadableMultipart(f"The {name} field is not JSON") from None
    if not isinstance(parsed, dict):
        raise UnreadableMultipart(f"The {name} field must be a JSON object")
    return parsed


def upload_mutations(schema: GraphQLSchema) -> frozenset[str]:
    """Mutations whose ``input`` carries an ``Upload`` and names a ``datasetId``."""
    mutation = schema.mutation_type
    found: set[str] = set()
    for name, definition in (mutation.fields if mutation is not None else {}).items():
        argument = definition.args.get("input")
        input_type = get_named_type(argument.type) if argument is not None else None
        if not isinstance(input_type, GraphQLInputObjectType):
            continue
        fields = input_type.fields
        carries_upload = any(
            get_named_type(value.type).name == "Upload" for value in fields.values()
        )
        if carries_upload and "datasetId" in fields:
            found.add(name)
    return frozenset(found)


def upload_targets(operations: Mapping[str, Any], mutations: frozenset[str]) -> list[str] | None:
    """The ``datasetId`` of every upload mutation the request's operation runs; None when
    that cannot be told (no such mutation, an unparsable document, an id that is no string)."""
    query = operations.get("query")
    variables = operations.get("variables") or {}
    if not isinstance(query, str) or not isinstance(variables, dict):
        return None
    try:
        document = parse(query)
    except (GraphQLError, RecursionError):
        return None
    operation = _operation(document, operations.get("operationName"))
    if operation is None or operation.operation != OperationType.MUTATION:
        return None
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    targets: list[str] = []
    for node in _fields(operation.selection_set, fragments, set()):
        if node.name.value not in mutations:
            continue
        target = _dataset_id(node, variables)
        if target is None:
            return None
        targets.append(target)
    return targets or None


def _operation(document: DocumentNode, name: object) -> OperationDefinitionNode | None:
    operations = [
        definition
        for definition in document.definitions
        if isinstance(definition, OperationDefinitionNode)
    ]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    named = [found for found in operations if found.name and found.name.value == name]
    return named[0] if len(named) == 1 else None


def _fields(
    selections: SelectionSetNode,
    fragments: dict[str, FragmentDefinitionNode],
    seen: set[str],
) -> Iterator[FieldNode]:
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _fields(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in fragments and name not in seen:
                seen.add(name)
                yield from _fields(fragments[name].selection_set, fragments, seen)


def _dataset_id(node: FieldNode, variables: dict[str, Any]) -> str | None:
    argument = next((arg for arg in node.arguments or () if arg.name.value == "input"), None)
    if argument is None:
        return None
    value: Any = _value(argument.value, variables)
    if isinstance(value, ObjectValueNode):
        inner = next((item for item in value.fields if item.name.value == "datasetId"), None)
        value = _value(inner.value, variables) if inner is not None else None
    elif isinstance(value, dict):
        value = value.get("datasetId")
    return value if isinstance(value, str) else None


def _value(node: ValueNode, variables: dict[str, Any]) -> Any:
    if isinstance(node, VariableNode):
        return variables.get(node.name.value)
    if isinstance(node, StringValueNode):
        return node.value
    return node


class _WithheldFile(io.RawIOBase):
    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        raise _withheld()


def _withheld() -> Refused:
    return Refused.forbidden(
        None,
        "This request's files were not read: it uploads to a dataset you cannot write to",
    )


class WithheldUpload(UploadFile):
    """Stands for a file part that was never read; reading it is refused."""

    def __init__(self, key: str) -> None:
        super().__init__(cast(BinaryIO, _WithheldFile()), filename=key, headers=Headers())

    async def read(self, size: int = -1) -> bytes:
        raise _withheld()

    async def seek(self, offset: int) -> None:
        raise _withheld()
