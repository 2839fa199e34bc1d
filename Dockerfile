# syntax=docker/dockerfile:1
# nnote image. BASE_IMAGE is any image with python3 and venv: the official slim image by
# default; the tests pass a locally built Debian image because no registry is reachable there.
ARG BASE_IMAGE=python:3.12-slim

FROM ${BASE_IMAGE} AS build
# Extra pip arguments. An offline build installs from wheels served on the build machine,
# built on its network (`docker build --network host`): e.g.
# "--no-index --find-links http://127.0.0.1:8000/ --trusted-host 127.0.0.1".
# Not a secret: never put credentials here, build arguments stay in the image history.
ARG PIP_INSTALL_ARGS=""
WORKDIR /src
RUN python3 -m venv /venv
# The app extra's locked dependencies, and nothing of the deployer's: requirements.txt is
# `uv export --frozen --no-dev --no-emit-project --extra app` (tests/test_packaging.py checks).
# Then the venv's own pip and setuptools go: the app runs neither (neither is in
# requirements.txt), they were 25 of the venv's 62 MB, and setuptools' .pth file made every
# interpreter start import its distutils shim.
COPY requirements.txt ./
RUN /venv/bin/pip install --no-cache-dir --disable-pip-version-check --require-hashes \
        ${PIP_INSTALL_ARGS} -r requirements.txt \
    && /venv/bin/python -m pip uninstall --yes --quiet --disable-pip-version-check \
        pip setuptools

FROM ${BASE_IMAGE}
ENV PATH=/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NNOTE_ENV=production \
    PORT=5000
RUN groupadd --system nnote && useradd --system --gid nnote --home-dir /app nnote
WORKDIR /app
COPY --from=build /venv /venv
COPY gunicorn.conf.py ./
COPY nnote ./nnote
# Bytecode compiled at build, as pip compiled the packages': each gunicorn worker then loads
# it instead of compiling the app (PYTHONDONTWRITEBYTECODE keeps the running image read-only).
RUN python3 -m compileall -q nnote \
    && mkdir -p /app/instance && chown nnote:nnote /app/instance
USER nnote
EXPOSE 5000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD python3 -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/healthz', timeout=2)" || exit 1
# Checks settings, waits for the database, migrates, then execs the command.
ENTRYPOINT ["python3", "-m", "nnote.boot"]
CMD ["gunicorn", "--config", "gunicorn.conf.py"]
