"""Damaged TFLite files never reach an interpreter: the structural verifier
(``converters.litert.flatbuffer``), the recorded sha256 of exports, the probe in a child process,
and the commands that read exports (``bnnzoo detect --exported``, ``bnnzoo verify``, bundles)."""

from __future__ import annotations

import json
import random
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from converters.litert import flatbuffer as fb
from converters.litert import tflite_schema

from helpers import error_lines, randomize, tiny

ROOT = Path(__file__).resolve().parents[1]
SCALARS = {"Bool": 1, "Int8": 1, "Uint8": 1, "Int16": 2, "Uint16": 2, "Int32": 4, "Uint32": 4, "Float32": 4,
           "Int64": 8, "Uint64": 8, "Float64": 8}


# --- the schema table is the installed schema --------------------------------------------------------

def derive_schema(text: str) -> tuple[dict, dict]:
    """``(TABLES, UNIONS)`` of ``converters.litert.tflite_schema`` from the text of a flatbuffers-generated
    ``schema_py_generated.py``: each ``<Table>Add<Field>`` builder names its slot and kind, the field's
    reader says what an offset points at, each ``<Union>Creator`` maps type values to tables."""
    classes = {m[1]: m[2] for m in re.finditer(r"^class (\w+)\(object\):\n(.*?)(?=^\S)", text, re.S | re.M)}
    enums = {name: {k: int(v) for k, v in re.findall(r"^    (\w+) = (-?\d+)$", body, re.M)}
             for name, body in classes.items() if "_tab" not in body}
    unions = {}
    for m in re.finditer(r"^def (\w+)Creator\(unionType, table\):\n(.*?)(?=^\S)", text, re.S | re.M):
        found = re.findall(rf"unionType == {m[1]}\(\)\.(\w+):\n\s+return (\w+)T\.InitFromBuf", m[2])
        unions[m[1]] = dict(sorted((enums[m[1]][k], t) for k, t in found))
    union_of = {(cls[:-1], field[0].upper() + field[1:]): u for cls, body in classes.items()
                for u, field in re.findall(r"= (\w+)Creator\(self\.(\w+)Type", body)}
    tables: dict = {}
    adders = re.findall(r"^def (\w+?)Add(\w+)\(builder, \w+\):\n    builder\.Prepend(\w+?)Slot\((\d+)", text, re.M)
    for table, field, kind, slot in adders:
        if kind in SCALARS:
            spec = ("s", SCALARS[kind])
        else:
            assert kind == "UOffsetTRelative", (table, field, kind)
            m = re.search(rf"    def {field}\(self(, j)?\):\n(.*?)(?=\n    #|\Z)", classes[table], re.S)
            code, vector = m[2], bool(m[1])
            target = re.search(r"obj = (\w+)\(\)", code)
            if "self._tab.String(" in code:
                spec = ("vs" if vector else "str", 0)
            elif "self._tab.Union(" in code:
                spec = ("u", union_of[(table, field)])
            elif "self._tab.Indirect(" in code:
                spec = ("vt" if vector else "t", target[1])
            else:
                assert vector and not target, (table, field)  # no structs in this schema
                spec = ("v", int(re.search(r"j \* (\d+)", code)[1]))
        tables.setdefault(table, []).append((int(slot), field, *spec))
    return {t: tuple(sorted(f)) for t, f in sorted(tables.items())}, dict(sorted(unions.items()))


def render_schema(tables: dict, unions: dict, source: str) -> str:
    """The text of ``converters/litert/tflite_schema.py``."""
    head = (f'"""The TFLite flatbuffer schema, as :mod:`converters.litert.flatbuffer` walks it: plain data.\n\n'
            f"Derived from {source}'s ``schema_py_generated.py`` (the generated reader of\n"
            "``schema.fbs``); ``tests/test_flatbuffer.py`` derives it again from the installed package and requires\n"
            "the same table (``python tests/test_flatbuffer.py`` prints it).\n\n"
            "``TABLES``: table -> its fields ``(slot, name, kind, arg)``; kinds: ``s`` a scalar of ``arg`` bytes,\n"
            "``str`` a string, ``t`` a table ``arg``, ``u`` a union ``arg`` (its type is the scalar ``<name>Type``),\n"
            "``v`` a vector of ``arg``-byte scalars, ``vs`` a vector of strings, ``vt`` a vector of tables ``arg``.\n"
            '``UNIONS``: union -> type value -> table (tables without fields are absent from ``TABLES``).\n"""\n\n')
    lines = ["TABLES = {"]
    for t, fields in tables.items():
        lines += [f"    {t!r}: (", *[f"        {f!r}," for f in fields], "    ),"]
    lines += ["}", "", "UNIONS = {"]
    for u, members in unions.items():
        items = list(members.items())
        lines += [f"    {u!r}: {{", *["        " + " ".join(f"{k}: {v!r}," for k, v in items[i:i + 3])
                                       for i in range(0, len(items), 3)], "    },"]
    return head + "\n".join(lines + ["}"]) + "\n"


