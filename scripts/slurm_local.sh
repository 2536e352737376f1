#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for tests and trying the SLURM profile.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/slurm_local.sh start DIR | stop DIR | --help

start DIR  write slurm.conf, gres.conf and a munge key into DIR (created if missing), start
           munged, slurmctld and slurmd as root, and wait until the node is idle. The node has
           this machine's CPUs, 80% of its memory and one GPU GRES (its device file is /dev/null:
           a job may ask for --gpus=1 and is scheduled; CUDA use still needs a real GPU).
           Finished jobs are kept for 10 minutes (MinJobAge: the executor plugin reads their
           state with squeue) and written to DIR/jobcomp.log (one line per job: JobId, name,
           state, resources). /etc/slurm/slurm.conf becomes a link to DIR/slurm.conf (job
           steps read that path); start refuses when a real file is there. Prints the line
           to source: export SLURM_CONF=DIR/slurm.conf
stop DIR   stop the daemons started by `start DIR` (by their pid files), wait for them, and
           remove the /etc/slurm/slurm.conf link.

Needs root and Debian's slurm-wlm and munge packages (apt-get install -y slurm-wlm munge).
EOF
}

DEFAULT_CONF=/etc/slurm/slurm.conf

wait_for() {  # wait_for SECONDS COMMAND...: retry until the command succeeds
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then return 1; fi
        sleep 0.5
    done
}

start() {
    local dir host cpus mem_mb
    mkdir -p "$1"
    dir=$(cd "$1" && pwd)
    [[ $(id -u) == 0 ]] || { echo "slurm_local.sh: must run as root (slurmd starts jobs as their user)" >&2; exit 2; }
    for tool in munged slurmctld slurmd sinfo; do
        command -v "$tool" >/dev/null || { echo "slurm_local.sh: $tool not found (apt-get install -y slurm-wlm munge)" >&2; exit 2; }
    done
    host=$(hostname -s)
    cpus=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)  # nproc obeys OpenMP variables a caller may have set
    mem_mb=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
    mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
    chmod 700 "$dir/munge"
    [[ -f $dir/munge/munge.key ]] || { head -c 1024 /dev/urandom >"$dir/munge/munge.key"; chmod 400 "$dir/munge/munge.key"; }
    cat >"$dir/slurm.conf" <<EOF
ClusterName=imgdag-local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=600
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/jobcomp.log
GresTypes=gpu
NodeName=$host CPUs=$cpus RealMemory=$mem_mb Gres=gpu:1 State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    # slurm's gpu plugin needs a device file per GPU; /dev/null stands in for one
    echo "NodeName=$host Name=gpu File=/dev/null" >"$dir/gres.conf"
    export SLURM_CONF=$dir/slurm.conf
    link_default_conf "$dir"
    munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" \
        --seed-file="$dir/munge/munged.seed"
    slurmctld
    slurmd
    if ! wait_for 60 bash -c "sinfo -h -N -o %t | grep -qx idle"; then
        echo "slurm_local.sh: the node did not become idle in 60 s; logs: $dir/slurmctld.log $dir/slurmd.log" >&2
        sinfo -N -l >&2 || true
        stop "$dir"
        exit 1
    fi
    echo "export SLURM_CONF=$dir/slurm.conf"
}

# The SLURM executor's job step strips SLURM_CONF before its inner srun, which then reads the
# default path: point that at this cluster's config unless a real one is there.
link_default_conf() {
    if [[ -e $DEFAULT_CONF && ! -L $DEFAULT_CONF ]]; then
        echo "slurm_local.sh: $DEFAULT_CONF exists (a real SLURM node?): not starting a test cluster here" >&2
        exit 2
    fi
    mkdir -p "$(dirname "$DEFAULT_CONF")"
    ln -sfn "$1/slurm.conf" "$DEFAULT_CONF"
}

stop() {
    local dir pidfile pid
    dir=$(cd "$1" && pwd)
    for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
        [[ -f $pidfile ]] || continue
        pid=$(cat "$pidfile")
        # a slurmd that never reached its controller ignores SIGTERM: KILL it after 15 s
        if kill "$pid" 2>/dev/null && ! wait_for 15 bash -c "! kill -0 $pid"; then
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$pidfile"
    done
    if [[ $(readlink "$DEFAULT_CONF" || true) == "$dir/slurm.conf" ]]; then rm -f "$DEFAULT_CONF"; fi
}

case "${1:-}" in
    start) [[ $# == 2 ]] || { usage >&2; exit 2; }; start "$2" ;;
    stop) [[ $# == 2 ]] || { usage >&2; exit 2; }; stop "$2" ;;
    -h | --help) usage ;;
    *) usage >&2; exit 2 ;;
esac
