"""LCE flatbuffers in the plain LiteRT interpreter, through bnnzoo's own kernels.

``ai-edge-litert`` (pip-installable on x86-64 and aarch64) runs every builtin op of an
LCE TFLite file; LCE's four custom ops (``LceQuantize``, ``LceDequantize``,
``LceBconv2d``, ``LceBMaxPool2d``) run in this folder's C library (``bnn.h`` lists its
files), loaded as a TFLite delegate (``load_delegate``): each of those nodes becomes
one delegate kernel. The library is compiled on first use (see ``toolchain.py``).

Before any interpreter is built, every custom op of the file and every option of it is
checked by the library's own option parser: an op or option it does not implement is a
one-line :class:`UnsupportedModelError`, never a wrong result.

Example::

    from converters.litert import Interpreter
    logits = Interpreter("meliusnet22.tflite", num_threads=4).predict(x_nhwc)
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from .flatbuffer import FlatbufferError, verify
from .toolchain import BuildError, build

__all__ = ["Interpreter", "UnsupportedModelError", "BuildError", "LCE_OPS", "check_model", "custom_ops",
           "library", "library_file", "code_path", "with_outputs", "has_int8", "graph_outputs"]

LCE_OPS = ("LceQuantize", "LceDequantize", "LceBconv2d", "LceBMaxPool2d")

_LIB: Optional[ctypes.CDLL] = None


class UnsupportedModelError(ValueError):
    """The flatbuffer holds an op or op option bnnzoo's kernels do not implement."""


def library() -> ctypes.CDLL:
    """The kernel library (built on first use), loaded once per process."""
    global _LIB
    if _LIB is None:
        lib = ctypes.CDLL(str(library_file()))
        lib.bnn_check_op.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
        lib.bnn_check_op.restype = ctypes.c_int
        lib.bnn_last_error.restype = ctypes.c_char_p
        lib.bnn_path.restype = ctypes.c_char_p
        lib.bnn_select_path.argtypes = [ctypes.c_char_p]
        _LIB = lib
    return _LIB


def library_file() -> Path:
    """``$BNNZOO_LITERT_LIB`` (a prebuilt library, e.g. cross-compiled for a board without a
    compiler), else the library built from this folder's sources (cached)."""
    prebuilt = os.environ.get("BNNZOO_LITERT_LIB")
    if prebuilt:
        if not Path(prebuilt).is_file():
            raise BuildError(f"BNNZOO_LITERT_LIB names {prebuilt}, which is not a file: unset it to build the library")
        return Path(prebuilt)
    return build()


def code_path() -> str:
    """The binary GEMM path the library picked on this CPU (``avx512``, ``avx2``, ``neon``, ...)."""
    return library().bnn_path().decode()


def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


def _read(model: Union[str, os.PathLike, bytes]) -> bytes:
    if isinstance(model, (bytes, bytearray)):
        return bytes(model)
    path = Path(model)
    if not path.is_file():
        raise FileNotFoundError(f"no TFLite file at {path}: convert one with `bnnzoo convert MODEL --to tflite`")
    return path.read_bytes()


def custom_ops(flatbuffer: bytes) -> list[tuple[int, str, bytes]]:
    """``(operator index, custom code, flexbuffer options)`` of every custom op of subgraph 0."""
    schema = _schema()
    try:
        model = schema.Model.GetRootAsModel(flatbuffer, 0)
        codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
        graph = model.Subgraphs(0)
        ops = []
        for j in range(graph.OperatorsLength()):
            op = graph.Operators(j)
            code = codes[op.OpcodeIndex()]
            if code.CustomCode():
                options = op.CustomOptionsAsNumpy()
                ops.append((j, code.CustomCode().decode(),
                            options.tobytes() if isinstance(options, np.ndarray) else b""))
    except Exception as e:  # a flatbuffer reader raises anything on garbage
        raise UnsupportedModelError(f"not a TFLite flatbuffer ({type(e).__name__}): "
                                    "pass a .tflite file written by `bnnzoo convert`") from None
    return ops


