"""Fetching the raw zip: the real kaggle package against a loopback mock of the Kaggle API,
the local-archive copy, the offline digits zip, and the zip integrity / zip-slip checks."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from support.zipfactory import add_symlink, layout_dataset, solid_dataset, write_folder, write_zip

from hpstudy.cli import main as cli_main
from hpstudy.core.errors import HpstudyError
from hpstudy.data.content import DigestCache, zip_content_digest
from hpstudy.data.fetch import folder_digest, pack_folder, write_digits_zip
from hpstudy.data.preprocess import preprocess_archive
from hpstudy.data.zip_checks import safe_members, verify_zip

USER, KEY, TOKEN = "tester", "KEY-s3cr3t-7f3a9c", "TOKEN-s3cr3t-b51e08"
DATASET = "puneet6060/intel-image-classification"
BLOB = "/blob/intel-image-classification.zip"

# Run in a child process: importing kaggle reads the environment and authenticates. The
# endpoint of kaggle's "local" environment is pointed at the mock, and the retry back-off
# is skipped so that a download cut short fails in well under a second.
RUNNER = """
import sys, time
import kagglesdk.kaggle_env as kaggle_env
kaggle_env._env_to_endpoint[kaggle_env.KaggleEnv.LOCAL] = sys.argv[1]
time.sleep = lambda seconds: None
from hpstudy.cli import main
raise SystemExit(main(sys.argv[2:]))
"""


class MockKaggle(BaseHTTPRequestHandler):
    """The two Kaggle API calls a dataset download makes, plus the storage redirect target."""

    body: bytes = b""
    mode: str = "good"  # good | reject (401) | short (always cut) | short-once
    log: list

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _send(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _json(self, status: int, obj: dict) -> None:
        self._send(status, json.dumps(obj).encode(), {"Content-Type": "application/json"})

    def _authorised(self) -> bool:
        basic = "Basic " + base64.b64encode(f"{USER}:{KEY}".encode()).decode()
        return self.headers.get("Authorization") in (basic, f"Bearer {TOKEN}")

    def do_POST(self):  # noqa: N802 - http.server's naming
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        self.log.append(("POST", self.path, None))
        if self.path.endswith("/security.OAuthService/IntrospectToken"):
            if self.mode == "reject":
                return self._json(401, {"code": 401, "message": "Unauthenticated"})
            active = request.get("token") == TOKEN
            return self._json(200, {"active": active, "username": USER if active else ""})
        if not self.path.endswith("/datasets.DatasetApiService/DownloadDataset"):
            return self._json(404, {"code": 404, "message": "Not found"})
        if self.mode == "reject" or not self._authorised():
            return self._json(401, {"code": 401, "message": "Unauthenticated"})
        self._send(302, b"", {"Location": BLOB, "Content-Length": "0"})

    def do_GET(self):  # noqa: N802
        ranged = self.headers.get("Range")
        self.log.append(("GET", self.path, ranged))
        start = int(re.match(r"bytes=(\d+)-", ranged).group(1)) if ranged else 0
        first_get = sum(entry[0] == "GET" for entry in self.log) == 1
        cut = self.mode == "short" or (self.mode == "short-once" and first_get)
        remaining = self.body[start:]
        headers = {"Content-Length": str(len(remaining)), "Accept-Ranges": "bytes", "ETag": '"v1"'}
        if ranged:
            headers["Content-Range"] = f"bytes {start}-{len(self.body) - 1}/{len(self.body)}"
        self._send(
            206 if ranged else 200, remaining[: len(remaining) // 3] if cut else remaining, headers
        )
        if cut:
            self.close_connection = True


@pytest.fixture
def kaggle_server(tmp_path):
    """A mock Kaggle API on 127.0.0.1 serving a small Kaggle-layout zip."""
    body = write_zip(tmp_path / "served.zip", solid_dataset(pred=2)).read_bytes()
    handler = type("Handler", (MockKaggle,), {"body": body, "log": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def run_kaggle_fetch(url: str, project: Path, credentials: dict[str, str]):
    """``hpstudy fetch --source kaggle`` in a child process with only ``credentials`` set."""
    home = project / "home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE_")}
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "XDG_CONFIG_HOME"):
        env.pop(name, None)
    env.update(HOME=str(home), KAGGLE_API_ENVIRONMENT="LOCALHOST", NO_PROXY="127.0.0.1")
    env.update(credentials)
    argv = ["fetch", "--source", "kaggle", "--out", "data/raw/intel.zip"]
    return subprocess.run(
        [sys.executable, "-c", RUNNER, url, *argv],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_no_secret(result, project: Path) -> None:
    text = result.stdout + result.stderr
    assert KEY not in text and TOKEN not in text
    assert base64.b64encode(f"{USER}:{KEY}".encode()).decode() not in text
    for path in (project / "data").rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes()


def kaggle_json(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kaggle.json").write_text(json.dumps({"username": USER, "key": KEY}))
    (folder / "kaggle.json").chmod(0o600)


@pytest.mark.parametrize("form", ["env-key", "config-dir", "home-kaggle-json", "api-token"])
def test_kaggle_download_with_each_credential_form(tmp_path, kaggle_server, form):
    handler, url = kaggle_server
    credentials = {
        "env-key": {"KAGGLE_USERNAME": USER, "KAGGLE_KEY": KEY},
        "config-dir": {"KAGGLE_CONFIG_DIR": str(tmp_path / "cfg")},
        "home-kaggle-json": {},
        "api-token": {"KAGGLE_API_TOKEN": TOKEN},
    }[form]
    if form == "config-dir":
        kaggle_json(tmp_path / "cfg")
    if form == "home-kaggle-json":
        kaggle_json(tmp_path / "home" / ".kaggle")
    result = run_kaggle_fetch(url, tmp_path, credentials)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # kaggle's own prints go to the log (stderr)
    raw = tmp_path / "data" / "raw"
    assert (raw / "intel.zip").read_bytes() == handler.body
    sidecar = json.loads((raw / "intel.json").read_text())
    assert sidecar["source"] == "kaggle" and sidecar["name"] == "intel"
    assert sidecar["sha256"] == hashlib.sha256(handler.body).hexdigest()
    assert sidecar["size_bytes"] == len(handler.body)
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["raw"]  # no temp left
    introspected = any(path.endswith("IntrospectToken") for _, path, _ in handler.log)
    assert introspected == (form == "api-token")
    assert_no_secret(result, tmp_path)


def test_kaggle_without_credentials_fails_cleanly(tmp_path, kaggle_server):
    handler, url = kaggle_server
    result = run_kaggle_fetch(url, tmp_path, {})
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hpstudy: error:")
    for form in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY", "kaggle.json"):
        assert form in result.stderr
    assert "dataset.source: archive" in result.stderr and "dataset.archive" in result.stderr
    assert handler.log == []  # the client found nothing to try: no request was made
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    "credentials", [{"KAGGLE_USERNAME": USER, "KAGGLE_KEY": KEY}, {"KAGGLE_API_TOKEN": TOKEN}]
)
def test_kaggle_rejected_credentials(tmp_path, kaggle_server, credentials):
    handler, url = kaggle_server
    handler.mode = "reject"
    result = run_kaggle_fetch(url, tmp_path, credentials)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert "HTTP 401" in result.stderr and "rejected the credentials" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data" / "raw").exists()
    assert_no_secret(result, tmp_path)


def test_kaggle_inactive_token_is_one_clear_error(tmp_path, kaggle_server):
    handler, url = kaggle_server
    result = run_kaggle_fetch(url, tmp_path, {"KAGGLE_API_TOKEN": "expired-token"})
    assert result.returncode == 1 and result.stdout == ""
    assert "a token it found was not accepted as active" in result.stderr
    assert any(path.endswith("IntrospectToken") for _, path, _ in handler.log)  # kaggle asked
    assert "Authentication required" not in result.stderr  # kaggle's help text is swallowed
    assert not (tmp_path / "data" / "raw").exists()


def test_kaggle_body_cut_short_fails_and_leaves_nothing_in_raw(tmp_path, kaggle_server):
    handler, url = kaggle_server
    handler.mode = "short"
    result = run_kaggle_fetch(url, tmp_path, {"KAGGLE_USERNAME": USER, "KAGGLE_KEY": KEY})
    assert result.returncode == 1
    assert "cut short" in result.stderr and "Traceback" not in result.stderr
    assert any(ranged for _, _, ranged in handler.log)  # kaggle did try to resume
    assert not (tmp_path / "data" / "raw").exists()
    assert_no_secret(result, tmp_path)


def test_kaggle_download_cut_once_is_resumed(tmp_path, kaggle_server):
    handler, url = kaggle_server
    handler.mode = "short-once"
    result = run_kaggle_fetch(url, tmp_path, {"KAGGLE_USERNAME": USER, "KAGGLE_KEY": KEY})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "raw" / "intel.zip").read_bytes() == handler.body


def test_importing_fetch_does_not_import_kaggle():
    code = "import sys, hpstudy.data.fetch, hpstudy.cli; print('kaggle' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False"


# --------------------------------------------------------------------------- digits


def test_digits_zip_is_deterministic_and_in_kaggle_layout(tmp_path):
    first = tmp_path / "a.zip"
    counts = write_digits_zip(first, test_fraction=0.2, seed=0)
    write_digits_zip(tmp_path / "b.zip", test_fraction=0.2, seed=0)
    assert first.read_bytes() == (tmp_path / "b.zip").read_bytes()
    assert counts == {"train": 1437, "test": 360}
    with zipfile.ZipFile(first) as zf:
        names = zf.namelist()
    assert len(names) == 1797
    pattern = re.compile(r"seg_(train|test)/seg_\1/digit_(\d)/\d{4}\.jpg")
    assert all(pattern.fullmatch(name) for name in names)
    test_names = [name for name in names if name.startswith("seg_test/")]
    per_class = np.bincount([int(name.split("/")[2][-1]) for name in test_names])
    assert per_class.min() >= 35 and per_class.max() <= 37  # stratified: 20% of ~180 each
    write_digits_zip(tmp_path / "c.zip", test_fraction=0.2, seed=1)
    assert (tmp_path / "c.zip").read_bytes() != first.read_bytes()


def test_digits_images_are_the_real_digits(tmp_path):
    from sklearn.datasets import load_digits

    zip_path = tmp_path / "digits.zip"
    write_digits_zip(zip_path)
    manifest = preprocess_archive(zip_path, tmp_path / "out", size=8)
    assert manifest["classes"] == [f"digit_{d}" for d in range(10)]
    assert manifest["resized"] == 0 and manifest["skipped"] == []
    x = np.load(tmp_path / "out" / "test_x.npy")
    y = np.load(tmp_path / "out" / "test_y.npy")
    with zipfile.ZipFile(zip_path) as zf:
        indices = [int(n[-8:-4]) for n in sorted(zf.namelist()) if n.startswith("seg_test/")]
    digits = load_digits()
    assert y.tolist() == digits.target[indices].tolist()
    expected = digits.images[indices] * (255 / 16)
    assert np.abs(x[..., 0] - expected).mean() < 4  # JPEG quality 95 on 8x8 images
    assert np.array_equal(x[..., 0], x[..., 2])  # grayscale became RGB


def test_cli_fetch_digits_writes_sidecar(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli_main(["fetch", "--source", "digits", "--out", "data/raw/digits.zip"]) == 0
    sidecar = json.loads(Path("data/raw/digits.json").read_text())
    data = Path("data/raw/digits.zip").read_bytes()
    assert sidecar["name"] == "digits" and sidecar["source"] == "digits"
    assert sidecar["size_bytes"] == len(data)
    assert sidecar["sha256"] == hashlib.sha256(data).hexdigest()
    assert sidecar["images"] == {"train": 1437, "test": 360}


# --------------------------------------------------------------------------- archive


def test_archive_is_copied_with_sidecar(tmp_path, monkeypatch):
    source = write_zip(tmp_path / "download.zip", solid_dataset())
    monkeypatch.chdir(tmp_path)
    argv = ["fetch", "--source", "archive", "--archive", str(source), "--out", "data/raw/i.zip"]
    assert cli_main(argv) == 0
    assert Path("data/raw/i.zip").read_bytes() == source.read_bytes()
    sidecar = json.loads(Path("data/raw/i.json").read_text())
    assert sidecar["source"] == "archive" and sidecar["archive"] == str(source)
    assert sidecar["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert sorted(p.name for p in Path("data/raw").iterdir()) == ["i.json", "i.zip"]


def corrupt_copies(tmp_path: Path) -> dict[str, Path]:
    """A truncated zip, a zip with a flipped byte in a member, and a non-zip file."""
    good = write_zip(tmp_path / "good.zip", solid_dataset())
    data = bytearray(good.read_bytes())
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(bytes(data[: len(data) * 2 // 3]))
    with zipfile.ZipFile(good) as zf:
        info = zf.infolist()[0]
    # Flip a byte inside the first member's compressed data (after its local header).
    data[info.header_offset + 30 + len(info.filename) + 10] ^= 0xFF
    flipped = tmp_path / "flipped.zip"
    flipped.write_bytes(bytes(data))
    text = tmp_path / "text.zip"
    text.write_text("<html>Please sign in</html>")
    return {"truncated": truncated, "flipped": flipped, "text": text}


@pytest.mark.parametrize("kind", ["truncated", "flipped", "text"])
def test_corrupt_archive_is_refused_with_its_name_and_fix(tmp_path, monkeypatch, capsys, kind):
    bad = corrupt_copies(tmp_path)[kind]
    with pytest.raises(HpstudyError, match="delete it and rerun") as err:
        verify_zip(bad)
    assert str(bad) in str(err.value)
    monkeypatch.chdir(tmp_path)
    argv = ["fetch", "--source", "archive", "--archive", str(bad), "--out", "data/raw/x.zip"]
    assert cli_main(argv) == 1
    captured = capsys.readouterr()
    assert str(bad) in captured.err and captured.out == "" and "Traceback" not in captured.err
    assert not Path("data/raw/x.zip").exists() and not Path("data/raw/x.json").exists()


def test_missing_archive_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["fetch", "--source", "archive", "--archive", "nowhere.zip", "--out", "data/raw/x.zip"]
    assert cli_main(argv) == 1
    err = capsys.readouterr().err
    assert "nowhere.zip" in err and "dataset.archive" in err
    assert not Path("data").exists()


# --------------------------------------------------------------------------- folder


def image_folder(root: Path) -> Path:
    """A train/test folder of images plus the noise a copied folder carries."""
    write_folder(root, layout_dataset("train-test", {"train": 2, "test": 1}))
    write_folder(root, [(".DS_Store", b"Bud1"), ("train/.hidden.jpg", b"x"),
                        ("__MACOSX/train/._a.jpg", b"x"), (".git/config", b"[core]")])  # fmt: skip
    return root


def test_folder_packs_into_a_deterministic_zip(tmp_path):
    folder = image_folder(tmp_path / "images")
    count = pack_folder(folder, tmp_path / "a.zip")
    for path in folder.rglob("*"):  # other times and modes: the same bytes
        os.utime(path, ns=(2_000_000_000_000_000_000, 2_000_000_000_000_000_000))
    (folder / "train" / "forest" / "train-00.jpg").chmod(0o600)
    pack_folder(folder, tmp_path / "b.zip")
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.zip") as zf:
        infos = zf.infolist()
        names = [info.filename for info in infos]
        assert (
            zf.read("test/buildings/test-00.jpg")
            == (folder / "test" / "buildings" / "test-00.jpg").read_bytes()
        )
    assert count == len(names) == 9 and names == sorted(names)
    assert all(not name.startswith((".", "__MACOSX")) and "/." not in name for name in names)
    assert {info.compress_type for info in infos} == {zipfile.ZIP_STORED}
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip", "b.zip", "images"]


def test_cli_fetch_folder_and_archive_folder_write_sidecars(tmp_path, monkeypatch):
    folder = image_folder(tmp_path / "images")
    monkeypatch.chdir(tmp_path)
    assert cli_main(["fetch", "--source", "folder", "--path", str(folder),
                     "--out", "data/raw/f.zip"]) == 0  # fmt: skip
    assert cli_main(["fetch", "--source", "archive", "--archive", str(folder),
                     "--out", "data/raw/a.zip"]) == 0  # fmt: skip
    data = Path("data/raw/f.zip").read_bytes()
    assert Path("data/raw/a.zip").read_bytes() == data
    sidecar = json.loads(Path("data/raw/f.json").read_text())
    assert sidecar["source"] == "folder" and sidecar["path"] == str(folder)
    assert sidecar["sha256"] == hashlib.sha256(data).hexdigest() and sidecar["members"] == 9
    assert json.loads(Path("data/raw/a.json").read_text())["archive"] == str(folder)
    manifest = preprocess_archive("data/raw/f.zip", "data/processed/f-16", 16)
    assert manifest["layout"] == "train-test" and manifest["splits"]["train"]["count"] == 6


@pytest.mark.parametrize("problem", ["missing", "empty", "file", "symlink", "no-path"])
@pytest.mark.parametrize("source", ["folder", "archive"])
def test_folder_problems_are_one_paragraph_naming_the_setting(
    tmp_path, monkeypatch, capsys, source, problem
):
    target = tmp_path / "images"
    if problem == "empty":
        write_folder(target, [(".DS_Store", b"x"), ("__MACOSX/._a.jpg", b"x")])
    elif problem == "file":
        target.write_text("not a folder")
    elif problem == "symlink":
        image_folder(target)
        (target / "train" / "forest" / "link.jpg").symlink_to("/etc/hostname")
    monkeypatch.chdir(tmp_path)
    option = "--path" if source == "folder" else "--archive"
    argv = ["fetch", "--source", source, "--out", "data/raw/x.zip"]
    argv += [] if problem == "no-path" else [option, str(target)]
    assert cli_main(argv) == 1
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hpstudy: error:") and "Traceback" not in err
    expected = {"missing": "does not exist", "empty": "holds no files", "symlink": "symbolic link",
                "file": "is not a folder", "no-path": "needs"}[problem]  # fmt: skip
    if source == "archive" and problem == "file":  # a file is taken as a zip
        assert "not a readable zip" in err and str(target) in err
    else:
        assert expected in err
        assert ("dataset.path" if source == "folder" else "dataset.archive") in err
    assert not Path("data/raw/x.zip").exists() and not Path("data/raw/x.json").exists()


def test_folder_digest_follows_contents_not_times_or_places(tmp_path):
    folder = image_folder(tmp_path / "images")
    first = folder_digest(folder)
    assert folder_digest(folder) == first and len(first) == 64
    (folder / ".DS_Store").write_bytes(b"changed noise")  # hidden: not packed, not counted
    image = folder / "test" / "forest" / "test-00.jpg"
    stat = image.stat()
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))  # touched
    assert folder_digest(folder) == first
    copy = shutil.copytree(folder, tmp_path / "copy", copy_function=shutil.copy)  # new times
    assert folder_digest(copy) == first
    # the zip packed from it has the same content digest
    pack_folder(folder, tmp_path / "packed.zip")
    assert zip_content_digest(tmp_path / "packed.zip", DigestCache()) == first
    data = bytearray(image.read_bytes())
    data[-3] ^= 0xFF  # one byte changed, size and time kept
    image.write_bytes(bytes(data))
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    changed = folder_digest(folder)
    assert changed != first
    (folder / "test" / "forest" / "extra.jpg").write_bytes(b"x")
    assert folder_digest(folder) not in (first, changed)
    with pytest.raises(HpstudyError, match="dataset.path"):
        folder_digest(tmp_path / "nowhere")


def unreadable_file(path: Path, monkeypatch) -> None:
    """Make ``path`` unreadable: chmod 000, and where that binds no one (root) make opening it
    fail the way it then fails for everyone else."""
    path.chmod(0)
    if os.geteuid() == 0:
        real_open = open

        def refusing_open(file, *args, **kwargs):
            if Path(file) == path:
                raise PermissionError(13, "Permission denied", str(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr("builtins.open", refusing_open)


@pytest.mark.parametrize("step", ["digest", "fetch"])
def test_an_unreadable_image_is_one_paragraph_naming_it(tmp_path, monkeypatch, capsys, step):
    folder = image_folder(tmp_path / "images")
    image = folder / "train" / "forest" / "train-00.jpg"
    monkeypatch.chdir(tmp_path)
    unreadable_file(image, monkeypatch)
    if step == "digest":
        with pytest.raises(HpstudyError) as err:
            folder_digest(folder)
        message = str(err.value)
    else:
        argv = ["fetch", "--source", "folder", "--path", str(folder), "--out", "data/raw/x.zip"]
        assert cli_main(argv) == 1
        message = capsys.readouterr().err
        assert message.startswith("hpstudy: error:") and len(message.strip().splitlines()) == 1
        assert not Path("data/raw/x.zip").exists()
    assert str(image) in message and "cannot be read" in message and "dataset.path" in message
    assert "chmod a+r" in message and "Traceback" not in message


# --------------------------------------------------------------------------- zip-slip


@pytest.mark.parametrize(
    "name",
    ["../evil.jpg", "a/../../evil.jpg", "/abs/evil.jpg", "a\\..\\..\\evil.jpg", "C:\\evil.jpg"],
)
def test_safe_members_refuses_escaping_names(tmp_path, name):
    zip_path = write_zip(tmp_path / "slip.zip", [("seg_train/ok.jpg", b"x"), (name, b"x")])
    with zipfile.ZipFile(zip_path) as zf, pytest.raises(HpstudyError, match="zip-slip"):
        safe_members(zf)


def test_safe_members_refuses_symlinks_and_accepts_normal_names(tmp_path):
    zip_path = write_zip(tmp_path / "ok.zip", solid_dataset())
    with zipfile.ZipFile(zip_path) as zf:
        assert len(safe_members(zf)) == len(zf.infolist())
    add_symlink(zip_path, "seg_train/seg_train/forest/x.jpg", "../../../../etc/passwd")
    with zipfile.ZipFile(zip_path) as zf, pytest.raises(HpstudyError, match="symbolic link"):
        safe_members(zf)
