#!/usr/bin/env bash
# Install SLURM and munge for the SLURM test (tests/test_slurm.py), if they are missing.
#
# Usage: tests/slurm/install.sh
# Needs root and apt-get (Debian/Ubuntu, as on CI); takes about 15 s. Exits 0 when
# everything is (already) installed, nonzero with a reason otherwise.
set -euo pipefail

missing=no
for tool in munged slurmctld slurmd sbatch squeue scontrol sinfo scancel; do
    command -v "$tool" >/dev/null 2>&1 || missing=yes
done
if [ "$missing" = no ]; then
    echo "install.sh: SLURM and munge already installed ($(slurmctld -V))"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: SLURM is not installed and this is not root; run as root, or install the packages slurm-wlm and munge yourself" >&2
    exit 2
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install.sh: SLURM is not installed and there is no apt-get; install slurm-wlm (slurmctld, slurmd, client) and munge with your package manager" >&2
    exit 3
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
# The packages may start system daemons where an init system runs; the tests use their
# own private ones (tests/slurm/start_cluster.sh), so nothing else needs configuring.
echo "install.sh: installed $(slurmctld -V)"
