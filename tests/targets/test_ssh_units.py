"""The ssh target without a remote host: its spec table, the URL, the scripts it sends (secrets only
on stdin, never in argv), and what it accepts back (nothing outside the declared outputs)."""

from __future__ import annotations

import io
import json
import shlex
import tarfile
from pathlib import Path

import pytest

from envbuild.errors import SpecError
from envbuild.spec import load_spec
from envbuild.targets import Job, get
from envbuild.targets.ssh import SshTarget, project_files, remote_path, ssh_destination, unpack_results, workspace_script


def _project(tmp_path: Path, targets: str = "") -> Path:
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\ndependencies = ["numpy"]\n\n'
                                             '[tool.envbuild]\nseed = 1\noutputs = ["outputs/"]\ndata = ["data/"]\n'
                                             + targets)
    return tmp_path


BOX = '[tool.envbuild.targets.box]\nbackend = "ssh"\nhost = "ssh://me@gpu-box:2222"\nssh-args = ["-i", "/k"]\n'


def test_spec_checks_the_ssh_table(tmp_path: Path) -> None:
    spec = load_spec(_project(tmp_path, BOX))
    assert spec.targets["box"] == {"backend": "ssh", "host": "ssh://me@gpu-box:2222", "ssh-args": ("-i", "/k")}
    target = get(spec, "box")
    assert isinstance(target, SshTarget) and target.remote.dest == ["-p", "2222", "me@gpu-box"]
    for bad, words in (('host = "me@gpu-box"', "not an ssh URL"), ('store = "rel/dir"', "under ~/"),
                       ('hots = "ssh://x"', "did you mean 'host'")):
        with pytest.raises(SpecError, match=words):
            load_spec(_project(tmp_path, f'[tool.envbuild.targets.box]\nbackend = "ssh"\n{bad}\n'))


def test_docker_host_over_ssh_says_to_use_a_target(tmp_path: Path, monkeypatch) -> None:
    """The build bind-mounts local files into helper containers: a remote DOCKER_HOST cannot build."""
    from envbuild.errors import EnvbuildError

    spec = load_spec(_project(tmp_path, BOX))
    monkeypatch.setenv("DOCKER_HOST", "ssh://me@gpu-box")
    with pytest.raises(EnvbuildError, match=r'unset DOCKER_HOST .*backend = "ssh" and host = "ssh://me@gpu-box"'):
        get(spec, None)
    assert get(spec, "box").backend == "ssh"  # a target names its engine; the build stays here
    with pytest.raises(EnvbuildError, match=r'--on ssh: an ssh target needs a table: \[tool.envbuild.targets.ssh\]'):
        get(spec, "ssh")
    monkeypatch.setenv("DOCKER_HOST", "unix:///var/run/docker.sock")
    assert get(spec, None).backend == "local"


def test_urls_and_store_paths() -> None:
    assert ssh_destination("ssh://box") == ["box"] and ssh_destination("ssh://u@10.0.0.1:22/") == ["-p", "22", "u@10.0.0.1"]
    assert remote_path("~/.cache/x y") == "\"$HOME\"/'.cache/x y'" and remote_path("/srv/s") == "/srv/s"


def _job(tmp_path: Path) -> Job:
    spec = load_spec(_project(tmp_path))
    return Job(name="envbuild-p-r1", run_id="r1", image="envbuild/p:abc", image_id="sha256:" + "a" * 64,
               command=["python", "train.py", "--lr", "0.1 0.2"], env={"SECRET_TOKEN": "hunter2 $(x)", "HOME": "/tmp"},
               network="none", gpus=None, root=tmp_path, run_dir=tmp_path / "run", spec=spec, lock=None)


def test_the_run_script_keeps_values_off_argv_and_quotes_names(tmp_path: Path) -> None:
    job = _job(tmp_path)
    (tmp_path / "data" / "a b.csv").write_text("1\n")
    (tmp_path / "train.py").write_text("print(1)\n")
    (tmp_path / ".envbuild").mkdir()
    (tmp_path / ".envbuild" / "record.json").write_text("{}")
    (tmp_path.parent / "outside-secret").write_text("s")
    (tmp_path / "data" / "link").symlink_to(tmp_path.parent / "outside-secret")
    files = project_files(job.spec)
    assert sorted(files) == ["data/a b.csv", "pyproject.toml", "train.py"]  # never the records
    script = workspace_script(job, "/s", files, {k: "f" * 64 for k in files})
    assert "export SECRET_TOKEN='hunter2 $(x)'" in script  # on stdin, quoted: never run, never in argv
    docker = next(line for line in script.splitlines() if line.startswith("exec docker"))
    assert "hunter2" not in docker and " -e SECRET_TOKEN " in docker and " -e HOME=/tmp " in docker
    assert "'0.1 0.2'" in docker and "--network none" in docker and "sha256:" + "a" * 64 in docker
    assert "cp \"$S/blobs/" + "f" * 64 + "\" \"$W\"/'data/a b.csv'" in script
    assert 'mkdir -p "$W"/data "$W"/outputs' in script
    target = SshTarget("box", {"host": "ssh://me@box"})
    assert shlex.split(target.remote.argv("sh -s")[-1]) == ["sh", "-c", "sh -s"]


