"""gunicorn settings for nnote; every value can be overridden from the environment."""

import os

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '5000')}"
# Two per core, capped: each sync worker holds one request and one DB connection at a time.
workers = int(os.environ.get("WEB_CONCURRENCY", min(2 * (os.cpu_count() or 1), 8)))
# sync workers: the load balancer buffers slow clients, and each new connection goes to an
# idle worker. gthread with keep-alive pinned wrk's connections unevenly (bench/ showed half
# the throughput in some runs).
worker_class = "sync"
timeout = 30
# SIGTERM lets in-flight requests finish within this window (ECS waits 30 s before SIGKILL).
graceful_timeout = 20
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
# Headers only; query strings never carry secrets here and bodies are never logged.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
wsgi_app = "nnote.wsgi:app"
# The control socket is for operators on a host; a container has none and no home to put it.
control_socket_disable = True
