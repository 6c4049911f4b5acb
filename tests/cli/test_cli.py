"""The `parm` command end to end, in-process, on a tiny IDX dataset written by the test."""

import gzip
import json
import struct
import subprocess
import sys

import numpy as np
import pytest

from parm.cli import build_parser, main


def _write_idx(path, array):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def idx_dir(tmp_path):
    """A 3-class, 12x12 dataset whose classes differ in brightness, as IDX files with a t10k split."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "idx"
    folder.mkdir()
    for prefix, n in (("train", 150), ("t10k", 30)):
        y = np.arange(n) % 3
        x = np.clip(y[:, None, None] * 90 + rng.integers(0, 50, (n, 12, 12)), 0, 255)
        _write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", x)
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", y)
    return folder


def _subcommands(parser):
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return action.choices


def test_every_command_has_help(capsys):
    parser = build_parser()
    commands = [[name] for name in _subcommands(parser)]
    commands += [["data", action] for action in _subcommands(_subcommands(parser)["data"])]
    for command in [[]] + commands:
        with pytest.raises(SystemExit) as exit_info:
            main([*command, "--help"])
        assert exit_info.value.code == 0
        assert "usage: parm" in capsys.readouterr().out


def _every_command(parser, prefix=()):
    """Every command line that has its own help: ``[]``, ``["data"]``, ``["data", "fetch"]``, ``["bench", ...]``."""
    yield list(prefix)
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            for name, sub in action.choices.items():
                yield from _every_command(sub, (*prefix, name))


def test_help_shows_no_rest_markup(capsys):
    """Help texts read as plain text: single backticks for code, never reST's double ones."""
    commands = list(_every_command(build_parser()))
    assert ["bench", "calibrate"] in commands and ["data", "fetch"] in commands
    for command in commands:
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        assert "``" not in capsys.readouterr().out, command


