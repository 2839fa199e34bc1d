# shellcheck shell=bash
# Sourced by scripts/setup and scripts/run: `ensure_uv` puts uv on PATH, installing it first
# if it is missing.
#
# Debian 12's python3 refuses `pip install` outside a virtual environment (PEP 668: it is
# "externally managed"), so uv gets a virtual environment of its own, NNOTE_UV_HOME
# (/opt/nnote-uv), and a link in NNOTE_UV_BIN (/usr/local/bin), which is on every shell's PATH:
# the scripts that run scripts/setup, and your own shell, find it there afterwards. Debian
# ships venv's pip bootstrap (ensurepip) apart, in python3-venv: installed when missing.
# pip's own settings apply (PIP_INDEX_URL, PIP_FIND_LINKS, ...), e.g. for a mirror.
ensure_uv() {
  command -v uv >/dev/null && return 0
  local home="${NNOTE_UV_HOME:-/opt/nnote-uv}" bin="${NNOTE_UV_BIN:-/usr/local/bin}" tool
  if [ ! -x "$home/bin/uv" ]; then
    if ! python3 -c 'import ensurepip' 2>/dev/null; then
      echo "${0##*/}: installing python3-venv (uv's own virtual environment needs it)"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    fi
    echo "${0##*/}: uv not found, installing it into $home"
    python3 -m venv "$home"
    "$home/bin/python" -m pip install --quiet --disable-pip-version-check uv
  fi
  mkdir -p "$bin"
  for tool in uv uvx; do
    if [ -x "$home/bin/$tool" ]; then ln -sfn "$home/bin/$tool" "$bin/$tool"; fi
  done
  case ":$PATH:" in
    *":$bin:"*) ;;
    *) export PATH="$bin:$PATH" ;;
  esac
  command -v uv >/dev/null
}
