"""TFLite files checked before any interpreter reads them: a structural flatbuffer verifier.

LiteRT's and LCE's interpreters map a ``.tflite`` and follow its offsets without checking them:
a file cut short or with a few bytes flipped makes them read outside it (a segfault), or run a
graph whose indices point nowhere. :func:`verify` does in Python what flatbuffers' C++
``Verifier`` does for the TFLite schema (:mod:`.tflite_schema`), then what the interpreter
trusts the file for:

* structure: the root offset and ``TFL3`` identifier, every table (its vtable, its inline
  data), every offset (non-zero, forward, inside the file), every vector and string (its
  length fits, a string ends with its terminating zero), unions by their type, at most 64
  tables deep and one million tables in all;
* the graph: each operator's code index, every tensor index of operators and subgraphs, each
  tensor's buffer index, a constant buffer's size against its tensor's shape and type, data
  stored after the flatbuffer (``Buffer.offset``/``size``) inside the file, and custom
  options that are flexbuffers (LCE's ops) decodable.

Only the standard library is needed (flexbuffers are decoded with the ``flatbuffers`` package
when it is installed): this folder is also copied into deploy bundles. A damaged file is a
:class:`FlatbufferError` naming the first thing wrong; its bytes are never handed on.
"""

from __future__ import annotations

import struct
from math import prod
from typing import Iterator, Optional

from .tflite_schema import TABLES, UNIONS

__all__ = ["FlatbufferError", "verify", "MAX_DEPTH", "MAX_TABLES"]

MAX_DEPTH = 64
MAX_TABLES = 1_000_000
_MAX_SIZE = (1 << 31) - 1  # a flatbuffer's offsets are 32-bit; data past it goes in Buffer.offset/size
_IDENTIFIER = b"TFL3"
# Bytes per element of TensorType values with a fixed size (schema.fbs: FLOAT32 = 0, FLOAT16, INT32, UINT8,
# INT64, STRING, BOOL, INT16, COMPLEX64, INT8, FLOAT64, COMPLEX128, UINT64, RESOURCE, VARIANT, UINT32, UINT16,
# INT4, BFLOAT16); STRING, RESOURCE, VARIANT and packed INT4 have no fixed size and are not checked.
_ITEM_SIZE = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 6: 1, 7: 2, 8: 8, 9: 1, 10: 8, 11: 16, 12: 8, 15: 4, 16: 2, 18: 2}
_FLEXBUFFERS = 0  # Operator.custom_options_format


class FlatbufferError(ValueError):
    """A file that is not a well-formed TFLite flatbuffer; the message says where and what."""


