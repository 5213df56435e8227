"""`logos generate --url` prints the server it loaded from: never with user:password or query values."""

from engine.cli.generate import _shown_url


def test_printed_url_has_no_credentials():
    shown = _shown_url("http://bob:s3cret@127.0.0.1:8000/v1?api_key=abc")
    assert "s3cret" not in shown and "bob" not in shown and "abc" not in shown
    assert shown == "http://127.0.0.1:8000/v1?api_key=***"
    assert _shown_url("file:///etc/passwd") == "the server"
