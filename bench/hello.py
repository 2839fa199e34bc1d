"""A bare Flask "hello", served by the same gunicorn settings as nnote: the stack's ceiling
that bench/app_load.py measures the app's pages against in the same run."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello() -> str:
    return "Hello, World!"
