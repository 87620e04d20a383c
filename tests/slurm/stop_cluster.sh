#!/usr/bin/env bash
# Stop the private SLURM cluster that start_cluster.sh brought up, and everything it ran.
#
# Usage: tests/slurm/stop_cluster.sh [STATE_DIR]     (default: $HPSTUDY_SLURM_DIR or /tmp/hpstudy-slurm)
#
# 1. cancels the cluster's jobs and waits for them to end (slurmd kills their processes),
# 2. stops slurmd, slurmctld and munged by the PIDs in their PID files (TERM, then KILL),
# 3. as a last resort, kills leftover processes that carry HPSTUDY_SLURM_CLUSTER=STATE_DIR in
#    their environment (job steps whose slurmd died first; the tests set it for their jobs),
# 4. removes the /etc/slurm/slurm.conf symlink that start_cluster.sh made.
# Safe to run twice, or when nothing is running. The state folder is left for inspection;
# the next start wipes it.
set -uo pipefail

state=${1:-${HPSTUDY_SLURM_DIR:-/tmp/hpstudy-slurm}}
state=$(realpath -m "$state")  # the /etc/slurm symlink needs an absolute target
conf="$state/etc/slurm.conf"

pid_alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

stop_pid() {  # stop_pid NAME PIDFILE
    local name=$1 pidfile=$2 pid
    [ -f "$pidfile" ] || return 0
    pid=$(tr -dc '0-9' <"$pidfile")
    if pid_alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 1 50); do pid_alive "$pid" || break; sleep 0.2; done
        if pid_alive "$pid"; then
            echo "stop_cluster.sh: $name ($pid) ignored TERM; killing it" >&2
            kill -KILL "$pid" 2>/dev/null
        fi
    fi
    rm -f "$pidfile"
}

if [ -f "$conf" ] && [ -f "$state/run/slurmctld.pid" ]; then
    export SLURM_CONF="$conf"
    jobs=$(squeue -h -o %i 2>/dev/null)
    if [ -n "$jobs" ]; then
        # shellcheck disable=SC2086  # one argument per job id
        scancel $jobs 2>/dev/null
        for _ in $(seq 1 30); do
            [ -z "$(squeue -h -t running,completing -o %i 2>/dev/null)" ] && break
            sleep 0.5
        done
    fi
fi

stop_pid slurmd "$state/run/slurmd.pid"
stop_pid slurmctld "$state/run/slurmctld.pid"
stop_pid munged "$state/munge/munged.pid"

# Leftovers: processes whose environment names this cluster (job steps and their children),
# never this script or its callers.
if [ -d "$state" ]; then
    keep=" $$ $PPID "
    ancestor=$PPID
    while [ "$ancestor" -gt 1 ] 2>/dev/null; do
        ancestor=$(awk '{print $4}' "/proc/$ancestor/stat" 2>/dev/null || echo 1)
        keep="$keep$ancestor "
    done
    for environ in /proc/[0-9]*/environ; do
        pid=${environ#/proc/}
        pid=${pid%/environ}
        case "$keep" in *" $pid "*) continue ;; esac
        if { tr '\0' '\n' <"$environ"; } 2>/dev/null | grep -qxF "HPSTUDY_SLURM_CLUSTER=$state"; then
            echo "stop_cluster.sh: killing leftover process $pid" >&2
            kill -KILL "$pid" 2>/dev/null
        fi
    done
fi
if [ "$(readlink /etc/slurm/slurm.conf 2>/dev/null || true)" = "$conf" ]; then
    rm -f /etc/slurm/slurm.conf
fi
exit 0
