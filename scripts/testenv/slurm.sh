#!/usr/bin/env bash
# A real single-node Slurm cluster on this machine for the tests of troop's Slurm workers:
# munged, slurmctld and slurmd started directly as daemons (no systemd). Needs root (and installs
# slurm-wlm and munge when they are missing).
#
#   scripts/testenv/slurm.sh start|stop|status|selftest
#
# The node is this machine (`hostname -s`, at 127.0.0.1) with the CPUs and memory `slurmd -C`
# reports, in the one partition `troop`; ProctrackType=proctrack/linuxproc, TaskPlugin=task/none,
# SelectType=select/cons_tres (CR_Core), no accounting. Ports 6817 (slurmctld) and 6818 (slurmd).
# slurm.conf, state, spool, pid files and logs live in ${TROOP_TESTENV:-/tmp/troop-testenv}/slurm;
# munged uses its usual places (/etc/munge, /run/munge, /var/lib/munge, /var/log/munge) with a
# key made for each start. A munged that was already running (say, from systemd) is used as it
# is and left running.
#
# `start` writes STATE/slurm/env and regenerates STATE/env, a sourceable file:
#   SLURM_CONF, TROOP_TEST_SLURM_CONF   the slurm.conf (srun, sinfo, scontrol need SLURM_CONF)
#   TROOP_TEST_SLURM_NODE, TROOP_TEST_SLURM_PARTITION, TROOP_TEST_SLURM_CPUS
#
# start     stops what a previous start left, then starts munged, slurmctld and slurmd and waits
#           (at most 60 s, polling) until the node is idle and `srun -N1 -n1 true` works; prints
#           how long that took.
# stop      cancels every job, stops slurmd, slurmctld and the munged it started, then checks that
#           no slurmctld, slurmd, slurmstepd (or munged of its own) is left (exit 1 otherwise).
# status    says what runs; exit 0 when the node answers, 3 otherwise.
# selftest  start, srun, stop, check nothing is left, start, srun, stop; then starts again when
#           Slurm was up before.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
state=${TROOP_TESTENV:-/tmp/troop-testenv}
dir=$state/slurm
conf=$dir/slurm.conf
partition=troop
munge_pid_file=/run/munge/munged.pid
export SLURM_CONF=$conf

say() { echo "slurm.sh: $*" >&2; }
die() { say "$*"; exit 1; }

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="${2:-$(now)}" 'BEGIN { printf "%.2f", b - a }'; }

# Rewrites STATE/env from the parts the testenv scripts wrote.
write_env() {
    local part
    mkdir -p "$state"
    {
        echo "# The test environment for remote workers (scripts/testenv); source it."
        for part in "$state"/ssh/env "$state"/slurm/env; do
            [ -f "$part" ] && cat "$part"
        done
    } >"$state/env.tmp"
    mv "$state/env.tmp" "$state/env"
}

# Whether the process runs (a zombie does not).
alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}

# The live pids whose program is one of the given names (comm, as ps -e shows it).
pids_of() {
    local pid comm name
    for pid in $(ps -eo pid=); do
        comm=$(cat "/proc/$pid/comm" 2>/dev/null) || continue
        for name in "$@"; do
            [ "$comm" = "$name" ] && alive "$pid" && echo "$pid"
        done
    done
    return 0
}