def _installed() -> tuple[str, str]:
    from importlib.metadata import version

    import ai_edge_litert.schema_py_generated as generated

    return Path(generated.__file__).read_text(), f"ai-edge-litert {version('ai-edge-litert')}"


def test_the_schema_table_is_the_installed_schema():
    text, source = _installed()
    tables, unions = derive_schema(text)
    assert (tables, unions) == (tflite_schema.TABLES, tflite_schema.UNIONS)
    assert render_schema(tables, unions, source) == Path(tflite_schema.__file__).read_text()
    assert len(tables) > 90 and len(unions["BuiltinOptions"]) > 120  # the derivation found the schema


# --- damaged files ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def detector(tmp_path_factory) -> tuple[Path, bytes]:
    """A tiny 1-bit detector written by `bnnzoo convert` (with its sha256 record)."""
    from bnnzoo.cli import main
    from zoo.weights import save

    folder = tmp_path_factory.mktemp("fb")
    model = randomize(tiny("plates_detector_1bit"))
    save(model.state_dict(), folder / "model.safetensors", model.zoo_config)
    out = folder / "det.tflite"
    assert main(["convert", str(folder / "model.safetensors"), "--arch", "plates_detector_1bit", "--to", "tflite",
                 "-o", str(out), "--no-verify"]) == 0
    return folder, out.read_bytes()


def _refused(data: bytes) -> str:
    with pytest.raises(fb.FlatbufferError) as e:
        fb.verify(data, "x.tflite")
    message = str(e.value)
    assert "\n" not in message and message.startswith("x.tflite is not a TFLite flatbuffer"), message
    return message


