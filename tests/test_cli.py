import subprocess
import sys

import pytest

from bnnzoo.cli import main


def bnnzoo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bnnzoo", *args], capture_output=True, text=True)


def test_list_prints_every_model(capsys):
    import zoo

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in zoo.list_models())


def test_list_figures_is_measured(capsys):
    assert main(["list", "mobilenet_v1", "--figures"]) == 0
    out = capsys.readouterr().out
    assert "| mobilenet_v1 | 4.25 M | 0 | 0.0% |" in out


def test_list_unknown_pattern_fails(capsys):
    assert main(["list", "nothing*"]) == 1
    assert "no model matches" in capsys.readouterr().err


def test_no_command_prints_help():
    result = bnnzoo()
    assert result.returncode == 2 and "COMMAND" in result.stdout


def test_verify_takes_the_model_first_then_the_file(tmp_path, capsys):
    exported = str(tmp_path / "m.onnx")
    assert main(["convert", "meliusnet22.mnist", "--to", "onnx", "-o", exported]) == 0
    capsys.readouterr()
    assert main(["verify", "mobilenet_v1", exported]) == 1  # a bare name means its default weights: none here
    assert "mobilenet_v1 has no default weights: name the file's weights, bnnzoo verify mobilenet_v1.TAG" in (
        capsys.readouterr().err)
    assert main(["verify", "meliusnet22.mnist", exported]) == 0
    out = capsys.readouterr().out
    assert "max diff" in out and f"{exported} matches its source layer by layer" in out
    assert main(["verify", exported, "--model", "meliusnet22.mnist"]) == 0  # the old spelling still works
    assert "matches its source layer by layer" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["verify", "m.onnx", "meliusnet22.mnist"], "the model comes first, then the file: bnnzoo verify "
                                                "meliusnet22.mnist m.onnx"),
    (["verify", "meliusnet22", "missing.tflite"], "missing.tflite does not exist"),
    (["verify", "meliusnet22", "m.pt"], "neither a .tflite nor an .onnx"),
    (["verify", "meliusnet22.mnist", "EXISTING", "--weights", "w.safetensors"], "names its weights already"),
    (["verify", "EXISTING"], "name the file's source: bnnzoo verify MODEL existing.onnx (MODEL: NAME[.TAG]"),
    (["verify", "meliusnet22.mnist", "EXISTING"], "existing.onnx is not a readable .onnx export"),
])
def test_verify_errors_are_one_line(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "existing.onnx").write_bytes(b"")  # an empty file: read only by the last case
    assert main([a.replace("EXISTING", "existing.onnx") for a in argv]) == 1
    err = capsys.readouterr().err.strip()
    assert message.replace("EXISTING", "existing.onnx") in err and "\n" not in err, err


def test_train_takes_its_run_folder_as_output(tmp_path, capsys):
    import json

    assert main(["train", "real2bin_mnist", "-o", str(tmp_path / "run"), "--show"]) == 0
    assert json.loads(capsys.readouterr().out)["out"] == str(tmp_path / "run")
    assert main(["train", "real2bin_mnist", "-o", str(tmp_path / "a"), "--resume", str(tmp_path / "b")]) == 1
    assert "names the run folder already: drop -o" in capsys.readouterr().err
