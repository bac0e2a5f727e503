import subprocess
import sys

from zoo.cli import main


def bnnzoo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zoo.cli", *args], capture_output=True, text=True)


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
