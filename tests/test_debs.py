"""System packages: apt output parsing and the .deb cache (units), then lock, build, base build and
refusals through the real engine, base image, Debian archive and registry."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from envbuild import debs
from envbuild.debs import Deb, PlatformPackages, SystemLock
from envbuild.errors import EnvbuildError, SpecError
from envbuild.fsutil import atomic_write_json, sha256_bytes, sha256_file
from envbuild.lockfile import SYSTEM_PACKAGES_LOCK, read_lock
from tests.conftest import REGISTRY, run_cli

SIMULATE = """\
python3 is already the newest version (3.11.2-1+b1).
The following NEW packages will be installed:
  jq libjq1 libonig5
Inst libonig5 (6.9.8-1 Debian:12.15/oldstable [amd64])
Inst libc6 [2.36-9] (2.36-9+deb12u4 Debian:12.15/oldstable [amd64])
Inst tzdata (2024a-0+deb12u1 Debian:12.15/oldstable [all])
Conf libonig5 (6.9.8-1 Debian:12.15/oldstable [amd64])
"""
SHOW = """\
Package: libonig5
Version: 6.9.8-1
Architecture: amd64
Description: regular expressions library
 a continuation line: ignored
Filename: pool/main/libo/libonig/libonig5_6.9.8-1_amd64.deb
SHA256: 59ecfce6d88c7c4b09496ce182b3b8303e8e8477664e009b16ae83a09cd12be7

Package: jq
Version: 1:1.6-2.1+deb12u2
"""


def test_parse_apt_output() -> None:
    inst, in_base = debs.parse_simulate(SIMULATE)
    assert inst == [("libonig5", "6.9.8-1", "amd64"), ("libc6", "2.36-9+deb12u4", "amd64"),
                    ("tzdata", "2024a-0+deb12u1", "all")]
    assert in_base == {"python3": "3.11.2-1+b1"}
    first, second = debs.parse_paragraphs(SHOW)
    assert first["Filename"].endswith("libonig5_6.9.8-1_amd64.deb") and first["SHA256"].startswith("59ecf")
    assert second == {"Package": "jq", "Version": "1:1.6-2.1+deb12u2"}
    uris = debs.parse_uris("'http://u:secret@deb.example.org/debian/pool/main/j/jq/jq_1.6-2.1%2bdeb12u2_amd64.deb' "
                           "jq_1.6-2.1+deb12u2_amd64.deb 63984 MD5Sum:b9aca00e056b5365d65597df4b338cee\n")
    assert uris == {"jq_1.6-2.1+deb12u2_amd64.deb":
                    "http://deb.example.org/debian/pool/main/j/jq/jq_1.6-2.1%2bdeb12u2_amd64.deb"}


@pytest.mark.parametrize("code, output, says, exit_code", [
    (91, "E: Unable to locate package nosuchpkg\n", "no Debian package named 'nosuchpkg'", 2),
    (91, "E: Version '9.9' for 'jq' was not found\n", "jq=9.9: no such version", 2),
    (91, "E: Package 'mail-transport-agent' has no installation candidate\n", "has no installable version", 2),
    (91, "The following packages have unmet dependencies:\n jq : Depends: libjq1 (= 1.6) but it is not going "
         "to be installed\nE: Unable to correct problems, you have held broken packages.\n", "jq : Depends", 2),
    (90, "E: Failed to fetch http://mirror.example/debian/dists/bookworm/InRelease  Could not resolve\n",
     "could not be reached", 2),
    (127, "apt-get not found\n", "has no apt-get", 2),
    (125, "docker: image does not match the specified platform\n", "the engine must be able to run", 2),
])
def test_apt_errors_are_one_clear_line(tmp_path: Path, code: int, output: str, says: str, exit_code: int) -> None:
    from envbuild.spec import load_spec

    (tmp_path / "pyproject.toml").write_text('[tool.envbuild]\nsystem-packages = ["jq"]\n')
    (tmp_path / "requirements.in").write_text("six\n")
    e = debs.apt_error(load_spec(tmp_path), "reg/base@sha256:ab", "linux/amd64", code, output)
    assert says in str(e) and e.exit_code == exit_code and "\n" not in str(e)
    if code == 91:
        assert isinstance(e, SpecError) and e.key == "tool.envbuild.system-packages"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ENVBUILD_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _hand_lock(root: Path, url: str, data: bytes) -> Deb:
    deb = Deb("tool", "1.0-1", "amd64", "tool_1.0-1_amd64.deb", len(data), sha256_bytes(data), url)
    lock = SystemLock(["tool"], {"linux/amd64": PlatformPackages("sha256:" + "b" * 64, [deb])})
    atomic_write_json(root / SYSTEM_PACKAGES_LOCK, lock.to_dict())
    assert debs.read_system_lock(root) == lock
    return deb


def test_fetch_verify_cache_and_context(tmp_path: Path, cache: Path) -> None:
    """A locked .deb is fetched by its URL (file:// here), cached by sha256, refused when changed."""
    origin = tmp_path / "mirror" / "tool_1.0-1_amd64.deb"
    origin.parent.mkdir()
    origin.write_bytes(b"the deb the archive signed")
    deb = _hand_lock(tmp_path, origin.as_uri(), origin.read_bytes())
    first = debs.ensure(tmp_path, "linux/amd64")
    ((_, path),) = first.files
    assert first.downloaded == ["tool=1.0-1"] and path == cache / "debs" / deb.sha256 / deb.filename
    assert debs.ensure(tmp_path, "linux/amd64").cached == ["tool=1.0-1"]  # second time: from the cache

    ctx = tmp_path / "ctx"
    debs.add_to_context(first, ctx)
    assert (ctx / "debs" / "SHA256SUMS").read_text() == f"{deb.sha256}  {deb.filename}\n"
    assert sha256_file(ctx / "debs" / deb.filename) == deb.sha256

    path.write_bytes(b"tampered")
    with pytest.raises(EnvbuildError) as e:
        debs.ensure(tmp_path, "linux/amd64")
    assert str(path) in str(e.value) and deb.sha256 in str(e.value) and sha256_bytes(b"tampered") in str(e.value)
    assert e.value.exit_code == 1
    with pytest.raises(EnvbuildError, match="no packages for linux/arm64"):
        debs.ensure(tmp_path, "linux/arm64")


def test_substituted_download_is_refused(tmp_path: Path, cache: Path) -> None:
    origin = tmp_path / "tool.deb"
    origin.write_bytes(b"substituted bytes")
    _hand_lock(tmp_path, origin.as_uri(), b"the deb the archive signed")
    with pytest.raises(EnvbuildError, match="the archive served a substituted file"):
        debs.ensure(tmp_path, "linux/amd64")
    assert not list((cache / "debs").rglob("*.deb"))


def test_dockerfile_step_only_with_system_packages() -> None:
    from envbuild.lockfile import Base, EnvLock

    lock = EnvLock("0.1.0", "3.11", ["linux/amd64"], "h", {}, Base("t", "sha256:x"), {})
    assert debs.dockerfile_step(lock) == ""
    lock.system_packages = {"jq": "1.6"}
    step = debs.dockerfile_step(lock)
    assert "COPY debs/ /tmp/envbuild-debs/" in step and "sha256sum --check --strict" in step
    assert "Dir::Etc::SourceList=/tmp/envbuild-debs/sources.list" in step  # no sources: nothing downloaded


# --- through the engine, the base image and Debian's archive --------------------------------


def _docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300)


