"""The memoized url_for of the templates gives exactly Flask's answers."""

from __future__ import annotations

from flask import Flask, url_for

from nnote.links import cached_url_for


def test_cached_links_match_url_for_under_any_prefix(app: Flask) -> None:
    cases = [
        ("notes.index", {}),
        ("notes.index", {"before": 7, "q": "a b&c"}),
        ("static", {"filename": "style.css"}),
        ("auth.login", {"next": "/notes/3/edit"}),
    ]
    for prefix in ("", "/nnote", "/other"):
        with app.test_request_context("/", base_url=f"http://localhost{prefix}/"):
            for endpoint, values in cases:
                expected = url_for(endpoint, **values)
                assert cached_url_for(endpoint, **values) == expected
                assert cached_url_for(endpoint, **values) == expected  # from the cache
                assert expected.startswith(prefix + "/")
            assert cached_url_for("notes.index", _external=True).startswith("http://")
