"""gunicorn settings for nnote; every value can be overridden from the environment."""

import contextlib
import ctypes
import os

from gunicorn.glogging import Logger

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '5000')}"
# Two per core, capped: each sync worker holds one request at a time, and with it at most two
# DB connections (the page's reads, `nnote.models.reads`, and the ORM session's writes).
workers = int(os.environ.get("WEB_CONCURRENCY", min(2 * (os.cpu_count() or 1), 8)))
# sync workers: the load balancer buffers slow clients, and each new connection goes to an
# idle worker. gthread with keep-alive pinned wrk's connections unevenly (bench/ showed half
# the throughput in some runs).
worker_class = "sync"
timeout = 30
# SIGTERM lets in-flight requests finish within this window, inside the task's stop timeout
# (deploy.toml's service.rollout.stop_timeout_seconds, 10 by default, before SIGKILL). The
# load balancer has drained the task before ECS stops it, so usually nothing is in flight.
graceful_timeout = 8
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
# Headers only; query strings never carry secrets here and bodies are never logged.
ACCESS_LOG_FORMAT = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
access_log_format = ACCESS_LOG_FORMAT


class AccessLogger(Logger):
    """gunicorn's logger, with the access line's fields built only for the line it prints.

    The stock `atoms` builds ~60 fields on every request (each request and response header,
    each environ key): ~6% of a home page. Another format gets the stock fields."""

    def atoms(self, resp, req, environ, request_time):
        if self.cfg.access_log_format != ACCESS_LOG_FORMAT:
            return super().atoms(resp, req, environ, request_time)
        sent = getattr(resp, "sent", None)
        return {
            "h": environ.get("REMOTE_ADDR", "-"),
            "r": f"{environ['REQUEST_METHOD']} {environ['RAW_URI']} {environ['SERVER_PROTOCOL']}",
            "s": str(resp.status).split(None, 1)[0],
            "b": str(sent) if sent is not None else "-",
            "M": request_time.seconds * 1000 + request_time.microseconds // 1000,
        }


logger_class = AccessLogger
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
wsgi_app = "nnote.wsgi:app"
# The control socket is for operators on a host; a container has none and no home to put it.
control_socket_disable = True


def when_ready(server):
    _release_free_heap()


def post_worker_init(worker):
    _release_free_heap()


def _release_free_heap():
    """Hand the heap that loading the app freed back to the system: glibc keeps it otherwise,
    ~2.5 MB in each worker (and what gunicorn's start-up freed in the master)."""
    # Not glibc (musl has no malloc_trim): nothing to hand back.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)
