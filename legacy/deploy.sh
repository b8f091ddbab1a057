#!/bin/bash
# Deploy Shortly on this box: ./deploy.sh (as the shortly user, from the app folder).
set -e
cd "$(dirname "$0")"

git pull || echo "git pull failed, deploying the files that are here"

# never ship with the debugger on
sed -i 's/^DEBUG = True/DEBUG = False/' shortly.py

APP=shortly.py
case "$(hostname)" in
    prod-*) APP=shortly_prod.py ;;  # prod has its own copy, see OPS.md
esac

if [ -f shortly.pid ]; then
    kill "$(cat shortly.pid)" 2>/dev/null || true
    rm -f shortly.pid
    sleep 2
fi

nohup python3 "$APP" --daemon > /dev/null 2>&1 &
sleep 1
echo "Shortly restarted ($APP, pid $(cat shortly.pid 2>/dev/null || echo '?'))"
