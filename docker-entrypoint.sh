#!/bin/sh
# Wait for the database (bounded), migrate, then hand PID 1 to gunicorn so SIGTERM reaches it.
set -eu

attempts="${DB_WAIT_ATTEMPTS:-30}"
delay="${DB_WAIT_SECONDS:-2}"
i=1
until flask --app nnote db upgrade; do
  if [ "$i" -ge "$attempts" ]; then
    echo "nnote: database not reachable after $attempts attempts; giving up" >&2
    exit 1
  fi
  echo "nnote: database not ready (attempt $i/$attempts); retrying in ${delay}s" >&2
  i=$((i + 1))
  sleep "$delay"
done

exec "$@"
