"""``maild web``'s category catalogue (issue 15, its first part), over real HTTP from the real
process: every category of both departments from rules/, escaped, in Russian, with headers
that allow nothing else, and an admin's edit shown without a restart."""
from __future__ import annotations

import html
import os
import socket
import subprocess
import time

from maild.deciding.policy import load_policy

from conftest import MAILD, PROJECT, free_port, http_get


def test_every_category_of_both_departments_with_what_people_choose_by(web):
    base, rules = web
    status, headers, page = http_get(base + "/categories")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert '<html lang="ru">' in page and 'name="viewport"' in page and "<script" not in page
    org = load_policy(rules, PROJECT / "templates").org
    assert len(org.departments) == 2
    for department in org.departments:
        assert html.escape(department.name) in page and department.address in page
        assert department.categories, department.code
        for category in department.categories:
            assert f"<strong>{html.escape(category.name)}</strong>" in page
            assert html.escape(category.description) in page
            assert f"{department.local_part}+{category.tag}@{department.domain}" in page
    assert "Категория: " in page and "неисправность" in page and "запрос" in page


def test_headers_allow_nothing_but_the_page_and_refusals_are_russian(web):
    base, _ = web
    for path, method, code in (("/categories", "GET", 200), ("/nope", "GET", 404), ("/categories", "POST", 405)):
        status, headers, page = http_get(base + path, method)
        assert status == code, (path, method)
        assert headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin" and headers["Server"] == "maild"
        if code != 200:
            assert "Not Found" not in page and "Method Not Allowed" not in page
            assert ("Страница не найдена" if code == 404 else "Так эту страницу открыть нельзя") in page
    assert "GET" in http_get(base + "/categories", "POST")[1]["Allow"]


def _raw(base: str, request: bytes) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def test_broken_requests_get_an_answer_and_one_log_line_not_a_traceback(web, tmp_path):
    """What a stranger's tool sends: a form in a charset nobody knows or not UTF-8, a header
    too long, a garbage request line. The fixture fails on any Traceback in the log."""
    base, _ = web
    for body, kind in ((b"a=b", "application/x-www-form-urlencoded; charset=x-bogus"),
                       (b"\xff\xfe=\xff", "application/x-www-form-urlencoded")):
        for path in ("/", "/my", "/my/leave"):
            answer = _raw(base, f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {kind}\r\n"
                                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
            head, _, page = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 4") and b"Content-Security-Policy" in head, answer[:300]
            assert "Форма" in page.decode("utf-8"), page[:300]
    for request in (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"A" * 9000 + b"\r\n\r\n", b"GARBAGE\r\n\r\n",
                    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"):
        assert _raw(base, request).split(b" ", 2)[1] == b"400"
    assert http_get(base + "/categories")[0] == 200          # and the pages go on


def test_an_admins_edit_shows_without_a_restart_and_is_text_not_markup(web):
    base, rules = web
    path = rules / "departments" / "OSA.toml"
    text = path.read_text(encoding="utf-8")
    old = next(line for line in text.splitlines() if line.startswith("description = "))
    path.write_text(text.replace(old, 'description = "Печать <script>alert(1)</script> & сканирование"', 1),
                    encoding="utf-8")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        page = http_get(base + "/categories")[2]
        if "alert(1)" in page:
            break
        time.sleep(0.3)
    assert "Печать &lt;script&gt;alert(1)&lt;/script&gt; &amp; сканирование" in page
    assert "<script>" not in page


def test_a_taken_port_is_one_sentence(tmp_path):
    import socket
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        result = subprocess.run([str(MAILD), "web", "--listen", f"127.0.0.1:{port}"], capture_output=True,
                                timeout=30, cwd=tmp_path)
    assert result.returncode == 75 and f"cannot listen on 127.0.0.1:{port}" in result.stderr.decode()
    assert "Traceback" not in result.stderr.decode()
    bad = subprocess.run([str(MAILD), "web", "--listen", "nonsense"], capture_output=True, timeout=30, cwd=tmp_path)
    assert bad.returncode == 78 and "web.listen" in bad.stderr.decode()


def _wait(check, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def test_serve_with_web_serves_the_pages_and_restarts_a_dead_web_child(tmp_path):
    smtp, port = free_port(), free_port()
    config = tmp_path / "maild.toml"
    config.write_text(f'[web]\nlisten = "127.0.0.1:{port}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILD_")}
    with open(tmp_path / "serve.log", "w+") as log:
        proc = subprocess.Popen([str(MAILD), "--config", str(config), "serve", "--web", "--smtp", f"127.0.0.1:{smtp}"],
                                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}/categories"
    try:
        assert _wait(lambda: http_get(url)[0] == 200), (tmp_path / "serve.log").read_text()
        said = (tmp_path / "serve.log").read_text()
        assert f"the employees' pages are at http://127.0.0.1:{port}/" in said
        [web_pid] = [int(line.rsplit("pid ", 1)[1].rstrip(")")) for line in said.splitlines()
                     if "web started (pid" in line]
        os.kill(web_pid, 9)
        assert _wait(lambda: "web exited" in (tmp_path / "serve.log").read_text())
        assert _wait(lambda: http_get(url)[0] == 200)         # on the same socket, bound by serve
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert proc.returncode == 0 and "Traceback" not in (tmp_path / "serve.log").read_text()


def test_serve_says_so_when_the_web_port_is_taken(tmp_path):
    import socket
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        config = tmp_path / "maild.toml"
        config.write_text(f'[web]\nenabled = true\nlisten = "127.0.0.1:{port}"\n')
        result = subprocess.run([str(MAILD), "--config", str(config), "serve", "--smtp", f"127.0.0.1:{free_port()}"],
                                capture_output=True, timeout=60, cwd=tmp_path)
    err = result.stderr.decode()
    assert result.returncode == 75 and f"cannot listen for the web pages on 127.0.0.1:{port}" in err, err
    assert "Traceback" not in err


def test_without_aiohttp_serve_web_says_how_to_install_it_and_stops(tmp_path):
    """What a checkout installed before aiohttp was a dependency meets: one sentence at start,
    not a web child failing every second."""
    shim = tmp_path / "shim" / "aiohttp"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('not installed', name='aiohttp')\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILD_")}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "shim"), str(PROJECT)])
    for command in (["serve", "--web", "--smtp", f"127.0.0.1:{free_port()}"], ["web"]):
        result = subprocess.run([str(MAILD), *command], env=env, capture_output=True, timeout=60, cwd=tmp_path)
        err = result.stderr.decode()
        assert result.returncode == 78 and "'aiohttp'" in err and "make install" in err, err
        assert "Traceback" not in err
