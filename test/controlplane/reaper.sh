#!/usr/bin/env bash
# Tears down a test control plane whose owner died without stopping it (crash, SIGKILL, Ctrl-C).
# Usage: reaper.sh OWNER_PID DIR   (DIR/pids lists the processes to stop; DIR is removed)
owner="$1" dir="$2"
while kill -0 "$owner" 2>/dev/null && [ -d "$dir" ]; do sleep 1; done
[ -d "$dir" ] || exit 0
if [ -f "$dir/pids" ]; then
  pids=$(cat "$dir/pids")
  kill -TERM $pids 2>/dev/null
  for _ in 1 2 3 4 5; do
    alive=0
    for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive -eq 0 ] && break
    sleep 1
  done
  kill -KILL $pids 2>/dev/null
fi
rm -rf "$dir"
