#!/bin/bash
# every 10 s: nstat deltas of TCP resets/overflows in the sandbox's netns (the bench process), load, frontend connections
while true; do
  P=$(pgrep -f "env PARM_TESTBED_SANDBOX=1" | head -1)
  if [ -n "$P" ]; then
    C=$(pgrep -P $P | head -1)
    if [ -n "$C" ]; then
      echo "== $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)"
      nsenter -t $C -n nstat -z 2>/dev/null | grep -E "Reset|Abort|Overflow|Drop|Orphan|Memory|OutRsts|EstabResets|AttemptFails|Syncookies" | grep -v " 0 " | tr -s ' ' | paste -sd';'
      nsenter -t $C -n ss -s 2>/dev/null | sed -n 2p
    fi
  fi
  sleep 10
done