@pytest.mark.parametrize("command", ["train-parity", "train-coder"])
def test_coded_training_refuses_k_1_as_replication(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--dataset", "unused", "--model", "base-mlp", "--k", "1"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --k: k = 1 is replication" in err and "--mode equal-resources" in err
    with pytest.raises(SystemExit):
        main([command, "--dataset", "unused", "--model", "base-mlp", "--k", "0"])
    assert "need k >= 2" in capsys.readouterr().err


def test_train_base_end_to_end(idx_dir, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train-base", "--dataset", str(idx_dir), "--model", "lenet5", "--epochs", "3", "--out", str(out)]
    assert main([*args, "--no-progress", "--lr", "0.01", "--batch-size", "16"]) == 0
    printed = capsys.readouterr().out
    assert f"results written to {out}" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["title"] == "lenet5 on idx" and metrics["test"]["accuracy"] > 0.9
    card = json.loads((out / "model.json").read_text())
    assert card["input_shape"] == [1, 12, 12] and card["classes"] == ["0", "1", "2"]
    # Running it again without --resume refuses, with the fix in the message; --resume finishes at once.
    assert main([*args, "--no-progress"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main([*args, "--no-progress", "--resume"]) == 0


def test_user_errors_are_one_clear_line(capsys, tmp_path):
    assert main(["train-base", "--dataset", "nope", "--model", "base-mlp"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("parm train-base: error: unknown dataset 'nope'") and "Traceback" not in err
    assert main(["train-base", "--dataset", "cifar10", "--model", "base-mlp"]) == 2
    assert "--data-dir" in capsys.readouterr().err


def test_unknown_model_lists_the_zoo(idx_dir, capsys):
    assert main(["train-base", "--dataset", str(idx_dir), "--model", "resnet-9000"]) == 2
    assert "resnet18" in capsys.readouterr().err


def test_data_fetch_local_folder_prints_checksums(idx_dir, capsys):
    assert main(["data", "fetch", str(idx_dir), "--json"]) == 0
    (summary,) = json.loads(capsys.readouterr().out)
    assert summary["sizes"] == {"train": 135, "val": 15, "test": 30}
    assert len(summary["checksums"]["test"]) == 64


def test_models_lists_the_zoo(capsys):
    assert main(["models"]) == 0
    listed = capsys.readouterr().out
    for name in ("logistic-regression", "base-mlp", "lenet5", "vgg11", "resnet18", "resnet152"):
        assert name in listed


def test_console_script_runs():
    done = subprocess.run([sys.executable, "-m", "parm", "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("parm ")


def test_train_parity_then_evaluate(idx_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # default run folders go under ./runs
    common = ["--dataset", str(idx_dir), "--no-progress"]
    assert main(["train-base", *common, "--model", "base-mlp", "--epochs", "2"]) == 0
    assert main(["train-parity", *common, "--model", "base-mlp", "--k", "2", "--r", "2", "--code", "linear",
                 "--coefficients", "1,1;1,2", "--epochs", "2"]) == 0
    printed = capsys.readouterr().out
    assert "A_d" in printed and "default baseline" in printed
    run = tmp_path / "runs" / "parity" / "idx-base-mlp-linear-k2-r2"
    assert (run / "parity-1.safetensors").exists()
    assert main(["evaluate", str(run)]) == 0
    table = capsys.readouterr().out
    assert "A_d, 2 lost" in table and "| linear | 2 | 2 |" in table
    assert (run / "evaluation" / "degraded_vs_k.png").exists()


def test_train_parity_without_base_names_the_fix(idx_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train-parity", "--dataset", str(idx_dir), "--model", "lenet5"]) == 2
    assert "parm train-base --dataset" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "parm train-parity" in capsys.readouterr().err
    (tmp_path / "results.json").write_text("{}")
    assert main(["evaluate", str(tmp_path / "results.json")]) == 2
    assert "parm train-parity" in capsys.readouterr().err


def test_train_coder_then_evaluate(idx_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    common = ["--dataset", str(idx_dir), "--no-progress"]
    assert main(["train-base", *common, "--model", "base-mlp", "--epochs", "1"]) == 0
    assert main(["train-coder", *common, "--model", "base-mlp", "--encoder", "conv", "--loss", "kl", "--epochs", "1"]) == 0
    assert "A_d" in capsys.readouterr().out
    run = tmp_path / "runs" / "coder" / "idx-base-mlp-conv-kl-k2-r1"
    assert (run / "code.safetensors").exists()
    assert main(["evaluate", str(run)]) == 0
    assert "| learned-conv | 2 | 1 |" in capsys.readouterr().out


def test_make_run_writes_a_berrut_run_to_evaluate_and_serve(idx_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    common = ["--dataset", str(idx_dir), "--no-progress"]
    assert main(["train-base", *common, "--model", "base-mlp", "--epochs", "1"]) == 0
    base = tmp_path / "runs" / "base" / "idx-base-mlp"
    capsys.readouterr()
    assert main(["make-run", str(base), "--code", "berrut", "--k", "3", "--r", "2"]) == 0
    run = tmp_path / "runs" / "codes" / "idx-base-mlp-berrut-k3-r2"
    assert f"run written to {run.relative_to(tmp_path)}/ (code.json)" in capsys.readouterr().out
    meta = json.loads((run / "code.json").read_text())
    assert meta["code"]["name"] == "berrut" and meta["dataset"] == "idx" and len(meta["base_sha256"]) == 64
    assert main(["make-run", str(base), "--k", "3", "--r", "2"]) == 0  # the same run again: a no-op
    assert main(["evaluate", str(run)]) == 0
    table = capsys.readouterr().out
    assert "| berrut | 3 | 2 |" in table and "A_d, 2 lost" in table

    from parm.serving import ServeOptions, build_deployment

    deployment = build_deployment(run, ServeOptions(instances=3))
    assert deployment.code is not None and deployment.code.name == "berrut"
    assert {spec.checkpoint for spec in deployment.instances} == {str((base / "model.safetensors").resolve())}
    assert sum(spec.pool.parity is not None for spec in deployment.instances) == 2  # F runs on the extra queries


def test_make_run_errors_name_the_fix(idx_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["make-run", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["train-base", "--dataset", str(idx_dir), "--no-progress", "--model", "base-mlp", "--epochs", "1"]) == 0
    base, out = tmp_path / "runs" / "base" / "idx-base-mlp", tmp_path / "run"
    assert main(["make-run", str(base), "--out", str(out)]) == 0
    assert main(["make-run", str(out)]) == 2
    assert f"pass the base model it protects, {base.resolve() / 'model.safetensors'}" in capsys.readouterr().err
    assert main(["make-run", str(base), "--k", "4", "--out", str(out)]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert main(["make-run", str(base), "--k", "4", "--out", str(out), "--overwrite"]) == 0
    with pytest.raises(SystemExit):
        main(["make-run", str(base), "--k", "1"])
    assert "k = 1 is replication" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["train-parity", "train-coder"])
def test_coded_training_refuses_no_parity(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--dataset", "unused", "--model", "base-mlp", "--r", "0"])
    assert exit_info.value.code == 2 and "need r >= 1" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["--backend", "remote"], "--backend remote needs --instances-file"),
    (["--instances-file", "cluster.yaml"], "--instances-file goes with --backend remote only"),
    (["--backend", "remote", "--instances-file", "missing.yaml"], "no cluster file at missing.yaml"),
])
def test_serve_remote_refuses_a_missing_cluster_file_in_one_line(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(["serve", str(tmp_path / "run"), *argv]) == 2
    assert message in capsys.readouterr().err


def test_serve_refuses_the_onnx_engine_without_onnxruntime_naming_the_install(tmp_path, capsys, monkeypatch):
    import parm.export.formats as formats

    real = formats.importlib.util.find_spec
    monkeypatch.setattr(formats.importlib.util, "find_spec", lambda name: None if name == "onnxruntime" else real(name))
    assert main(["serve", str(tmp_path / "run"), "--engine", "onnx"]) == 2
    err = capsys.readouterr().err
    assert "--engine onnx" in err and "pip install 'parm-serving[export]'" in err and "leave --engine out" in err