def test_the_converted_file_passes_and_every_cut_is_refused(detector):
    _, data = detector
    fb.verify(data, "det.tflite")
    for cut in [*range(17), *range(17, len(data), len(data) // 61)]:
        _refused(data[:cut])


def _tensor_index_edit(data: bytes) -> bytes:
    """The file with the first LceBconv2d writing its output into a small constant (the smallest of 32
    bytes or more): a valid structure and valid indices, another graph. One such index, flipped by 50
    random bit flips, made LCE's interpreter write past the constants: SIGSEGV."""
    import ai_edge_litert.schema_py_generated as schema

    model = schema.Model.GetRootAs(data, 0)
    graph = model.Subgraphs(0)
    constants = sorted((model.Buffers(graph.Tensors(t).Buffer()).DataLength(), t)
                       for t in range(graph.TensorsLength()))
    small = next(t for size, t in constants if size >= 32)
    for j in range(graph.OperatorsLength()):
        op = graph.Operators(j)
        if model.OperatorCodes(op.OpcodeIndex()).CustomCode() == b"LceBconv2d":
            edited = bytearray(data)
            struct.pack_into("<i", edited, op._tab.Vector(op._tab.Offset(8)), small)  # outputs[0]
            return bytes(edited)
    raise AssertionError("no LceBconv2d")


def test_flipped_bytes_are_refused_by_structure_or_by_the_probe_never_a_crash(detector, tmp_path):
    """50 bytes flipped at random (seeded), 24 times: each file is refused by the verifier, refused by the
    probe, or runs in LCE's interpreter without a crash (checked in a child process, all together)."""
    from converters.probe import probe

    _, data = detector
    rng = random.Random(0)
    refused = probed = 0
    survivors = []
    for k in range(24):
        edited = bytearray(data)
        for _ in range(50):
            i = rng.randrange(len(edited))
            edited[i] ^= 1 << rng.randrange(8)
        try:
            fb.verify(bytes(edited), "x.tflite")
        except fb.FlatbufferError:
            refused += 1
            continue
        try:
            probe(bytes(edited), "x.tflite")
        except ValueError:
            probed += 1
            continue
        survivors.append(tmp_path / f"{k}.tflite")
        survivors[-1].write_bytes(bytes(edited))
    with pytest.raises(ValueError, match="crashes LCE's interpreter"):
        probe(_tensor_index_edit(data), "x.tflite")
    script = ("import sys; from converters.tflite import tflite_predict; import numpy as np\n"
              "for f in sys.argv[1:]:\n"
              "    try:\n        tflite_predict(open(f, 'rb').read(), np.zeros((1, 3, 32, 32), np.float32))\n"
              "    except Exception:\n        pass\n")
    done = subprocess.run([sys.executable, "-c", script, *map(str, survivors)], cwd=ROOT, capture_output=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    print(f"{refused} refused by structure, {probed} by the probe, {len(survivors)} ran")
    assert refused > 0


@pytest.fixture
def cli(capsys):
    """``bnnzoo ARGS`` in this process: (exit status, stdout, stderr). On main before these checks, LCE's
    interpreter died of SIGSEGV on such files (this test process with it: a failure all the same)."""
    from bnnzoo.cli import main

    def run(*argv: str) -> subprocess.CompletedProcess:
        rc = main(list(argv))
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(argv, rc, out, err)

    return run


def _one_line(proc: subprocess.CompletedProcess, *needles: str) -> str:
    lines = error_lines(proc.stderr)
    assert proc.returncode == 1 and len(lines) == 1 and "Traceback" not in proc.stderr, (proc.returncode, proc.stderr)
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_detect_exported_refuses_damaged_files_in_one_line(detector, tmp_path, cli):
    from PIL import Image

    folder, data = detector
    image = tmp_path / "car.png"
    Image.new("RGB", (64, 48), (90, 120, 200)).save(image)
    weights = str(folder / "model.safetensors")
    cases = {"cut.tflite": (data[: len(data) // 2], "is not a TFLite flatbuffer"),
             "edited.tflite": (_tensor_index_edit(data), "crashes LCE's interpreter")}
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        _one_line(cli("detect", "plates_detector_1bit", str(image), "--weights", weights, "--exported",
                       str(tmp_path / name), "-o", str(tmp_path / "out.png")), message)
    # 8 weight bytes flipped: a valid file and a valid graph; the sha256 recorded by `bnnzoo convert` refuses it.
    shutil.copyfile(folder / "det.tflite.sha256.json", tmp_path / "flipped.tflite.sha256.json")
    record = json.loads((tmp_path / "flipped.tflite.sha256.json").read_text())
    (tmp_path / "flipped.tflite.sha256.json").write_text(json.dumps({**record, "file": "flipped.tflite"}))
    flipped = bytearray(data)
    for i in range(8):
        flipped[len(data) - 200 - 16 * i] ^= 0x40
    (tmp_path / "flipped.tflite").write_bytes(bytes(flipped))
    _one_line(cli("detect", "plates_detector_1bit", str(image), "--weights", weights, "--exported",
                   str(tmp_path / "flipped.tflite"), "-o", str(tmp_path / "out.png")),
              "does not match the size and sha256 recorded beside it")
    assert not (tmp_path / "out.png").exists()
    # Without its record the same file runs, and the user is told nothing vouches for it.
    (tmp_path / "flipped.tflite.sha256.json").unlink()
    proc = cli("detect", "plates_detector_1bit", str(image), "--weights", weights, "--exported",
                str(tmp_path / "flipped.tflite"), "-o", str(tmp_path / "out.png"))
    assert proc.returncode == 0 and "has no sha256 record beside it" in proc.stderr, proc.stderr


def test_verify_refuses_damaged_files_in_one_line(detector, tmp_path, cli):
    folder, data = detector
    weights = str(folder / "model.safetensors")
    rng = random.Random(1)
    flipped = bytearray(data)
    for _ in range(50):
        flipped[rng.randrange(4096)] ^= 0xFF  # the graph's tables (LCE writes the buffers' data after them)
    for name, content, message in (("cut.tflite", data[: len(data) // 2], "is not a TFLite flatbuffer"),
                                   ("flipped.tflite", bytes(flipped), "TFLite flatbuffer"),
                                   ("edited.tflite", _tensor_index_edit(data), "crashes LCE's interpreter")):
        (tmp_path / name).write_bytes(content)
        _one_line(cli("verify", "plates_detector_1bit", str(tmp_path / name), "--weights", weights), message)


if __name__ == "__main__":  # python tests/test_flatbuffer.py > s.py && mv s.py converters/litert/tflite_schema.py
    _text, _source = _installed()
    print(render_schema(*derive_schema(_text), _source), end="")