def _project(root: Path, name: str, base: str, packages: str, deps: str = "six==1.16.0\n") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        f'[tool.envbuild]\nname = "{name}"\nbase = "{base}"\nsystem-packages = {packages}\n')
    (root / "requirements.in").write_text(deps)
    return root


@pytest.fixture(scope="module")
def apt_cache(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One cache for the module: the archive's lists and the .debs download once."""
    return {"ENVBUILD_CACHE_DIR": str(tmp_path_factory.mktemp("apt") / "cache")}


@pytest.fixture(scope="module")
def jq_project(base_image: str, apt_cache: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = _project(tmp_path_factory.mktemp("jq") / "proj", f"ebt-apt-{uuid.uuid4().hex[:8]}", base_image,
                    '["jq", "python3"]')
    proc = run_cli("lock", cwd=root, env=apt_cache)
    assert proc.returncode == 0, proc.stderr
    return root


@pytest.mark.docker
def test_lock_pins_every_deb_with_the_archive_sha256(jq_project: Path, apt_cache: dict[str, str],
                                                     tmp_path: Path) -> None:
    lock = read_lock(jq_project)
    system = debs.read_system_lock(jq_project)
    plat = system.platforms["linux/amd64"]
    names = [d.name for d in plat.packages]
    assert set(names) == {"jq", "libjq1", "libonig5"} and names[-1] == "jq"  # apt's order: dependencies first
    assert plat.in_base["python3"] and plat.base == lock.base.platforms.get("linux/amd64", lock.base.digest)
    assert lock.system_packages == {d.name: d.version for d in plat.packages}
    assert lock.lockfiles[SYSTEM_PACKAGES_LOCK] == sha256_file(jq_project / SYSTEM_PACKAGES_LOCK)
    cache = Path(apt_cache["ENVBUILD_CACHE_DIR"]) / "debs"
    for d in plat.packages:  # the lock-time download is in the cache, bytes = the signed index's sha256
        assert sha256_file(cache / d.sha256 / d.filename) == d.sha256 and len(d.sha256) == 64
        assert d.url.startswith("http") and d.filename.startswith(d.name + "_")
    assert run_cli("lock", "--check", cwd=jq_project, env=apt_cache).returncode == 0

    # Re-locking the Python side keeps the apt pins byte-identical; a hand edit is stale.
    proj = Path(shutil.copytree(jq_project, tmp_path / "proj"))
    before = (proj / SYSTEM_PACKAGES_LOCK).read_bytes()
    (proj / "requirements.in").write_text("six==1.16.0\nidna==3.7\n")
    proc = run_cli("lock", cwd=proj, env=apt_cache)
    assert proc.returncode == 0, proc.stderr
    assert (proj / SYSTEM_PACKAGES_LOCK).read_bytes() == before
    (proj / SYSTEM_PACKAGES_LOCK).write_text(before.decode().replace(plat.packages[0].sha256, "0" * 64))
    proc = run_cli("lock", "--check", cwd=proj, env=apt_cache)
    assert proc.returncode == 1 and "system-packages.lock was edited by hand" in proc.stderr


@pytest.mark.docker
def test_unknown_package_fails_lock_naming_it(jq_project: Path, apt_cache: dict[str, str], tmp_path: Path) -> None:
    proj = Path(shutil.copytree(jq_project, tmp_path / "proj"))
    before = {n: (proj / n).read_bytes() for n in ("envbuild.lock", SYSTEM_PACKAGES_LOCK)}
    pyproject = proj / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"python3"', '"no-such-package-ebt"'))
    proc = run_cli("lock", cwd=proj, env=apt_cache)
    assert proc.returncode == 2
    assert "no Debian package named 'no-such-package-ebt'" in proc.stderr and "system-packages" in proc.stderr
    assert before == {n: (proj / n).read_bytes() for n in before}


@pytest.mark.docker
def test_build_installs_the_locked_debs_offline(jq_project: Path, apt_cache: dict[str, str], images) -> None:
    proc = run_cli("build", "--json", cwd=jq_project, env=apt_cache)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    images.append(result["ref"])
    locked = read_lock(jq_project).system_packages
    pins = {f"{n}={v}" for n, v in locked.items()}
    assert pins <= set(result["cached"]) and not pins & set(result["downloaded"])  # the lock's download, reused
    run = _docker("run", "--rm", "--network", "none", result["ref"], "sh", "-c",
                  "jq --version && dpkg-query -W -f '${Package} ${Version}\\n' jq libjq1 libonig5 && id -un")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.split("\n")
    assert lines[0] == "jq-" + locked["jq"].split("-")[0].split(":")[-1]
    assert dict(ln.split(" ") for ln in lines[1:4]) == locked and lines[4] == "envbuild"
    # apt ran in a sandbox, envbuild wrote the layer: a rebuild from scratch is bit-identical
    check = run_cli("build", "--check", "--json", cwd=jq_project, env=apt_cache)
    assert check.returncode == 0 and json.loads(check.stdout)["identical"], check.stderr


@pytest.mark.docker
def test_tampered_cached_deb_is_refused_before_building(jq_project: Path, apt_cache: dict[str, str],
                                                         tmp_path: Path) -> None:
    proj = Path(shutil.copytree(jq_project, tmp_path / "proj"))
    pyproject = proj / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('name = "', 'name = "tampered-'))
    env = {"ENVBUILD_CACHE_DIR": str(tmp_path / "cache")}  # a copy: the module's cache stays intact
    shutil.copytree(Path(apt_cache["ENVBUILD_CACHE_DIR"]) / "debs", tmp_path / "cache" / "debs")
    deb = next(d for d in debs.read_system_lock(proj).platforms["linux/amd64"].packages if d.name == "jq")
    cached = tmp_path / "cache" / "debs" / deb.sha256 / deb.filename
    cached.write_bytes(cached.read_bytes()[:-1] + b"x")
    proc = run_cli("build", "--json", cwd=proj, env=env)
    err = proc.stderr.replace("\n", "")
    assert proc.returncode == 1 and proc.stdout == ""
    assert str(cached) in err and deb.sha256 in err and sha256_file(cached) in err
    tag = run_cli("build", "--dockerfile-only", cwd=proj, env=env).stdout.split("-t ", 1)[1].split()[0]
    assert _docker("image", "inspect", tag).returncode != 0  # nothing was built


@pytest.mark.docker
def test_team_base_with_system_packages(base_image: str, apt_cache: dict[str, str], tmp_path: Path, images) -> None:
    uniq = uuid.uuid4().hex[:8]
    team = _project(tmp_path / "team", f"ebt-aptteam-{uniq}", base_image, '["less"]')
    assert run_cli("lock", cwd=team, env=apt_cache).returncode == 0
    proc = run_cli("base", "build", "--push", f"{REGISTRY}/envbuild-test/aptteam-{uniq}:v1", "--json",
                   cwd=team, env=apt_cache)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    images += [out["ref"], out["pushed"]]
    version = read_lock(team).system_packages["less"]
    run = _docker("run", "--rm", "--network", "none", out["ref"], "dpkg-query", "-W", "-f", "${Version}", "less")
    assert run.returncode == 0 and run.stdout == version

    # A project on that base: `less` is in the base already, so apt has nothing to add.
    proj = _project(tmp_path / "proj", f"ebt-aptonteam-{uniq}", out["repo_digest"], '["less"]')
    assert run_cli("lock", cwd=proj, env=apt_cache).returncode == 0
    plat = debs.read_system_lock(proj).platforms["linux/amd64"]
    assert plat.packages == [] and plat.in_base == {"less": version} and read_lock(proj).system_packages == {}


def _edit_jq(proj: Path, **changes: str) -> Deb:
    """Change jq's entry in system-packages.lock and re-hash it into envbuild.lock, as a crafted
    commit would: the lock stays fresh, so only the reader's own checks can refuse it."""
    from envbuild.lockfile import write_lock

    data = json.loads((proj / SYSTEM_PACKAGES_LOCK).read_text())
    entry = next(d for d in data["platforms"]["linux/amd64"]["packages"] if d["name"] == "jq")
    original = Deb(**entry)
    entry.update(changes)
    atomic_write_json(proj / SYSTEM_PACKAGES_LOCK, data)
    lock = read_lock(proj)
    lock.lockfiles[SYSTEM_PACKAGES_LOCK] = sha256_file(proj / SYSTEM_PACKAGES_LOCK)
    write_lock(proj, lock)
    return original


@pytest.mark.docker
def test_deb_filename_from_a_crafted_lock_cannot_escape_the_cache(jq_project: Path, tmp_path: Path) -> None:
    proj = Path(shutil.copytree(jq_project, tmp_path / "proj"))
    payload = tmp_path / "payload.deb"
    payload.write_bytes(b"written outside the cache")
    _edit_jq(proj, filename="../../../escaped.deb", url=payload.as_uri(), sha256=sha256_file(payload))
    proc = run_cli("build", cwd=proj, env={"ENVBUILD_CACHE_DIR": str(tmp_path / "cache")})
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.replace("\n", "")
    assert SYSTEM_PACKAGES_LOCK in err and "packages[" in err and ".filename" in err and "'../../../escaped.deb'" in err
    assert "restore it from git or run envbuild lock --upgrade" in err and "Traceback" not in proc.stderr
    assert not (tmp_path / "escaped.deb").exists() and not list(tmp_path.rglob("escaped.deb"))


@pytest.mark.docker
def test_deb_download_cut_short_leaves_no_temp_file(jq_project: Path, apt_cache: dict[str, str],
                                                    tmp_path: Path) -> None:
    import http.server
    import socket
    import struct
    import threading

    class CutShort(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # promises 1 MB, sends 10 bytes, resets the connection
            self.send_response(200)
            self.send_header("Content-Length", str(1 << 20))
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), CutShort)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        proj = Path(shutil.copytree(jq_project, tmp_path / "proj"))
        jq = _edit_jq(proj, url=f"http://127.0.0.1:{server.server_port}/jq.deb")
        cache = tmp_path / "cache"
        shutil.copytree(Path(apt_cache["ENVBUILD_CACHE_DIR"]) / "debs", cache / "debs")
        shutil.rmtree(cache / "debs" / jq.sha256)  # jq alone is downloaded, and cut short
        proc = run_cli("build", cwd=proj, env={"ENVBUILD_CACHE_DIR": str(cache)})
    finally:
        server.shutdown()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert f"{jq}: cannot download" in proc.stderr.replace("\n", "")
    assert not [p.name for p in (cache / "debs").iterdir() if not (p / "SHA256SUMS").exists() and p.is_file()]
    assert not list((cache / "debs").glob("fetch-*")) and not (cache / "debs" / jq.sha256).exists()
