# shellcheck shell=bash
# Sourced by scripts/captures (and meant for scripts/demo, whose set-up it is): the AWS
# emulator (moto server behind the tests' realism layer), a local Docker registry standing in
# for ECR's registry endpoint, and a plain HTTP server for ./wheels, all on 127.0.0.1, with
# the environment nnote-deploy needs to use them. Needs what scripts/setup, start-docker,
# build-base-image and fetch-wheels provide; run from the repository's root.
#
#   source scripts/lib/emulator.sh
#   emulator_init                 # a work folder; `trap emulator_stop EXIT` is the caller's
#   emulator_start_aws            # an emulator; again: a new, empty one instead
#   emulator_start_registry
#   emulator_start_wheels
#   emulator_export               # AWS_ENDPOINT_URL, NNOTE_DEPLOY_* for the servers above
#
# Every server's pid goes into emulator_pids; emulator_stop ends exactly those.

free_port() {
  uv run --frozen python -c \
    'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "emulator: nothing answers on 127.0.0.1:$1" >&2
  return 1
}

emulator_init() {
  emulator_work=$(mktemp -d)
  emulator_pids=()
  aws_pid=""
}

emulator_stop() {
  if ((${#emulator_pids[@]})); then kill "${emulator_pids[@]}" 2>/dev/null || true; fi
  emulator_pids=()
  if [ -n "${emulator_work:-}" ]; then rm -rf "$emulator_work"; fi
}

# A new, empty emulator: a new account as it were. The one started before, if any, stops.
emulator_start_aws() {
  local pid
  if [ -n "${aws_pid:-}" ]; then
    kill "$aws_pid" 2>/dev/null || true
    for pid in "${!emulator_pids[@]}"; do
      if [ "${emulator_pids[$pid]}" = "$aws_pid" ]; then unset 'emulator_pids[pid]'; fi
    done
  fi
  aws_port=$(free_port)
  MOTO_IAM_LOAD_MANAGED_POLICIES=true MOTO_ECS_SERVICE_RUNNING=1 \
    uv run --frozen python -m tests.support.realism "$aws_port" \
    >"$emulator_work/moto-$aws_port.log" 2>&1 &
  aws_pid=$!
  emulator_pids+=("$aws_pid")
  wait_port "$aws_port"
}

emulator_start_registry() {
  registry_port=$(free_port)
  printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
    "$emulator_work/registry" "$registry_port" >"$emulator_work/registry.yml"
  docker-registry serve "$emulator_work/registry.yml" >"$emulator_work/registry.log" 2>&1 &
  emulator_pids+=("$!")
  wait_port "$registry_port"
}

emulator_start_wheels() {
  wheel_port=$(free_port)
  python3 -m http.server --bind 127.0.0.1 --directory wheels "$wheel_port" \
    >"$emulator_work/wheels.log" 2>&1 &
  emulator_pids+=("$!")
  wait_port "$wheel_port"
}

# The pip arguments of an image build that installs from the wheel server on `port`.
emulator_build_args() {
  local pip_args="--no-index --find-links http://127.0.0.1:$1/ --trusted-host 127.0.0.1"
  printf '{"BASE_IMAGE": "local/nnote-python:bookworm", "PIP_INSTALL_ARGS": "%s"}' "$pip_args"
}

emulator_export() {
  export AWS_ENDPOINT_URL="http://127.0.0.1:$aws_port" AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo
  export NNOTE_DEPLOY_PUSH_HOST="127.0.0.1:$registry_port"
  NNOTE_DEPLOY_BUILD_ARGS=$(emulator_build_args "$wheel_port")
  export NNOTE_DEPLOY_BUILD_ARGS
  export NNOTE_DEPLOY_BUILD_NETWORK=host # build steps have no network otherwise: pip needs the wheel server
  export NNOTE_DEPLOY_POLL_SECONDS=0.2   # the emulator answers at once; real RDS takes minutes
}