def graph_outputs(flatbuffer: bytes) -> list[int]:
    """Tensor indices of subgraph 0's outputs."""
    model = _schema().Model.GetRootAsModel(flatbuffer, 0)
    outputs = model.Subgraphs(0).OutputsAsNumpy()
    return [] if isinstance(outputs, int) else [int(i) for i in outputs]


def has_int8(flatbuffer: bytes) -> bool:
    """Whether the file computes in int8 (any int8 tensor in subgraph 0). LiteRT's XNNPACK rounds
    int8 ops otherwise than its builtin kernels and LCE's interpreter, and its builtin kernels round
    some (LEAKY_RELU) otherwise on aarch64 than on x86-64: a value moved by one int8 step onto or off
    the zero point flips the sign an LCE op reads. Compare such a file with LCE on
    ``Interpreter(..., builtin_kernels="builtin")``, across architectures on ``"reference"``."""
    schema = _schema()
    graph = schema.Model.GetRootAsModel(flatbuffer, 0).Subgraphs(0)
    return any(graph.Tensors(i).Type() == schema.TensorType.INT8 for i in range(graph.TensorsLength()))


def check_model(flatbuffer: bytes) -> int:
    """Checks every custom op and option of a flatbuffer against the library.

    Returns:
        The number of LCE ops the library will run.

    Raises:
        UnsupportedModelError: The first op or option it does not implement, in one line
            naming both.
    """
    lib = library()
    ops = custom_ops(flatbuffer)
    for index, name, options in ops:
        if not lib.bnn_check_op(name.encode(), options, len(options)):
            raise UnsupportedModelError(f"operator {index}: {lib.bnn_last_error().decode()}; "
                                        "run this file with LCE's interpreter instead")
    return len(ops)


def with_outputs(flatbuffer: bytes, op_names: Sequence[str] = ("LceBconv2d",)) -> tuple[bytes, list[str]]:
    """A copy of the flatbuffer whose outputs also include every output of the named ops.

    What layer-by-layer checks run: both interpreters then return each such op's
    output. Returns the new flatbuffer and the names of the added outputs, in graph order.
    """
    import flatbuffers

    schema = _schema()
    model = schema.ModelT.InitFromPackedBuf(flatbuffer, 0)
    graph = model.subgraphs[0]
    codes = [c.customCode.decode() if c.customCode else None for c in model.operatorCodes]
    added = []
    for op in graph.operators:
        if codes[op.opcodeIndex] in op_names:
            added.extend(int(t) for t in op.outputs if int(t) not in graph.outputs and int(t) not in added)
    graph.outputs = list(graph.outputs) + added
    builder = flatbuffers.Builder(len(flatbuffer) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), [graph.tensors[t].name.decode() for t in added]