# Sends TERM to the pids, waits up to 10 s for them to go, then sends KILL to what is left.
# Adds them to `ended`, for wait_reaped.
end_pids() {
    local pid left
    [ $# -gt 0 ] || return 0
    ended+=("$@")
    kill -TERM "$@" 2>/dev/null || true
    for _ in $(seq 200); do
        left=()
        for pid in "$@"; do alive "$pid" && left+=("$pid"); done
        [ ${#left[@]} -eq 0 ] && return 0
        sleep 0.05
    done
    say "killing ${left[*]}, which ignored TERM for 10 s"
    kill -KILL "${left[@]}" 2>/dev/null || true
}

# Waits (at most 5 s) until the processes end_pids ended are reaped too, so that `ps` no longer
# lists them. Their parent is init (they were daemons), which may reap late.
wait_reaped() {
    local pid left
    for _ in $(seq 100); do
        left=()
        for pid in "${ended[@]}"; do [ -e "/proc/$pid" ] && left+=("$pid"); done
        [ ${#left[@]} -eq 0 ] && return 0
        sleep 0.05
    done
}
ended=()

# The pid in a pid file, when that process runs.
running() {
    local pid
    pid=$(cat "$1" 2>/dev/null) || return 1
    [ -n "$pid" ] && alive "$pid" && echo "$pid"
}

# Polls `what` (a command) every 0.1 s until it succeeds or $deadline (epoch seconds) passes.
poll() {
    local what=$1
    shift
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || { say "gave up waiting for $what"; return 1; }
        sleep 0.1
    done
}

start_munge() {
    local d pid
    if pid=$(running "$munge_pid_file"); then
        say "using the munged already running (pid $pid)"
        rm -f "$dir/munged.pid"
        return 0
    fi
    for d in /etc/munge /var/lib/munge /var/log/munge /run/munge; do
        mkdir -p "$d"
        chown munge:munge "$d"
    done
    chmod 700 /etc/munge /var/lib/munge /var/log/munge
    chmod 755 /run/munge
    rm -f /etc/munge/munge.key
    runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
    runuser -u munge -- /usr/sbin/munged
    running "$munge_pid_file" >"$dir/munged.pid" || die "munged did not start (/var/log/munge/munged.log)"
}

write_conf() {
    local node=$1 line
    # slurmd -C prints this machine's NodeName=... CPUs=... RealMemory=... line.
    line=$(slurmd -C | grep '^NodeName=')
    line=${line#NodeName=* }
    cat >"$conf" <<EOF
# Single-node Slurm for troop's tests (scripts/testenv/slurm.sh); made at each start.
ClusterName=troop
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
StateSaveLocation=$dir/ctld
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# Jobs leave the queue soon after they end; a killed job's processes get 2 s after TERM.
MinJobAge=5
KillWait=2
InactiveLimit=0
NodeName=$node NodeAddr=127.0.0.1 $line State=UNKNOWN
PartitionName=$partition Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
}

cmd_start() {
    [ "$(id -u)" = 0 ] || die "needs root (munged, slurmd)"
    local t0 t1 node deadline cpus
    t0=$(now)
    "$here/install.sh" slurm || die "cannot install what it needs"
    t1=$(now)
    cmd_stop
    node=$(hostname -s)
    rm -rf "$dir"
    mkdir -p "$dir/ctld" "$dir/spool"
    start_munge
    write_conf "$node"
    slurmctld -f "$conf"
    slurmd -f "$conf"
    deadline=$(($(date +%s) + 60))
    poll "slurmctld to answer" sh -c 'scontrol ping | grep -q "is UP"' || fail_start
    poll "node $node to be idle" sh -c "sinfo -h -N -n '$node' -o %t | grep -qx idle" || fail_start
    poll "srun -N1 -n1 true" timeout 20 srun -N1 -n1 true || fail_start
    cpus=$(sinfo -h -N -n "$node" -o %c)
    {
        echo "export SLURM_CONF='$conf'"
        echo "export TROOP_TEST_SLURM_CONF='$conf'"
        echo "export TROOP_TEST_SLURM_NODE='$node'"
        echo "export TROOP_TEST_SLURM_PARTITION='$partition'"
        echo "export TROOP_TEST_SLURM_CPUS='$cpus'"
    } >"$dir/env"
    write_env
    say "started node $node ($cpus CPUs) in $(since "$t0") s, $(since "$t0" "$t1") s of it installing (SLURM_CONF=$conf)"
}

fail_start() {
    local log
    for log in "$dir/slurmctld.log" "$dir/slurmd.log" /var/log/munge/munged.log; do
        [ -f "$log" ] && { say "--- $log"; tail -n 15 "$log" >&2; }
    done
    sinfo -N -l >&2 || true
    cmd_stop || true
    die "Slurm did not come up"
}

cmd_stop() {
    local pids=() jobs=() pid leftover=() deadline
    if [ -f "$conf" ] && running "$dir/slurmctld.pid" >/dev/null; then
        mapfile -t jobs < <(timeout 10 squeue -h -o %A 2>/dev/null || true)
        if [ ${#jobs[@]} -gt 0 ]; then
            timeout 10 scancel "${jobs[@]}" 2>/dev/null || true
            deadline=$(($(date +%s) + 15))
            # shellcheck disable=SC2016 # expanded by the inner shell
            poll "the jobs to end" sh -c '[ -z "$(squeue -h -o %A)" ]' || true
        fi
    fi
    # slurmd first (and the step daemons of jobs that did not end), then slurmctld.
    pid=$(running "$dir/slurmd.pid") && end_pids "$pid"
    mapfile -t pids < <(pids_of slurmd slurmstepd)
    end_pids "${pids[@]}"
    pid=$(running "$dir/slurmctld.pid") && end_pids "$pid"
    mapfile -t pids < <(pids_of slurmctld slurmscriptd)
    end_pids "${pids[@]}"
    # munged only when this script started it.
    if pid=$(running "$dir/munged.pid"); then
        end_pids "$pid"
    fi
    rm -f "$dir/munged.pid" "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/env"
    [ -d "$state" ] && write_env
    wait_reaped
    mapfile -t pids < <(pids_of slurmctld slurmscriptd slurmd slurmstepd)
    for pid in "${pids[@]}"; do
        leftover+=("process $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)")
    done
    if [ ${#leftover[@]} -gt 0 ]; then
        printf '  %s\n' "${leftover[@]}" >&2
        die "stop left the above behind"
    fi
    say "stopped"
}

cmd_status() {
    local ctld slurmd munged
    ctld=$(running "$dir/slurmctld.pid" || echo none)
    slurmd=$(running "$dir/slurmd.pid" || echo none)
    munged=$(running "$munge_pid_file" || echo none)
    echo "munged pid $munged, slurmctld pid $ctld, slurmd pid $slurmd"
    if [ "$ctld" != none ] && [ -f "$conf" ] && timeout 10 sinfo -N; then
        return 0
    fi
    echo "slurm: stopped"
    return 3
}

check_up() {
    local out
    out=$(timeout 30 srun -N1 -n1 echo hi) || die "selftest: srun failed"
    [ "$out" = hi ] || die "selftest: srun printed '$out', not hi"
}

check_down() {
    local left
    cmd_status >/dev/null && die "selftest: status says up after stop"
    left=$(pids_of slurmctld slurmscriptd slurmd slurmstepd)
    [ -z "$left" ] || die "selftest: slurm processes left: $left"
    if [ "$1" = no ]; then
        left=$(pids_of munged)
        [ -z "$left" ] || die "selftest: munged left: $left"
    fi
    return 0
}

cmd_selftest() {
    local was_up=no munge_before=no
    cmd_status >/dev/null 2>&1 && was_up=yes
    cmd_stop
    [ -n "$(pids_of munged)" ] && munge_before=yes
    cmd_start
    check_up
    cmd_stop
    check_down $munge_before
    cmd_start
    check_up
    cmd_stop
    check_down $munge_before
    say "selftest passed"
    [ $was_up = yes ] && cmd_start
    return 0
}

case ${1:-} in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    selftest) cmd_selftest ;;
    *) echo "usage: $0 start|stop|status|selftest" >&2; exit 2 ;;
esac
