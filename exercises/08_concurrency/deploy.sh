#!/bin/bash
# Deploy Shortly on this box, as the shortly user, from a checkout of the revision to deploy:
#   ./deploy.sh            build, release with this box's config, run the new release
#   ./deploy.sh rollback   run the release before the current one again
# Nothing here edits code, and nothing runs from the checkout: the app runs from a numbered,
# read-only release under $SHORTLY_DEPLOY_ROOT (see OPS.md).
set -euo pipefail
cd "$(dirname "$0")"

export SHORTLY_DEPLOY_ROOT=${SHORTLY_DEPLOY_ROOT:-/srv/shortly-deploy}
CONFIG=${SHORTLY_CONFIG:-.env}  # this box's config (SHORTLY_SECRET_KEY, DATABASE_URL, ...), see .env.example

if [ "${1:-}" = rollback ]; then
    release=$(.venv/bin/python release.py rollback | tail -n 1)
else
    # never ship with the debugger on: refuse the config rather than edit it
    if grep -qiE "^(export +)?SHORTLY_DEBUG=[\"']?true" "$CONFIG"; then
        echo "deploy.sh: $CONFIG sets SHORTLY_DEBUG=true; set it to false and deploy again" >&2
        exit 1
    fi
    # build: the dependencies, then the code
    .venv/bin/pip install --quiet -r requirements.txt
    build=$(.venv/bin/python release.py build | tail -n 1)
    # release: the build plus this box's config
    release=$(.venv/bin/python release.py release "$build" --config "$CONFIG" | tail -n 1)
fi

# TODO: nohup … &, a pid file and a sleep: the app hides from the box's process manager. Let systemd (or any
#       process manager) run each process type in the foreground, e.g. a `./deploy.sh run TYPE` that execs
#       `release.py run --process TYPE`, and restart those processes here instead.
# run: stop the release that runs, start the current one (it verifies the release first)
mkdir -p "$SHORTLY_DEPLOY_ROOT/var"
pidfile="$SHORTLY_DEPLOY_ROOT/var/shortly.pid"
if [ -f "$pidfile" ]; then
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
    sleep 2
fi
nohup .venv/bin/python release.py run > /dev/null 2>&1 &
echo $! > "$pidfile"
echo "Shortly $release started (pid $!)"
