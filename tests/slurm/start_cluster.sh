#!/usr/bin/env bash
# Bring up a private one-node SLURM cluster (munged, slurmctld, slurmd) on this machine.
#
# Usage: tests/slurm/start_cluster.sh [STATE_DIR]     (default: $HPSTUDY_SLURM_DIR or /tmp/hpstudy-slurm)
#
# Everything lives under STATE_DIR: the generated slurm.conf/gres.conf, a fresh munge key,
# daemon state, spool, logs and PID files. The one thing outside it is a symlink
# /etc/slurm/slurm.conf -> STATE_DIR/etc/slurm.conf, because SLURM clients inside a job (the
# executor plugin's `srun`) drop SLURM_CONF from their environment and read the default path.
# The script refuses to run where /etc/slurm/slurm.conf is anything else (a real cluster's
# config), and stop_cluster.sh removes the symlink again.
# The daemons, and processes started with HPSTUDY_SLURM_CLUSTER=STATE_DIR in their
# environment, are what stop_cluster.sh stops. The last line printed is
#     SLURM_CONF=<STATE_DIR>/etc/slurm.conf
# State is wiped at every start (a DRAIN state would otherwise survive restarts).
# If anything fails the daemons started so far are stopped again (stop_cluster.sh).
# Exit codes: 0 up; 2 not root; 3 SLURM or munge not installed; 4 failed to come up;
# 5 this machine has a SLURM configuration of its own.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
state=${1:-${HPSTUDY_SLURM_DIR:-/tmp/hpstudy-slurm}}
state=$(realpath -m "$state")  # the /etc/slurm symlink needs an absolute target
ctld_port=${HPSTUDY_SLURMCTLD_PORT:-16817}
slurmd_port=${HPSTUDY_SLURMD_PORT:-16818}

if [ "$(id -u)" -ne 0 ]; then
    echo "start_cluster.sh: needs root (slurmd starts jobs as their user and munged runs as 'munge')" >&2
    exit 2
fi
for tool in munged slurmctld slurmd sbatch squeue scontrol sinfo; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "start_cluster.sh: '$tool' not found; install SLURM with tests/slurm/install.sh" >&2
        exit 3
    fi
done
if ! id munge >/dev/null 2>&1; then
    echo "start_cluster.sh: no 'munge' user; install munge with tests/slurm/install.sh" >&2
    exit 3
fi

system_conf=/etc/slurm/slurm.conf
if [ -e "$system_conf" ] || [ -L "$system_conf" ]; then
    if [ "$(readlink "$system_conf" || true)" != "$state/etc/slurm.conf" ]; then
        echo "start_cluster.sh: $system_conf exists and is not this test cluster's; a machine with its own SLURM configuration is left alone" >&2
        exit 5
    fi
fi

# A cluster left over from an earlier run (killed test) is stopped before its state is wiped.
"$here/stop_cluster.sh" "$state" >/dev/null 2>&1 || true

fail() {
    echo "start_cluster.sh: $1" >&2
    for log in "$state"/log/*.log; do
        [ -f "$log" ] && { echo "--- $log" >&2; tail -n 20 "$log" >&2; }
    done
    "$here/stop_cluster.sh" "$state" >&2 || true
    exit 4
}
trap 'fail "unexpected error on line $LINENO"' ERR

rm -rf "$state"
mkdir -p "$state"/{etc,ctld,spool,run,log,munge}
chmod 0755 "$state"

# munged refuses keys and sockets that others could write, and clients must reach the socket.
chown munge:munge "$state/munge"
chmod 0755 "$state/munge"
head -c 1024 /dev/urandom >"$state/munge/munge.key"
chown munge:munge "$state/munge/munge.key"
chmod 0400 "$state/munge/munge.key"
runuser -u munge -- munged \
    --socket="$state/munge/munge.socket" \
    --key-file="$state/munge/munge.key" \
    --pid-file="$state/munge/munged.pid" \
    --log-file="$state/munge/munged.log" \
    --seed-file="$state/munge/munged.seed" ||
    fail "munged did not start"

# Describe the node as slurmd itself sees it, so it is not drained for a mismatch.
node=$(hostname -s)
hw=$(slurmd -C | head -n 1)
field() { sed -n "s/.*[[:space:]]$1=\([0-9]*\).*/\1/p" <<<"$hw"; }
# Memory is not enforced here (no cgroups), and slurm.conf trusts the configured size
# (SlurmdParameters=config_overrides): declare at least 32 GB, so the real rules' requests
# (train asks 16 GB) fit on a small CI runner too.
mem_total=$(field RealMemory)
mem_mb=$((mem_total > 32768 ? mem_total : 32768))
for template in slurm.conf gres.conf; do
    sed -e "s|@NODE@|$node|g" -e "s|@STATE@|$state|g" \
        -e "s|@CTLD_PORT@|$ctld_port|g" -e "s|@SLURMD_PORT@|$slurmd_port|g" \
        -e "s|@CPUS@|$(field CPUs)|g" -e "s|@BOARDS@|$(field Boards)|g" \
        -e "s|@SOCKETS@|$(field SocketsPerBoard)|g" -e "s|@CORES@|$(field CoresPerSocket)|g" \
        -e "s|@THREADS@|$(field ThreadsPerCore)|g" -e "s|@MEM_MB@|$mem_mb|g" \
        "$here/$template.in" >"$state/etc/$template"
done
export SLURM_CONF="$state/etc/slurm.conf"
mkdir -p "$(dirname "$system_conf")"
ln -sfn "$SLURM_CONF" "$system_conf"
# Marks the daemons and everything they fork (job steps), for stop_cluster.sh.
export HPSTUDY_SLURM_CLUSTER="$state"

slurmctld -c -f "$SLURM_CONF" || fail "slurmctld did not start"
slurmd -N "$node" -f "$SLURM_CONF" || fail "slurmd did not start"

# Wait until the node takes jobs; a node that comes up DOWN/DRAINED is resumed once.
resumed=no
# A daemon writes its PID file a moment after forking; only a PID file without its process
# means the daemon died.
daemon_died() {
    local pidfile="$state/run/$1.pid"
    [ -s "$pidfile" ] && ! kill -0 "$(tr -dc '0-9' <"$pidfile")" 2>/dev/null
}
for _ in $(seq 1 60); do
    daemon_died slurmctld && fail "slurmctld exited"
    daemon_died slurmd && fail "slurmd exited"
    # Clients retry a silent controller for a minute; do not wait that long here.
    node_state=$(timeout 5 sinfo -h -n "$node" -o %T 2>/dev/null | head -n 1 || true)
    case "$node_state" in
        idle | mixed | allocated) break ;;
        down* | drain* | fail*)
            if [ "$resumed" = no ]; then
                scontrol update nodename="$node" state=resume >/dev/null 2>&1 || true
                resumed=yes
            fi
            ;;
    esac
    sleep 0.5
done
case "$node_state" in
    idle | mixed | allocated) ;;
    *) fail "node '$node' did not become idle (state: '${node_state:-none}')" ;;
esac
trap - ERR
echo "SLURM_CONF=$SLURM_CONF"
