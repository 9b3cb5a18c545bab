#!/usr/bin/env bash
# Stop the daemons that tests/cluster/slurm_up.sh started (by their pid files only).
#   tests/cluster/slurm_down.sh              # slurmd, slurmctld, munged
#   tests/cluster/slurm_down.sh --keep-munge # slurmd, slurmctld (used by slurm_up on a restart)
#   tests/cluster/slurm_down.sh --purge      # also forget job state and logs
set -uo pipefail

keep_munge=0; purge=0
for arg in "$@"; do
    case $arg in
        --keep-munge) keep_munge=1 ;;
        --purge) purge=1 ;;
        *) echo "usage: $0 [--keep-munge] [--purge]" >&2; exit 2 ;;
    esac
done

stop() {  # stop NAME PIDFILE: TERM, wait up to 10 s, then KILL
    local name=$1 pidfile=$2 pid
    [[ -f $pidfile ]] || return 0
    pid=$(cat "$pidfile")
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        echo "[slurm_down] stopping $name (pid $pid)" >&2
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            echo "[slurm_down] $name did not stop, killing it" >&2
            kill -KILL "$pid" 2>/dev/null
        fi
    fi
    rm -f "$pidfile"
}

stop slurmd /run/slurmd.pid
stop slurmctld /run/slurmctld.pid
[[ $keep_munge -eq 1 ]] || stop munged /run/munge/munged.pid
if [[ $purge -eq 1 ]]; then
    rm -rf /var/lib/slurm/slurmctld/* /var/lib/slurm/slurmd/* /var/log/slurm/*
fi
exit 0
