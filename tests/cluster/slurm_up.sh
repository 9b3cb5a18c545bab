#!/usr/bin/env bash
# Bring up a one-node SLURM cluster on loopback for tests (Debian/Ubuntu, run as root).
#
#   sudo tests/cluster/slurm_up.sh        # idempotent: installs, configures, starts, waits
#   tests/cluster/slurm_down.sh           # stops the daemons it started
#
# What it does:
#   1. apt-get installs slurmctld, slurmd, slurm-client and munge if any binary is missing
#      (Debian 12 ships SLURM 22.05; no slurmdbd, no database: accounting is off).
#   2. writes /etc/slurm/slurm.conf (and gres.conf) for ONE node = this machine, reached on
#      127.0.0.1 only; no systemd needed, no cgroups (proctrack/linuxproc, task/none).
#   3. starts munged, slurmctld and slurmd by hand (pid files in /run), unless already up.
#   4. waits until the node is idle and `srun hostname` works.
#
# Knobs (environment):
#   SLURM_UP_CPUS      CPUs of the node (default: 2, capped at nproc)
#   SLURM_UP_GPUS      number of "gpu" GRES to declare (default 0). Without /dev/nvidia* they
#                      are stand-in device files (no GPU behind them): enough to test that
#                      cuda cells ask for --gres=gpu:N, get scheduled and see CUDA_VISIBLE_DEVICES.
#   SLURM_UP_FEATURES  node features for --constraint, comma separated (default: none)
#   SLURM_UP_TIMEOUT   seconds to wait for the node (default 60)
#   SLURM_UP_NO_INSTALL=1  never call apt-get (fail if SLURM is missing)
set -euo pipefail

log() { printf '[slurm_up %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages and starts daemons)"

T0=$(date +%s.%N)
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }

# ---------------------------------------------------------------- 1. packages
need_install=0
for bin in slurmctld slurmd sbatch srun squeue sinfo scontrol munged munge; do
    command -v "$bin" >/dev/null 2>&1 || need_install=1
done
if [[ $need_install -eq 1 ]]; then
    [[ ${SLURM_UP_NO_INSTALL:-0} == 1 ]] && die "SLURM is not installed and SLURM_UP_NO_INSTALL=1"
    command -v apt-get >/dev/null 2>&1 || die "SLURM is not installed and apt-get is not available"
    log "installing slurmctld slurmd slurm-client munge with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # A policy-rc.d that says no keeps the packages from starting daemons with their stock
    # configuration (on machines with an init system); one already there is left alone.
    own_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
        own_policy=1; trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
    if [[ $own_policy -eq 1 ]]; then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
    log "installed in $(elapsed "$T0") s"
fi
T1=$(date +%s.%N)

# ---------------------------------------------------------------- 2. configuration
NODE=$(hostname -s)
NPROC=$(nproc)
CPUS=${SLURM_UP_CPUS:-2}
(( CPUS > NPROC )) && CPUS=$NPROC
# RealMemory as slurmd sees it (a larger value would drain the node as "Low RealMemory")
MEM=$(slurmd -C 2>/dev/null | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
[[ -n $MEM ]] || MEM=$(awk '/MemTotal/{print int($2/1024)}' /proc/meminfo)
GPUS=${SLURM_UP_GPUS:-0}
FEATURES=${SLURM_UP_FEATURES:-}

mkdir -p /etc/slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm /run/munge
node_line="NodeName=$NODE NodeAddr=127.0.0.1 NodeHostname=$NODE CPUs=$CPUS RealMemory=$MEM State=UNKNOWN"
[[ $GPUS -gt 0 ]] && node_line+=" Gres=gpu:$GPUS"
[[ -n $FEATURES ]] && node_line+=" Features=$FEATURES"

conf=$(cat <<CONF
# Written by speedatlas tests/cluster/slurm_up.sh: one node on loopback, no accounting DB.
ClusterName=speedatlas
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=6817
SlurmdPort=6818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# No slurmdbd: sacct cannot answer; the executor polls squeue, which keeps finished jobs
# for MinJobAge seconds. The job completion log is the permanent record.
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
MinJobAge=3600
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
InactiveLimit=0
MailProg=/bin/true
KillWait=10
Waittime=0
$node_line
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
)
gres="# Written by speedatlas tests/cluster/slurm_up.sh"
if [[ $GPUS -gt 0 ]]; then
    if ls /dev/nvidia[0-9]* >/dev/null 2>&1; then
        gres+=$'\n'"NodeName=$NODE Name=gpu File=/dev/nvidia[0-$((GPUS - 1))]"
    else
        # No GPU here: SLURM insists on character devices, so make stand-ins (same numbers as
        # /dev/null). Jobs get CUDA_VISIBLE_DEVICES set as on a real GPU node.
        mkdir -p /var/lib/slurm/fakegpu
        for ((i = 0; i < GPUS; i++)); do
            [[ -c /var/lib/slurm/fakegpu/nvidia$i ]] || mknod /var/lib/slurm/fakegpu/nvidia$i c 1 3
        done
        gres+=$'\n'"NodeName=$NODE Name=gpu File=/var/lib/slurm/fakegpu/nvidia[0-$((GPUS - 1))]"
    fi
fi

changed=0
if [[ ! -f /etc/slurm/slurm.conf ]] || [[ "$(cat /etc/slurm/slurm.conf)" != "$conf" ]]; then
    printf '%s\n' "$conf" > /etc/slurm/slurm.conf; changed=1
fi
if [[ ! -f /etc/slurm/gres.conf ]] || [[ "$(cat /etc/slurm/gres.conf)" != "$gres" ]]; then
    printf '%s\n' "$gres" > /etc/slurm/gres.conf; changed=1
fi

# ---------------------------------------------------------------- 3. daemons
alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

chown munge:munge /run/munge
if [[ ! -s /etc/munge/munge.key ]]; then
    log "creating munge key"
    mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null \
        || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
    chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
fi
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "starting munged"
    runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
    munge -n | unmunge >/dev/null || die "munged does not answer"
fi

if [[ $changed -eq 1 ]] && { alive /run/slurmctld.pid || alive /run/slurmd.pid; }; then
    log "configuration changed: restarting SLURM daemons"
    "$(dirname "$0")/slurm_down.sh" --keep-munge
fi
if ! alive /run/slurmctld.pid; then
    log "starting slurmctld"
    slurmctld
fi
for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.2; done
scontrol ping | grep -q UP || die "slurmctld does not answer (see /var/log/slurm/slurmctld.log)"
if ! alive /run/slurmd.pid; then
    log "starting slurmd ($node_line)"
    slurmd -N "$NODE"
fi

# ---------------------------------------------------------------- 4. wait until usable
deadline=$(( $(date +%s) + ${SLURM_UP_TIMEOUT:-60} ))
state=""
while :; do
    state=$(sinfo -h -N -n "$NODE" -o %T 2>/dev/null | head -1)
    case $state in
        idle|mixed|allocated|completing) break ;;
        drain*|down*|fail*)
            log "node is $state ($(sinfo -h -N -n "$NODE" -o %E)); resuming"
            scontrol update NodeName="$NODE" State=RESUME || true ;;
    esac
    (( $(date +%s) > deadline )) && die "node $NODE not ready (state '$state'); see /var/log/slurm/slurmd.log"
    sleep 0.5
done
out=$(timeout 60 srun -N1 -n1 hostname) || die "srun hostname failed"
[[ $out == "$(hostname)" ]] || die "srun hostname printed '$out', expected '$(hostname)'"
log "node $NODE is $state; srun works (configure+start $(elapsed "$T1") s, total $(elapsed "$T0") s)"
