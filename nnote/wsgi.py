"""The WSGI entry point gunicorn serves. Migrations run before it, in `nnote.boot`."""

from nnote import create_app

app = create_app(migrations=False)
