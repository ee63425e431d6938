"""Working inside the environment through a real terminal (tmux): `envbuild shell`, `envbuild run --
python` as a REPL, a breakpoint() in a script, Ctrl-C and resizes, and stdin piped in.

The small six project of test_reproduce (locked, built and committed once a session) is reused.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.helpers.terminal import Terminal
from tests.commands.test_reproduce import NAME, envbuild  # noqa: F401 (proj, template: conftest)

pytestmark = pytest.mark.docker

# prints where python lives and that the image's package is there: the host's python has no six here
WHERE = "import sys, six; print('PY', 6 * 7, sys.executable, sys.prefix, six.__file__)"


@pytest.fixture
def term(tmp_path: Path):
    t = Terminal(tmp_path)
    yield t
    t.close()


def latest(root: Path) -> dict:
    return json.loads(envbuild(root, "runs", "show", "latest", "--json").stdout)


def image_python(root: Path) -> str:
    """sys.executable inside the image, asked without a terminal."""
    proc = run_cli("run", "--", "python", "-c", "import sys; print(sys.executable)", cwd=root)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_shell_is_interactive_in_the_image_and_its_record_traces_a_file_made_by_hand(proj: Path, term: Terminal):
    expected = image_python(proj)
    assert expected != sys.executable
    term.envbuild("shell", cwd=proj)
    term.type("echo READY-$((6*7)) $(id -u) $PWD")
    ready = term.wait_for(r"^READY-42 (\d+) (\S+)")
    assert ready.group(1) == str(os.getuid()) and ready.group(2) == "/workspace"
    term.type(f'python -c "{WHERE}"')
    seen = term.wait_for(r"^PY 42 (\S+) (\S+) (\S+)").groups()
    assert seen[0] == expected and "site-packages" in seen[2], seen
    term.type("echo by hand > outputs/hand.txt; echo $ENVBUILD_SEED $PYTHONHASHSEED")
    assert term.wait_for(r"^(\d+) (\d+)$").groups() == ("1234", "1234")
    term.type("exit 7")
    assert term.exit_code() == 7
    record = latest(proj)
    assert (record["kind"], record["exit_code"], record["status"], record["command"]) == ("shell", 7, "failed", ["bash"])
    assert record["image"]["id"] and record["lock"]["lock_hash"]
    assert "outputs/hand.txt" in {o["path"] for o in record["outputs"]}
    traced = json.loads(envbuild(proj, "trace", "outputs/hand.txt", "--json").stdout)["made_by"]
    assert traced["run"] == record["id"] and traced["ingredients"]["kind"] == "shell"
    assert traced["reproduce"] == "envbuild shell"
    proc = envbuild(proj, "reproduce", record["id"], expect=2)
    assert "interactive shell session" in proc.stderr


def test_run_python_is_a_repl_with_ctrl_c_resize_and_exit_code(proj: Path, term: Terminal):
    expected = image_python(proj)
    term.envbuild("run", "--", "python", cwd=proj)
    term.wait_for(r"^>>> ")
    term.type(WHERE)
    assert term.wait_for(r"^PY 42 (\S+)").group(1) == expected
    # Ctrl-C interrupts the REPL's statement, as in a local python; the REPL stays
    term.type("import time; time.sleep(300)")
    time.sleep(1.5)
    term.send("C-c")
    term.wait_for(r"^KeyboardInterrupt")
    # the window resized: the container's terminal follows
    term.tmux("resize-window", "-t", "0", "-x", "101", "-y", "33")
    time.sleep(1)
    term.type("import os; print('SIZE', os.get_terminal_size().columns * 1000 + os.get_terminal_size().lines)")
    term.wait_for(r"^SIZE 101033")
    term.type("raise SystemExit(5)")
    assert term.exit_code() == 5
    record = latest(proj)
    assert (record["kind"], record["exit_code"], record["command"]) == ("run", 5, ["python"])


def test_breakpoint_in_a_script_stops_and_continues(proj: Path, term: Terminal):
    (proj / "debugme.py").write_text("x = 41\nbreakpoint()\nprint('ANSWER', x + 1)\n")
    term.envbuild("run", "debugme.py", cwd=proj)
    term.wait_for(r"^\(Pdb\) ")
    term.type("p x * 1000")
    term.wait_for(r"^41000$")
    term.type("x = 99")
    term.type("c")
    term.wait_for(r"^ANSWER 100$")
    assert term.exit_code() == 0
    assert latest(proj)["status"] == "succeeded"


def test_stdin_is_piped_in_without_a_terminal(proj: Path):
    proc = run_cli("run", "--", "python", "-c", "import sys; d = sys.stdin.read(); print(len(d), d.upper(), sys.stdin.isatty())",
                   cwd=proj, input="piped data")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "10 PIPED DATA False"
    run_dir = proj / ".envbuild" / "runs" / latest(proj)["id"]
    assert "PIPED DATA" in (run_dir / "stdout.log").read_text()  # without a terminal the log is kept