def _tar(entries: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def test_only_declared_outputs_and_run_files_come_back(tmp_path: Path) -> None:
    root, run_dir = tmp_path / "p", tmp_path / "run"
    (root / "outputs").mkdir(parents=True)
    (root / "outputs" / "w.npy").symlink_to(tmp_path / "elsewhere")
    n = unpack_results(_tar({"io/metrics.jsonl": b"m", "workspace/outputs/w.npy": b"w", "workspace/train.py": b"x",
                             "workspace/../evil": b"e", "io/sub/deep": b"d", "workspace/outputs/../../evil": b"e"}),
                       root, run_dir, ["outputs/"])
    assert n == 2 and (run_dir / "container" / "metrics.jsonl").read_bytes() == b"m"
    assert (root / "outputs" / "w.npy").read_bytes() == b"w" and not (root / "outputs" / "w.npy").is_symlink()
    assert not (tmp_path / "elsewhere").exists() and not (root / "train.py").exists()
    assert not (tmp_path / "evil").exists()


def test_chain_ids_and_layers_left_out_of_an_image_tar() -> None:
    import hashlib

    from envbuild.targets.ssh import chain_ids, filter_layers

    a, b = "sha256:" + hashlib.sha256(b"A").hexdigest(), "sha256:" + hashlib.sha256(b"B").hexdigest()
    assert chain_ids([a, b]) == [a, "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()]
    out, sent = io.BytesIO(), {"layers_skipped": 0, "image_bytes": 0}
    filter_layers(_tar({"1/layer.tar": b"A", "2/layer.tar": b"B", "manifest.json": b"[]"}), out, {a}, sent)
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        assert tar.getnames() == ["2/layer.tar", "manifest.json"]
        assert tar.extractfile("2/layer.tar").read() == b"B"
    assert sent == {"layers_skipped": 1, "image_bytes": 3}


def test_doctor_says_when_the_box_cannot_be_reached(tmp_path: Path, cli) -> None:
    root = _project(tmp_path, '[tool.envbuild.targets.box]\nbackend = "ssh"\nhost = "ssh://nobody@127.0.0.1:1"\n'
                              'ssh-args = ["-F", "/dev/null"]\n')
    proc = cli("doctor", "--on", "box", "--json", cwd=root)
    assert proc.returncode == 1, proc.stderr
    check = json.loads(proc.stdout)["checks"][0]
    assert not check["ok"] and check["required"] and "ssh://nobody@127.0.0.1:1" in check["detail"]
    assert "refused" in check["detail"] and "\n" not in check["detail"]


def test_a_remote_cannot_write_outside_the_project_or_into_git_and_envbuild(tmp_path: Path) -> None:
    from envbuild.errors import EnvbuildError

    root, run_dir, outside = tmp_path / "p", tmp_path / "run", tmp_path / "models"
    (root / "outputs").mkdir(parents=True)
    outside.mkdir()
    (root / ".git" / "hooks").mkdir(parents=True)
    # "." would cover the whole workspace: .git and .envbuild still never come back
    n = unpack_results(_tar({"workspace/.git/hooks/pre-commit": b"evil", "workspace/.envbuild/x": b"e",
                             "workspace/a.txt": b"a"}), root, run_dir, [".", ".git", "./.envbuild/"])
    assert n == 0 and not (root / ".git" / "hooks" / "pre-commit").exists() and not (root / "a.txt").exists()
    # a symlinked directory among the outputs that leads out of the project: refused, nothing written there
    (root / "outputs" / "ckpt").symlink_to(outside)
    with pytest.raises(EnvbuildError, match="outside"):
        unpack_results(_tar({"workspace/outputs/ckpt/x": b"x"}), root, run_dir, ["outputs/"])
    assert list(outside.iterdir()) == []
    with pytest.raises(EnvbuildError, match="outside"):  # not even a directory made out there first
        unpack_results(_tar({"workspace/outputs/ckpt/sub/x": b"x"}), root, run_dir, ["outputs/"])
    assert list(outside.iterdir()) == []
    # a link planted at the temporary name is replaced, not written through
    target = tmp_path / "victim"
    target.write_bytes(b"keep")
    (root / "outputs" / ".w.envbuild-part").symlink_to(target)
    assert unpack_results(_tar({"workspace/outputs/w": b"w"}), root, run_dir, ["outputs/"]) == 1
    assert target.read_bytes() == b"keep" and (root / "outputs" / "w").read_bytes() == b"w"


def test_data_outside_the_project_is_a_clear_error_not_a_silent_gap(tmp_path: Path) -> None:
    from envbuild.errors import EnvbuildError

    root = tmp_path / "p"
    root.mkdir()
    (tmp_path / "shared").mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "p"\ndependencies = ["numpy"]\n\n[tool.envbuild]\n'
                                         'data = ["../shared"]\n')
    with pytest.raises(EnvbuildError, match=r"data: '\.\./shared' lies outside the project"):
        project_files(load_spec(root))