class _Reader:
    """Checked reads of a flatbuffer: every access is bounds-checked first."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.n, self.what = data, len(data), what

    def fail(self, where: str, why: str) -> None:
        raise FlatbufferError(f"{self.what} is not a TFLite flatbuffer an interpreter can read safely ({where}: "
                              f"{why}): it is damaged or cut short; export it again (bnnzoo convert) or copy it "
                              "again")

    def u8(self, pos: int) -> int:
        return self.data[pos]

    def u16(self, pos: int) -> int:
        return struct.unpack_from("<H", self.data, pos)[0]

    def i32(self, pos: int) -> int:
        return struct.unpack_from("<i", self.data, pos)[0]

    def u32(self, pos: int) -> int:
        return struct.unpack_from("<I", self.data, pos)[0]

    def scalar(self, pos: int, size: int) -> int:
        return int.from_bytes(self.data[pos:pos + size], "little")

    def table(self, pos: int, where: str) -> tuple[int, int, int]:
        """``(pos, vtable, vtable size)`` of a table, its header and inline data checked."""
        if pos % 4 or pos + 4 > self.n:
            self.fail(where, f"table at byte {pos} is misaligned or past the end")
        vtable = pos - self.i32(pos)
        if vtable < 0 or vtable % 2 or vtable + 4 > self.n:
            self.fail(where, f"vtable at byte {vtable} is outside the file")
        vsize, tsize = self.u16(vtable), self.u16(vtable + 2)
        if vsize < 4 or vsize % 2 or vtable + vsize > self.n:
            self.fail(where, f"vtable of {vsize} bytes does not fit")
        if tsize < 4 or pos + tsize > self.n:
            self.fail(where, f"table of {tsize} bytes does not fit")
        return pos, vtable, vsize

    def field(self, table: tuple[int, int, int], slot: int) -> int:
        """The position of field ``slot`` of a checked table, 0 when absent."""
        pos, vtable, vsize = table
        entry = 4 + 2 * slot
        if entry + 2 > vsize:
            return 0
        offset = self.u16(vtable + entry)
        return pos + offset if offset else 0

    def inline(self, at: int, size: int, where: str) -> None:
        if at % min(size, 8) or at + size > self.n:
            self.fail(where, f"{size}-byte field at byte {at} is misaligned or past the end")

    def offset(self, at: int, where: str) -> int:
        """The target of the offset stored at ``at``."""
        self.inline(at, 4, where)
        target = at + self.u32(at)
        if target == at or self.u32(at) > _MAX_SIZE or target >= self.n:
            self.fail(where, f"offset at byte {at} points outside the file")
        return target

    def vector(self, at: int, item: int, where: str) -> tuple[int, int]:
        """``(first element, length)`` of a vector whose length is at ``at``."""
        if at % 4 or at + 4 > self.n:
            self.fail(where, f"vector at byte {at} is misaligned or past the end")
        length = self.u32(at)
        if length > (self.n - at - 4) // max(item, 1):
            self.fail(where, f"vector of {length} elements runs past the end")
        return at + 4, length

    def string(self, at: int, where: str) -> None:
        start, length = self.vector(at, 1, where)
        if start + length >= self.n or self.data[start + length] != 0:
            self.fail(where, "string is not terminated inside the file")


def _fields(name: str) -> tuple:
    return TABLES.get(name, ())


def _walk(r: _Reader) -> None:
    """Checks every table reachable from the root, depth-first, as flatbuffers' C++ verifier does."""
    if r.n < 8 or r.n > _MAX_SIZE:
        r.fail("file", f"{r.n} bytes is not the size of a flatbuffer")
    if r.data[4:8] != _IDENTIFIER:
        r.fail("file", f"no {_IDENTIFIER.decode()} identifier (bytes 4-8 are {bytes(r.data[4:8])!r})")
    stack = [(r.offset(0, "root offset"), "Model", 1, "Model")]
    tables = 0
    while stack:
        pos, name, depth, where = stack.pop()
        tables += 1
        if depth > MAX_DEPTH or tables > MAX_TABLES:
            r.fail(where, f"more than {MAX_DEPTH} tables deep or {MAX_TABLES} tables")
        table = r.table(pos, where)
        types = {}
        for slot, field, kind, arg in _fields(name):
            at = r.field(table, slot)
            here = f"{where}.{field}"
            if kind == "s":
                if at:
                    r.inline(at, arg, here)
                    types[field] = r.scalar(at, arg)
                continue
            if not at:
                continue
            target = r.offset(at, here)
            if kind == "str":
                r.string(target, here)
            elif kind == "t":
                stack.append((target, arg, depth + 1, here))
            elif kind == "u":
                member = UNIONS[arg].get(types.get(f"{field}Type", 0))
                if member is not None:  # NONE, or a type newer than this schema: not read by the runtime either
                    stack.append((target, member, depth + 1, f"{here}<{member}>"))
            elif kind == "v":
                r.vector(target, arg, here)
            else:  # vs, vt: vectors of offsets
                start, length = r.vector(target, 4, here)
                for i in range(length):
                    element = r.offset(start + 4 * i, f"{here}[{i}]")
                    if kind == "vs":
                        r.string(element, f"{here}[{i}]")
                    else:
                        stack.append((element, arg, depth + 1, f"{here}[{i}]"))