class Interpreter:
    """A LiteRT interpreter with bnnzoo's LCE kernels delegated in.

    Args:
        model: Path of a TFLite file or its bytes.
        num_threads: Threads for LiteRT's builtin ops and for bnnzoo's kernels.
        path: Force a binary GEMM code path (``"portable"``, ``"popcnt"``, ``"avx2"``,
            ``"avx512"``, ``"neon"``); default: the best this CPU has.
        builtin_kernels: What runs LiteRT's builtin ops: ``"xnnpack"`` (its default XNNPACK
            delegate, the fast choice), ``"builtin"`` (its own kernels, which round int8 ops
            as LCE's interpreter does: what a check against LCE compares) or ``"reference"``
            (its reference kernels, whose int8 results do not depend on the CPU: what a
            check of one architecture against another compares).
        fuse_add: Let an ``LceBconv2d`` whose float output only feeds an ``ADD`` (a residual
            connection) write that sum itself: the same floats, one op and one pass over
            memory less. The graph's outputs are never fused away.

    Raises:
        UnsupportedModelError: An op or option the kernels do not implement, or a file that is not a
            well-formed flatbuffer (:func:`converters.litert.flatbuffer.verify`).
        BuildError: The library could not be built (e.g. no C compiler).
    """

    def __init__(self, model: Union[str, os.PathLike, bytes], num_threads: int = 1, path: Optional[str] = None,
                 builtin_kernels: str = "xnnpack", fuse_add: bool = True):
        from ai_edge_litert.interpreter import Interpreter as LiteRT
        from ai_edge_litert.interpreter import OpResolverType, load_delegate

        if not isinstance(num_threads, int) or not 1 <= num_threads <= 256:
            raise ValueError(f"num_threads must be an integer from 1 to 256, not {num_threads!r}")
        resolvers = {"xnnpack": OpResolverType.AUTO, "builtin": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
                     "reference": OpResolverType.BUILTIN_REF}
        if builtin_kernels not in resolvers:
            raise ValueError(f"builtin_kernels must be one of {', '.join(resolvers)}, not {builtin_kernels!r}")
        flatbuffer = _read(model)
        try:  # LiteRT follows the file's offsets unchecked: a damaged file would crash it
            verify(flatbuffer, "the model" if isinstance(model, (bytes, bytearray)) else str(model))
        except FlatbufferError as e:
            raise UnsupportedModelError(str(e)) from None
        self.lce_ops = check_model(flatbuffer)
        lib = library()
        if path is not None and not lib.bnn_select_path(path.encode()):
            raise ValueError(f"code path {path!r} is not available here (this CPU has {code_path()!r})")
        options = {"num_threads": str(num_threads)}
        fuses = hasattr(lib, "bnn_fused_adds")  # a library built from older sources (bench_arm64 --kernels) cannot
        if fuses:
            options.update(fuse_add="1" if fuse_add else "0", keep=",".join(map(str, graph_outputs(flatbuffer))))
        if path is not None:
            options["path"] = path
        self._delegate = load_delegate(str(library_file()), options)
        try:
            self._interpreter = LiteRT(model_content=flatbuffer, experimental_delegates=[self._delegate],
                                       num_threads=num_threads,
                                       experimental_op_resolver_type=resolvers[builtin_kernels])
            self._interpreter.allocate_tensors()
        except (RuntimeError, ValueError) as e:
            detail = lib.bnn_last_error().decode() or " ".join(str(e).split())
            raise UnsupportedModelError(f"LiteRT refused the model with bnnzoo's kernels: {detail}") from None
        self.path = code_path()
        #: ADD ops that LceBconv2d ops write themselves (``fuse_add``)
        self.fused_adds = int(lib.bnn_fused_adds()) if fuses else 0
        self._inputs = self._interpreter.get_input_details()
        self._outputs = self._interpreter.get_output_details()

    @property
    def output_names(self) -> list[str]:
        return [d["name"] for d in self._outputs]

    @property
    def input_details(self) -> list[dict]:
        """LiteRT's description of each input (``name``, ``index``, ``shape``, ``dtype``, quantization)."""
        return self._inputs

    @property
    def output_details(self) -> list[dict]:
        """LiteRT's description of each output, in output order."""
        return self._outputs

    def predict(self, x_nhwc: np.ndarray) -> Union[np.ndarray, list[np.ndarray]]:
        """Runs a batch (NHWC, the input's dtype: float32 for a model), one image at a time as
        the file's batch-1 input takes.

        Returns:
            The output for the batch, or a list of them for a model with several outputs.
        """
        x = np.asarray(x_nhwc, dtype=self._inputs[0]["dtype"])
        shape = tuple(self._inputs[0]["shape"])
        if x.ndim != len(shape) or x.shape[1:] != shape[1:]:
            raise ValueError(f"input of shape {x.shape} does not fit the model's {shape} (NHWC)")
        results: list[list[np.ndarray]] = [[] for _ in self._outputs]
        for i in range(0, len(x), shape[0]):
            self._interpreter.set_tensor(self._inputs[0]["index"], np.ascontiguousarray(x[i:i + shape[0]]))
            self._interpreter.invoke()
            for r, d in zip(results, self._outputs):
                r.append(self._interpreter.get_tensor(d["index"]).copy())
        outs = [np.concatenate(r) for r in results]
        return outs[0] if len(outs) == 1 else outs
