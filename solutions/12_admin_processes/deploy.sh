#!/bin/bash
# Deploy Shortly on this box, as the shortly user, from a checkout of the revision to deploy:
#   ./deploy.sh            build, release with this box's config, restart the processes on the new release
#   ./deploy.sh rollback   make the release before the current one current again, and restart
#   ./deploy.sh run TYPE   run one process of the current release in the foreground (web or worker): what
#                          the systemd units shortly-web@ and shortly-worker@ start (see OPS.md, "Processes")
# Nothing here edits code, and nothing runs from the checkout: the app runs from a numbered,
# read-only release under $SHORTLY_DEPLOY_ROOT (see OPS.md).
set -euo pipefail
cd "$(dirname "$0")"

export SHORTLY_DEPLOY_ROOT=${SHORTLY_DEPLOY_ROOT:-/srv/shortly-deploy}
CONFIG=${SHORTLY_CONFIG:-.env}  # this box's config (SHORTLY_SECRET_KEY, DATABASE_URL, ...), see .env.example

case "${1:-}" in
run)
    # in the foreground, as the process the process manager started: it watches it, signals it, restarts it
    exec .venv/bin/python release.py run --process "${2:-web}"
    ;;
rollback)
    release=$(.venv/bin/python release.py rollback | tail -n 1)
    ;;
*)
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
    ;;
esac

# run: systemd restarts the web and worker processes of this box on the current release, one after the other,
# so the others serve meanwhile; each finishes what it holds before it stops, and is back within a second
mkdir -p "$SHORTLY_DEPLOY_ROOT/var"
for unit in $(systemctl list-units --plain --no-legend 'shortly-web@*' 'shortly-worker@*' | cut -d ' ' -f 1); do
    systemctl restart "$unit"
done
echo "Shortly $release is running"
