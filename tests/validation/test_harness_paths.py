"""Commands are named from where the user stands; each run starts in a copy of the workdir."""

from __future__ import annotations

from pathlib import Path

import pytest

from sysweave.validator.equivalence.harness import HarnessError, command_argv


def test_program_paths_become_absolute_and_workdir_files_stay(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "wc.py").write_text("")
    (tmp_path / "src" / "bin").mkdir()
    (tmp_path / "src" / "bin" / "wc").write_text("")
    data = tmp_path / "src" / "data"
    data.mkdir()
    (data / "input.txt").write_text("x")
    here = str(tmp_path / "src")
    assert command_argv("python3 wc.py input.txt -v", str(data), here) == [
        "python3", str(tmp_path / "src" / "wc.py"), "input.txt", "-v"]
    assert command_argv("./bin/wc input.txt", str(data), here) == [str(tmp_path / "src" / "bin" / "wc"), "input.txt"]
    # a file that exists in both places is the workdir's (the run sees its copy)
    (data / "wc.py").write_text("")
    assert command_argv("python3 wc.py", str(data), here) == ["python3", "wc.py"]
    # shell syntax is the shell's business
    assert command_argv("python3 wc.py | sort", str(data), here) == ["/bin/sh", "-c", "python3 wc.py | sort"]


def test_an_empty_command_is_refused() -> None:
    with pytest.raises(HarnessError, match="empty command"):
        command_argv("   ")
