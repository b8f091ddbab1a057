#!/bin/bash
# Deploy Shortly on this box: ./deploy.sh (as the shortly user, from the app folder).
set -e
cd "$(dirname "$0")"

git pull
.venv/bin/pip install --quiet -r requirements.txt

# never ship with the debugger on
sed -i 's/^SHORTLY_DEBUG=.*/SHORTLY_DEBUG=false/' .env

# configuration of this box (SHORTLY_SECRET_KEY, DATABASE_URL, ...), see .env.example
set -a
. ./.env
set +a

if [ -f shortly.pid ]; then
    kill "$(cat shortly.pid)" 2>/dev/null || true
    rm -f shortly.pid
    sleep 2
fi

nohup .venv/bin/python shortly.py --daemon > /dev/null 2>&1 &
sleep 1
echo "Shortly restarted (pid $(cat shortly.pid 2>/dev/null || echo '?'))"
