"""Opening run folders: a missing path, a folder of the wrong kind and a bare checkpoint say which they are."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from parm.cli import main
from parm.runs import open_coded_run, open_run


@pytest.mark.parametrize("open_", [open_run, open_coded_run])
def test_a_missing_path_is_said_not_to_exist(tmp_path: Path, open_) -> None:
    missing = tmp_path / "runs" / "nonexistent"
    with pytest.raises(FileNotFoundError, match=f"^{re.escape(str(missing))} does not exist: check the path, or train"):
        open_(missing)


def test_an_existing_folder_of_the_wrong_kind_keeps_its_own_message(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="is neither a coded run folder"):
        open_run(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"is not a coded run \(no code.json\)"):
        open_coded_run(tmp_path)


def test_evaluate_on_a_missing_run_says_it_does_not_exist(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    missing = tmp_path / "nonexistent"
    assert main(["evaluate", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"parm evaluate: error: {missing} does not exist") and "not a coded run" not in err
