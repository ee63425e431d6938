#!/usr/bin/env bash
# Bring up a single-node Slurm cluster (Debian's slurm-wlm 22.05 + munge) that runs OCI bundles with
# runc, idempotently: installs what is missing, writes slurm.conf/oci.conf when they differ, starts
# munged, slurmctld and slurmd when they are not running, waits until `sinfo` shows the node up.
# Settings verified on this machine are in DESIGN.md section 12 (no systemd, no cgroups).
# From nothing: about 20 s plus the packages; when all is up already: about 1 s.
set -euo pipefail

CONF=/etc/slurm
LOG_DIR="${ENVBUILD_LOG_DIR:-/var/log/envbuild}"
SHARED="${ENVBUILD_SLURM_SHARED:-/var/lib/envbuild/slurm}"  # bundles (cached by digest), job logs
NODE="$(hostname -s)"

say() { printf 'slurm-up: %s\n' "$*"; }
die() { say "$*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (sudo make slurm-up): it installs packages and starts daemons"

missing=()
command -v slurmctld >/dev/null || missing+=(slurm-wlm)
command -v munged >/dev/null || missing+=(munge)
command -v umoci >/dev/null || missing+=(umoci)
command -v runc >/dev/null || missing+=(runc)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  # policy-rc.d keeps the packages from starting daemons with their own settings
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; }
fi

mkdir -p "$LOG_DIR" "$SHARED" /var/spool/slurmctld /var/spool/slurmd /run/slurm /run/slurm-runc /run/munge
chown munge:munge /run/munge
chmod 1777 "$SHARED"
[ -s /etc/munge/munge.key ] || { mkdir -p /etc/munge; dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null;
  chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }

# RealMemory: what the machine has, less 2 GB for itself
mem=$(( $(free -m | awk '/^Mem:/ {print $2}') - 2048 ))
cpus=$(nproc)
want_conf="# written by envbuild scripts/slurm-up.sh
ClusterName=envbuild
SlurmctldHost=${NODE}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
ReturnToService=2
MinJobAge=3600
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=${LOG_DIR}/slurmctld.log
SlurmdLogFile=${LOG_DIR}/slurmd.log
SchedulerType=sched/backfill
# batch jobs start as soon as a node is free (default: up to 3 s later, for high submit rates)
SchedulerParameters=batch_sched_delay=0
NodeName=${NODE} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem} State=UNKNOWN
PartitionName=main Nodes=${NODE} Default=YES MaxTime=INFINITE State=UP
"
# RunTimeRun mode: the create/start mode hangs here (runc init holds the pipe; DESIGN.md 12)
R="runc --root=/run/slurm-runc"
want_oci="# written by envbuild scripts/slurm-up.sh
RunTimeQuery=\"$R state %n.%u.%j.%s.%t\"
RunTimeKill=\"$R kill -a %n.%u.%j.%s.%t SIGTERM\"
RunTimeDelete=\"$R delete --force %n.%u.%j.%s.%t\"
RunTimeRun=\"$R run %n.%u.%j.%s.%t -b %b\"
"
changed=0
write_if_differs() { # FILE CONTENT
  if [ "$(cat "$1" 2>/dev/null)" != "$(printf "%s" "$2")" ]; then printf '%s' "$2" > "$1"; changed=1; fi
}
mkdir -p "$CONF"
write_if_differs "$CONF/slurm.conf" "$want_conf"
write_if_differs "$CONF/oci.conf" "$want_oci"

running() { pgrep -x "$1" >/dev/null; }
running munged || runuser -u munge -- /usr/sbin/munged
for i in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
munge -n | unmunge >/dev/null 2>&1 || die "munged does not answer; see /var/log/munge/munged.log"

if [ "$changed" = 1 ] && running slurmctld; then  # new settings: restart what runs with the old ones
  say "settings changed: restarting slurmctld and slurmd"
  kill "$(cat /run/slurm/slurmd.pid 2>/dev/null)" "$(cat /run/slurm/slurmctld.pid 2>/dev/null)" 2>/dev/null || true
  for i in $(seq 50); do running slurmctld || running slurmd || break; sleep 0.1; done
fi
running slurmctld || slurmctld
running slurmd || slurmd

state=""
for i in $(seq 300); do
  state=$(sinfo -h -n "$NODE" -o %t 2>/dev/null || true)
  case "$state" in idle|mix|alloc|idle~) break ;; esac
  sleep 0.1
done
case "$state" in
  idle|mix|alloc|idle~) ;;
  down*|drain*) scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true; sleep 1
                state=$(sinfo -h -n "$NODE" -o %t) ;;
esac
case "$state" in idle|mix|alloc) say "node $NODE $state; shared path $SHARED" ;;
  *) die "node $NODE is '${state:-not listed}'; see $LOG_DIR/slurmctld.log and $LOG_DIR/slurmd.log" ;; esac
