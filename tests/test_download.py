"""The PTB download path against a loopback HTTP server, and every way it can go wrong."""

import hashlib
import http.server
import socket
import threading
import zipfile

import pytest

from w2v_jax import data


@pytest.fixture
def serve():
    """serve(body) -> URL of a loopback server answering every GET with ``body``."""
    servers = []

    def start(body: bytes) -> str:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/ptb.zip"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/ptb.zip"


def test_download_checks_the_checksum_and_moves_the_file_in(tmp_path, serve, ptb_zip_bytes):
    path = data.ptb.fetch_ptb(tmp_path / "cache", url=serve(ptb_zip_bytes))
    assert path == tmp_path / "cache" / "ptb.zip"
    assert hashlib.sha1(path.read_bytes()).hexdigest() == data.ptb.PTB_SHA1
    assert sorted(p.name for p in path.parent.iterdir()) == ["ptb.zip"]
    assert data.ptb.read_zip_text(path).startswith(" aer banknote")


def test_download_with_wrong_checksum_is_discarded(tmp_path, serve, ptb_zip_bytes):
    with pytest.raises(data.CorpusError, match="sha1 .* expected 319d85e5.*discarded"):
        data.ptb.fetch_ptb(tmp_path, url=serve(ptb_zip_bytes[:-100] + b"x" * 100))
    assert list(tmp_path.iterdir()) == [], "neither the bad file nor a temporary one is left"


def test_offline_error_names_address_checksum_and_directory(tmp_path):
    url = closed_port_url()
    with pytest.raises(data.CorpusError) as err:
        data.ptb.fetch_ptb(tmp_path / "data", url=url)
    message = str(err.value)
    assert url in message and data.ptb.PTB_SHA1 in message and str(tmp_path / "data") in message
    assert "W2V_JAX_DATA" in message
    assert not (tmp_path / "data" / "ptb.zip").exists()


def test_existing_file_with_wrong_checksum_is_not_used(tmp_path):
    (tmp_path / "ptb.zip").write_bytes(b"not the archive")
    with pytest.raises(data.CorpusError, match="is not used"):
        data.ptb.read_ptb(tmp_path)


def test_corrupt_zip_is_a_clear_error(tmp_path, ptb_zip_bytes):
    path = tmp_path / "ptb.zip"
    path.write_bytes(ptb_zip_bytes[: len(ptb_zip_bytes) // 2])
    with pytest.raises(data.CorpusError, match="not a readable corpus archive"):
        data.ptb.read_zip_text(path)
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(data.CorpusError, match="ptb/ptb.train.txt"):
        data.ptb.read_zip_text(other)


def test_data_directory_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv(data.ptb.DATA_ENV_VAR, str(tmp_path / "env"))
    assert data.ptb.resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert data.ptb.resolve_data_dir() == tmp_path / "env"
    monkeypatch.delenv(data.ptb.DATA_ENV_VAR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data.ptb.resolve_data_dir() == tmp_path / "cache" / "w2v_jax"


def test_the_main_job_offline_is_one_line_and_leaves_no_workdir(tmp_path, monkeypatch, capsys):
    from experiments import ptb_skipgram

    url = closed_port_url()
    monkeypatch.setattr(data.ptb.fetch_ptb, "__defaults__", (None, url, data.ptb.PTB_SHA1))
    monkeypatch.setenv("W2V_JAX_CACHE", str(tmp_path / "cache"))
    workdir = tmp_path / "run"
    with pytest.raises(SystemExit) as raised:
        ptb_skipgram.main(["--data-dir", str(tmp_path / "data"), "--workdir", str(workdir)])
    message = str(raised.value)
    assert message.startswith(f"error: could not download {url}") and "\n" not in message
    assert "--data-dir" in message and not workdir.exists()
