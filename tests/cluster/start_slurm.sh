#!/usr/bin/env bash
# A one-node Slurm on this machine, for the integration tests and for trying
# `bench run --executor slurm` by hand. Run as root:
#
#     tests/cluster/start_slurm.sh DIR        # DIR: an empty folder outside the repository
#     export SLURM_CONF=DIR/slurm.conf        # in another shell; then sinfo, srun hostname, bench run
#
# It installs Debian's packages when they are missing (apt-get), writes DIR/slurm.conf and
# its own munge key, and runs munged, slurmctld and slurmd in the foreground as its own
# children (no systemd needed). Once `sinfo` shows the node idle it prints the export line,
# writes it to DIR/ready, and waits. On SIGTERM, SIGINT or SIGHUP, when a daemon dies, or when
# the process $SLURM_OWNER_PID is gone, it cancels every job, stops the daemons it started by
# their PIDs, and exits. A second call for a DIR whose supervisor is running says so and exits 0.
#
# Environment: SLURMCTLD_PORT (default 6817), SLURMD_PORT (6818), SLURM_OWNER_PID (none),
# SLURM_DIR_IS_TEMPORARY (set: remove DIR when stopping because the owner is gone).
# Exit codes: 0 stopped on request, 1 a daemon failed, 3 cannot run here (not root, no apt-get).
set -euo pipefail

# Jobs' step daemons (slurmstepd) detach from slurmd; as a child subreaper this script adopts
# them instead of init, so it reaps them and its final sweep finds any that outlive slurmd.
# Bash cannot set that flag itself; Python's ctypes can, and the flag survives exec.
if [[ -z "${_START_SLURM_REAPER:-}" ]] && command -v python3 >/dev/null; then
    export _START_SLURM_REAPER=1
    exec python3 -c 'import ctypes, os, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
os.execv("/bin/bash", ["bash", *sys.argv[1:]])' "$0" "$@"
fi

say() { echo "start_slurm: $*"; }
cannot() { say "cannot start Slurm here: $*" >&2; exit 3; }

[[ $# -eq 1 ]] || { echo "usage: $0 DIR" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || cannot "needs root (the daemons switch users)"
DIR=$(realpath -m "$1")
CTLD_PORT=${SLURMCTLD_PORT:-6817}
SLURMD_PORT=${SLURMD_PORT:-6818}
OWNER=${SLURM_OWNER_PID:-}
NODE=$(hostname -s)
export SLURM_CONF=$DIR/slurm.conf

running() { # a live process, not a zombie
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) && [[ $state != Z ]]
}

if [[ -f $DIR/supervisor.pid ]] && running "$(cat "$DIR/supervisor.pid")"; then
    say "already running (pid $(cat "$DIR/supervisor.pid")): export SLURM_CONF=$SLURM_CONF"
    exit 0
fi

missing=()
for tool in munged slurmctld slurmd sbatch; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
    command -v apt-get >/dev/null || cannot "${missing[*]} missing and no apt-get to install them"
    say "installing slurmctld slurmd slurm-client munge (missing: ${missing[*]})"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        slurmctld slurmd slurm-client munge >/dev/null
fi
id munge >/dev/null 2>&1 && id slurm >/dev/null 2>&1 || cannot "the users munge and slurm are missing"

# --- configuration: everything under DIR, nothing in /etc -------------------------------------
mkdir -p "$DIR"/{munge,state,spool,log}
chmod 755 "$DIR"
rm -f "$DIR/ready" "$DIR"/munge/munge.socket*
[[ -f $DIR/munge/munge.key ]] || head -c 1024 /dev/urandom >"$DIR/munge/munge.key"
chmod 400 "$DIR/munge/munge.key"
chmod 755 "$DIR/munge"
chown -R munge:munge "$DIR/munge"
chown slurm:slurm "$DIR/state" "$DIR/log"
memory_mb=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
cat >"$SLURM_CONF" <<EOF
# written by tests/cluster/start_slurm.sh
ClusterName=benchtest
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
# task/affinity binds each job to the CPUs it asked for (--cpus-per-unit 1: one core)
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
KillWait=2
NodeName=$NODE NodeAddr=127.0.0.1 NodeHostname=$NODE CPUs=$(nproc) RealMemory=$memory_mb State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF

# --- the daemons, in the foreground as children of this script -------------------------------
declare -A PIDS=()
stopping=0

stop() {
    ((stopping)) && return
    stopping=1
    trap '' TERM INT HUP
    if [[ -n ${PIDS[slurmctld]:-} ]] && running "${PIDS[slurmctld]}"; then
        local jobs
        jobs=$(timeout 10 squeue -h -o %i 2>/dev/null || true)
        if [[ -n $jobs ]]; then
            say "cancelling job(s) $(echo $jobs)"
            timeout 10 scancel $jobs 2>/dev/null || true
            for _ in $(seq 20); do  # KillWait=2: jobs end within seconds
                [[ -z $(timeout 5 squeue -h -o %i 2>/dev/null) ]] && break
                sleep 0.5
            done
        fi
    fi
    local name pid
    for name in slurmd slurmctld munged; do
        pid=${PIDS[$name]:-}
        [[ -n $pid ]] || continue
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do running "$pid" || break; sleep 0.2; done
        running "$pid" && kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null || true
    done
    # Whatever else is still our child (a slurmstepd or a job adopted through the subreaper):
    # by PID, never by name.
    for pid in $(ps -o pid= --ppid $$); do
        kill -KILL "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -f "$DIR/ready" "$DIR/supervisor.pid"
    say "stopped"
}
trap 'stop; exit 0' TERM INT HUP
trap 'stop' EXIT

echo $$ >"$DIR/supervisor.pid"
setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged --foreground \
    --key-file="$DIR/munge/munge.key" --socket="$DIR/munge/munge.socket" \
    --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/munge/munged.log" \
    --seed-file="$DIR/munge/munged.seed" &
PIDS[munged]=$!
for _ in $(seq 50); do [[ -S $DIR/munge/munge.socket ]] && break; sleep 0.1; done
slurmctld -D -f "$SLURM_CONF" &
PIDS[slurmctld]=$!
slurmd -D -f "$SLURM_CONF" -N "$NODE" &
PIDS[slurmd]=$!

failed() {
    say "$1; the last log lines:" >&2
    tail -n 5 "$DIR"/log/*.log "$DIR/munge/munged.log" >&2 2>/dev/null || true
    exit 1
}

ready=0
for _ in $(seq 120); do
    for name in "${!PIDS[@]}"; do running "${PIDS[$name]}" || failed "$name exited"; done
    if [[ $(timeout 5 sinfo -h -n "$NODE" -o %t 2>/dev/null) == idle ]]; then
        ready=1
        break
    fi
    sleep 0.5
done
((ready)) || failed "node $NODE did not become idle within 60 s"
say "ready (munged ${PIDS[munged]}, slurmctld ${PIDS[slurmctld]}, slurmd ${PIDS[slurmd]}): export SLURM_CONF=$SLURM_CONF"
echo "export SLURM_CONF=$SLURM_CONF" >"$DIR/ready"

while :; do
    for name in "${!PIDS[@]}"; do running "${PIDS[$name]}" || failed "$name exited"; done
    if [[ -n $OWNER ]] && ! running "$OWNER"; then
        say "owner process $OWNER is gone"
        stop
        # nobody is left to remove a temporary DIR (a test session killed with SIGKILL)
        [[ -z ${SLURM_DIR_IS_TEMPORARY:-} ]] || rm -rf "$DIR"
        exit 0
    fi
    sleep 1 &
    wait $! || true
done
