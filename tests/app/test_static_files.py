"""The stylesheet, script and icon travel gzipped to a browser that accepts it (nnote.static_files):
with a domain of its own the load balancer serves the app directly, and behind CloudFront's
caching-disabled policy CloudFront compresses nothing either."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from nnote import static_files

GZIP = {"Accept-Encoding": "gzip, deflate, br"}
STATIC = Path(static_files.__file__).parent / "static"


@pytest.mark.parametrize("name", ["style.css", "app.js", "favicon.svg"])
def test_a_browser_that_accepts_gzip_gets_the_file_gzipped(client: FlaskClient, name: str) -> None:
    response = client.get(f"/static/{name}", headers=GZIP)
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(response.data) == (STATIC / name).read_bytes()
    assert "Accept-Encoding" in response.vary
    assert int(response.headers["Content-Length"]) == len(response.data)


def test_the_stylesheet_and_script_are_a_third_of_their_size(client: FlaskClient) -> None:
    for name in ("style.css", "app.js"):
        sent = len(client.get(f"/static/{name}", headers=GZIP).data)
        assert sent < (STATIC / name).stat().st_size * 0.5, name


def test_a_browser_that_does_not_gets_the_file_as_it_is(client: FlaskClient) -> None:
    for headers in ({}, {"Accept-Encoding": "gzip;q=0, identity"}):
        response = client.get("/static/style.css", headers=headers)
        assert "Content-Encoding" not in response.headers
        assert response.data == (STATIC / "style.css").read_bytes()
        assert "Accept-Encoding" in response.vary, "a cache must keep the two apart"


def test_each_form_revalidates_with_its_own_etag(client: FlaskClient) -> None:
    packed = client.get("/static/app.js", headers=GZIP)
    plain = client.get("/static/app.js")
    assert packed.headers["ETag"] != plain.headers["ETag"]
    again = client.get("/static/app.js", headers={**GZIP, "If-None-Match": packed.headers["ETag"]})
    assert again.status_code == 304
    other = client.get("/static/app.js", headers={**GZIP, "If-None-Match": plain.headers["ETag"]})
    assert other.status_code == 200 and other.headers["Content-Encoding"] == "gzip"


@pytest.mark.parametrize("path", ["/static/nothing.css", "/static/../__init__.py"])
def test_what_is_not_there_is_not_found(client: FlaskClient, path: str) -> None:
    assert client.get(path, headers=GZIP).status_code == 404


def test_a_changed_file_is_compressed_again(app: Flask, tmp_path: Path) -> None:
    folder = tmp_path / "static"
    shutil.copytree(STATIC, folder)
    app.static_folder = str(folder)
    client = app.test_client()
    first = client.get("/static/app.js", headers=GZIP).data
    assert gzip.decompress(first) == (STATIC / "app.js").read_bytes()
    (folder / "app.js").write_text("// changed\n")
    os.utime(folder / "app.js", (1, 1))
    assert gzip.decompress(client.get("/static/app.js", headers=GZIP).data) == b"// changed\n"


def test_a_folder_named_like_a_file_is_not_found(app: Flask, tmp_path: Path) -> None:
    folder = tmp_path / "static"
    (folder / "odd.css").mkdir(parents=True)
    app.static_folder = str(folder)
    assert app.test_client().get("/static/odd.css", headers=GZIP).status_code == 404