class _Table:
    """Field access to a table :func:`_walk` has checked."""

    def __init__(self, r: _Reader, pos: int, name: str) -> None:
        self.r, self.name = r, name
        self.t = r.table(pos, name)
        self.spec = {field: (slot, kind, arg) for slot, field, kind, arg in _fields(name)}

    def _at(self, field: str) -> int:
        return self.r.field(self.t, self.spec[field][0]) if field in self.spec else 0

    def scalar(self, field: str, default: int = 0) -> int:
        at = self._at(field)
        return self.r.scalar(at, self.spec[field][2]) if at else default

    def ints(self, field: str) -> list[int]:
        """A vector of int32 (tensor indices, shapes)."""
        at = self._at(field)
        if not at:
            return []
        start, length = self.r.vector(self.r.offset(at, field), 4, field)
        return list(struct.unpack_from(f"<{length}i", self.r.data, start))

    def span(self, field: str) -> tuple[int, int]:
        """``(start, bytes)`` of a vector of bytes."""
        at = self._at(field)
        return self.r.vector(self.r.offset(at, field), 1, field) if at else (0, 0)

    def tables(self, field: str) -> Iterator["_Table"]:
        at = self._at(field)
        if not at:
            return
        start, length = self.r.vector(self.r.offset(at, field), 4, field)
        for i in range(length):
            yield _Table(self.r, self.r.offset(start + 4 * i, field), self.spec[field][2])


def _check_graph(r: _Reader) -> None:
    """What the interpreter trusts the file for: indices in range, constant data of the right size."""
    model = _Table(r, r.offset(0, "root"), "Model")
    codes = sum(1 for _ in model.tables("OperatorCodes"))
    buffers = list(model.tables("Buffers"))
    for b, buffer in enumerate(buffers):
        offset, size = buffer.scalar("Offset"), buffer.scalar("Size")
        if offset > 1 and offset + size > r.n:
            r.fail(f"Model.Buffers[{b}]", f"{size} bytes at byte {offset} lie past the end of the file")
    for g, graph in enumerate(model.tables("Subgraphs")):
        where = f"Model.Subgraphs[{g}]"
        tensors = list(graph.tables("Tensors"))
        n = len(tensors)
        for field in ("Inputs", "Outputs"):
            bad = [i for i in graph.ints(field) if not 0 <= i < n]
            if bad:
                r.fail(f"{where}.{field}", f"tensor {bad[0]} of {n}")
        for t, tensor in enumerate(tensors):
            index = tensor.scalar("Buffer")
            if index >= len(buffers):
                r.fail(f"{where}.Tensors[{t}].Buffer", f"buffer {index} of {len(buffers)}")
            start, size = buffers[index].span("Data")
            item = _ITEM_SIZE.get(tensor.scalar("Type"))
            shape = tensor.ints("Shape")
            if size and item and tensor.scalar("IsVariable") == 0 and not tensor._at("Sparsity") \
                    and all(d >= 0 for d in shape) and prod(shape) * item != size:
                r.fail(f"{where}.Tensors[{t}]", f"{size} bytes of data for shape {shape} of {item}-byte elements")
        for o, op in enumerate(graph.tables("Operators")):
            if not 0 <= op.scalar("OpcodeIndex") < codes:
                r.fail(f"{where}.Operators[{o}].OpcodeIndex", f"{op.scalar('OpcodeIndex')} of {codes} codes")
            for field in ("Inputs", "Outputs", "Intermediates"):
                bad = [i for i in op.ints(field) if not -1 <= i < n]
                if bad:
                    r.fail(f"{where}.Operators[{o}].{field}", f"tensor {bad[0]} of {n}")
            start, size = op.span("CustomOptions")
            if size and op.scalar("CustomOptionsFormat") == _FLEXBUFFERS:
                problem = _flexbuffer_problem(bytes(r.data[start:start + size]))
                if problem:
                    r.fail(f"{where}.Operators[{o}].CustomOptions", problem)


def _flexbuffer_problem(data: bytes) -> Optional[str]:
    """Why ``data`` is not a decodable flexbuffer (None: it is, or the decoder is not installed)."""
    try:
        from flatbuffers import flexbuffers
    except ImportError:
        return None
    try:
        flexbuffers.Loads(data)
    except Exception as e:  # noqa: BLE001  the decoder raises anything on garbage
        return f"options are not a flexbuffer ({type(e).__name__})"
    return None


def verify(data: bytes, what: str = "the file") -> None:
    """Checks a TFLite flatbuffer before an interpreter is given it (see the module docstring).

    Args:
        data: The file's bytes.
        what: The file, for the message (its path).

    Raises:
        FlatbufferError: One line naming the first table, field or index that is wrong.
    """
    r = _Reader(data if isinstance(data, bytes) else bytes(data), what)
    try:
        _walk(r)
        _check_graph(r)
    except (struct.error, IndexError, RecursionError) as e:  # a check missed above: still no crash
        r.fail("file", f"{type(e).__name__}: {e}")
