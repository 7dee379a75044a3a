#!/usr/bin/env bash
# Two ssh "hosts" for the tests of troop's remote workers: each is a network namespace with its
# own sshd, joined to the root namespace by a veth pair. The namespaces share the filesystem, so
# the troop binary at one path runs on every host. Needs root (and installs what is missing).
#
#   scripts/testenv/ssh-hosts.sh start|stop|status|selftest
#
#   host  namespace  address    root side of the link  (root namespace: 10.77.N.1/24)
#   h1    troop-h1   10.77.1.2  troop-h1               10.77.1.1
#   h2    troop-h2   10.77.2.2  troop-h2               10.77.2.1
#
# Taking a host off the network mid-run, and back (in the root namespace):
#   ip link set troop-h1 down        ip link set troop-h1 up
# While it is down, the route to 10.77.1.0/24 is gone and an "unreachable 10.77.0.0/16" route
# (added by start) applies: a new connection to h1 fails at once ("No route to host") instead of
# wandering off through the default route, and what an open connection sends is lost. To have
# h1 vanish without a word instead, take down its own side; then the link has no carrier and a new
# connection fails after about 3 s of unanswered ARP:
#   ip -n troop-h1 link set eth0 down        ip -n troop-h1 link set eth0 up
# Either way `up` restores the address and route. The hosts have no default route: they reach the
# root namespace at 10.77.N.1 only. The client config sets ServerAliveInterval 1 and
# ServerAliveCountMax 3, so an open ssh connection (and a ControlMaster) to a host that went off
# the network ends 3 to 4 s later with exit status 255. `hostname` on a host says h1 or h2 (each
# sshd has its own UTS namespace).
#
# State lives in ${TROOP_TESTENV:-/tmp/troop-testenv}/ssh: host keys, the client key, each host's
# sshd_config, log and pid file, and `config`, the client configuration: `ssh -F STATE/ssh/config
# h1 CMD` logs in as root with the generated key, checking the generated host keys (BatchMode,
# StrictHostKeyChecking yes, ControlMaster auto with ControlPath STATE/ssh/cm-%C, ControlPersist
# 60 s). `start` writes STATE/ssh/env and regenerates STATE/env, a sourceable file:
#   TROOP_TEST_SSH_CONFIG   the client config
#   TROOP_TEST_SSH_HOSTS    "h1 h2"
#   TROOP_TEST_SSH_H1_ADDR, TROOP_TEST_SSH_H1_LINK  (and _H2_): the address, the root-side link
#
# start     stops what a previous start left, then starts both hosts and waits (at most 20 s) until
#           `ssh h1 true` and `ssh h2 true` work; prints how long that took.
# stop      closes ControlMaster connections, kills every process in the namespaces (the sshds,
#           sessions and whatever they ran), deletes the namespaces and links, then checks that
#           nothing is left (exit 1 and a list otherwise).
# status    says what runs; exit 0 when both hosts answer, 3 otherwise.
# selftest  start, check (also taking h1 off the network and back), stop, check nothing is left,
#           start, check, stop; then starts again when the hosts were up before.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
state=${TROOP_TESTENV:-/tmp/troop-testenv}
dir=$state/ssh
hosts=(h1 h2)
sshd=/usr/sbin/sshd
fallback=10.77.0.0/16

say() { echo "ssh-hosts.sh: $*" >&2; }
die() { say "$*"; exit 1; }

# The number of host hN (1 for h1).
num() { echo "${1#h}"; }
netns() { echo "troop-$1"; }
addr() { echo "10.77.$(num "$1").2"; }
gateway() { echo "10.77.$(num "$1").1"; }
link() { echo "troop-$1"; }

# Whether network namespace $1 exists (no `grep -q` in a pipeline: pipefail would see ip's
# SIGPIPE).
has_netns() { [[ " $(ip netns list 2>/dev/null | cut -d' ' -f1 | tr '\n' ' ') " == *" $1 "* ]]; }
# Whether the root sides of the links are gone.
links_gone() {
    local host
    for host in "${hosts[@]}"; do
        [ -e "/sys/class/net/$(link "$host")" ] && return 1
    done
    return 0
}
# Whether the unreachable route that start adds is there.
has_fallback() { [[ $(ip route list exact "$fallback" 2>/dev/null) == unreachable* ]]; }

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="${2:-$(now)}" 'BEGIN { printf "%.2f", b - a }'; }

# ssh to a host for the script's own checks: no ControlMaster, so nothing lingers.
probe() {
    local host=$1
    shift
    timeout 10 ssh -F "$dir/config" -o ControlMaster=no -o ControlPath=none \
        -o ConnectTimeout=2 "$host" "$@"
}

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

write_sshd_config() {
    local host=$1
    cat >"$dir/$host/sshd_config" <<EOF
# sshd of test host $host (scripts/testenv/ssh-hosts.sh); runs in network namespace $(netns "$host").
ListenAddress $(addr "$host"):22
HostKey $dir/$host/ssh_host_ed25519_key
PidFile $dir/$host/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM ${TROOP_TESTENV_SSH_USEPAM:-no}
# The state directory may lie under /tmp, which is writable by everyone.
StrictModes no
PrintMotd no
PrintLastLog no
# Tests start many workers at once, each a session (or a connection).
MaxStartups 200
MaxSessions 200
# A session's bash takes SHLVL=1 to 2, and so does not read ~/.bashrc as it would for a
# command run by sshd at level 1: this machine's start-up files (pyenv's rehash waits on a
# lock for up to a minute when many sessions start at once) stay out of the tests.
SetEnv SHLVL=1
LogLevel VERBOSE
EOF
}

write_client_config() {
    local host
    {
        echo "# ssh client configuration for the test hosts (scripts/testenv/ssh-hosts.sh)."
        for host in "${hosts[@]}"; do
            cat <<EOF
Host $host
    HostName $(addr "$host")
EOF
        done
        cat <<EOF
Host *
    User root
    Port 22
    IdentityFile $dir/id_ed25519
    IdentitiesOnly yes
    UserKnownHostsFile $dir/known_hosts
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    BatchMode yes
    ConnectTimeout 5
    ServerAliveInterval 1
    ServerAliveCountMax 3
    ControlMaster auto
    ControlPath $dir/cm-%C
    ControlPersist 60
    LogLevel ERROR
EOF
    } >"$dir/config"
}

start_host() {
    local host=$1 ns link_name
    ns=$(netns "$host")
    link_name=$(link "$host")
    mkdir -p "$dir/$host"
    ip netns add "$ns"
    ip link add "$link_name" type veth peer name eth0 netns "$ns"
    ip addr add "$(gateway "$host")/24" dev "$link_name"
    ip link set "$link_name" up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "$(addr "$host")/24" dev eth0
    ip -n "$ns" link set eth0 up
    ssh-keygen -q -t ed25519 -N '' -C "troop-test-$host" -f "$dir/$host/ssh_host_ed25519_key"
    echo "$host,$(addr "$host") $(cut -d' ' -f1-2 "$dir/$host/ssh_host_ed25519_key.pub")" \
        >>"$dir/known_hosts"
    write_sshd_config "$host"
    "$sshd" -t -f "$dir/$host/sshd_config"
    # Its own UTS namespace too, so that `hostname` there says which host it is.
    # shellcheck disable=SC2016 # expanded by the inner shell
    ip netns exec "$ns" unshare --uts sh -c 'hostname "$1" && exec "$2" -f "$3" -E "$4"' sh \
        "$host" "$sshd" "$dir/$host/sshd_config" "$dir/$host/sshd.log"
}

# Waits until `ssh HOST true` works, at most until the epoch second $2.
wait_host() {
    local host=$1 deadline=$2
    until probe "$host" true 2>/dev/null; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            probe "$host" true || true
            tail -n 20 "$dir/$host/sshd.log" >&2 || true
            say "$host does not answer ssh after 20 s"
            return 1
        fi
        sleep 0.05
    done
}

cmd_start() {
    [ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
    local t0 t1 host deadline waits pid
    t0=$(now)
    "$here/install.sh" ssh || die "cannot install what it needs"
    t1=$(now)
    cmd_stop
    rm -rf "$dir"
    mkdir -p "$dir"
    chmod 700 "$dir"
    # sshd's privilege separation directory.
    mkdir -p /run/sshd
    chmod 755 /run/sshd
    ssh-keygen -q -t ed25519 -N '' -C troop-test-client -f "$dir/id_ed25519"
    cp "$dir/id_ed25519.pub" "$dir/authorized_keys"
    : >"$dir/known_hosts"
    # A host whose link is down is unreachable at once, not tried through the default route.
    ip route add unreachable "$fallback" metric 4000
    for host in "${hosts[@]}"; do
        start_host "$host"
    done
    write_client_config
    deadline=$(($(date +%s) + 20))
    waits=()
    for host in "${hosts[@]}"; do
        wait_host "$host" "$deadline" &
        waits+=($!)
    done
    for pid in "${waits[@]}"; do
        wait "$pid" || die "the hosts did not come up"
    done
    {
        echo "export TROOP_TEST_SSH_CONFIG='$dir/config'"
        echo "export TROOP_TEST_SSH_HOSTS='${hosts[*]}'"
        for host in "${hosts[@]}"; do
            echo "export TROOP_TEST_SSH_${host^^}_ADDR='$(addr "$host")'"
            echo "export TROOP_TEST_SSH_${host^^}_LINK='$(link "$host")'"
        done
    } >"$dir/env"
    write_env
    say "started ${hosts[*]} in $(since "$t0") s, $(since "$t0" "$t1") s of it installing (ssh -F $dir/config h1 CMD)"
}

# The pids of the ControlMaster processes of our config (ssh -O check names them).
masters() {
    local host out
    [ -f "$dir/config" ] || return 0
    for host in "${hosts[@]}"; do
        out=$(timeout 5 ssh -F "$dir/config" -O check "$host" 2>&1) || continue
        [[ $out =~ pid=([0-9]+) ]] && echo "${BASH_REMATCH[1]}"
    done
}

# Whether the process runs (a zombie does not).
alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}

# Sends TERM to the pids, waits up to 5 s for them to go, then sends KILL to what is left.
# Adds them to `ended`, for wait_reaped.
end_pids() {
    local pid left
    [ $# -gt 0 ] || return 0
    ended+=("$@")
    kill -TERM "$@" 2>/dev/null || true
    for _ in $(seq 100); do
        left=()
        for pid in "$@"; do alive "$pid" && left+=("$pid"); done
        [ ${#left[@]} -eq 0 ] && return 0
        sleep 0.05
    done
    say "killing ${left[*]}, which ignored TERM for 5 s"
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

cmd_stop() {
    local host ns pids=() pid leftover=()
    # ControlMasters run in the root namespace; ask them to exit, then make sure they did.
    mapfile -t pids < <(masters)
    if [ -f "$dir/config" ]; then
        for host in "${hosts[@]}"; do
            timeout 5 ssh -F "$dir/config" -O exit "$host" >/dev/null 2>&1 || true
        done
    fi
    end_pids "${pids[@]}"
    rm -f "$dir"/cm-*
    for host in "${hosts[@]}"; do
        ns=$(netns "$host")
        if has_netns "$ns"; then
            # Everything in the namespace: the sshd, its sessions and what they run.
            mapfile -t pids < <(ip netns pids "$ns")
            end_pids "${pids[@]}"
            ip netns del "$ns"
        fi
        if [ -f "$dir/$host/sshd.pid" ]; then
            pid=$(cat "$dir/$host/sshd.pid")
            alive "$pid" && end_pids "$pid"
            rm -f "$dir/$host/sshd.pid"
        fi
        # Deleting the namespace deletes the pair, a little later.
        if [ -e "/sys/class/net/$(link "$host")" ]; then
            ip link del "$(link "$host")" 2>/dev/null || true
        fi
    done
    has_fallback && ip route del unreachable "$fallback" metric 4000
    rm -f "$dir/env"
    [ -d "$state" ] && write_env
    wait_reaped
    for _ in $(seq 100); do
        links_gone && break
        sleep 0.05
    done
    # Check that nothing is left.
    for host in "${hosts[@]}"; do
        has_netns "$(netns "$host")" && leftover+=("namespace $(netns "$host")")
        [ -e "/sys/class/net/$(link "$host")" ] && leftover+=("link $(link "$host")")
    done
    has_fallback && leftover+=("route unreachable $fallback")
    for pid in $(grep -laF -- "$dir/" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do
        # grep itself matched the pattern in its own command line.
        grep -qaF -- "$dir/" "/proc/$pid/cmdline" 2>/dev/null || continue
        leftover+=("process $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)")
    done
    if [ ${#leftover[@]} -gt 0 ]; then
        printf '  %s\n' "${leftover[@]}" >&2
        die "stop left the above behind"
    fi
    say "stopped"
}

cmd_status() {
    local host ns pid ok=0 state_word
    for host in "${hosts[@]}"; do
        ns=$(netns "$host")
        if ! has_netns "$ns"; then
            echo "$host: stopped"
            ok=3
            continue
        fi
        pid=$(cat "$dir/$host/sshd.pid" 2>/dev/null || echo none)
        state_word=$(ip -br link show "$(link "$host")" 2>/dev/null | awk '{print $2}')
        if probe "$host" true 2>/dev/null; then
            echo "$host: up ($(addr "$host"), sshd pid $pid, link $(link "$host") ${state_word:-gone})"
        else
            echo "$host: not answering ($(addr "$host"), sshd pid $pid, link $(link "$host") ${state_word:-gone})"
            ok=3
        fi
    done
    return $ok
}

# What the selftest expects of running hosts.
check_up() {
    local host out
    for host in "${hosts[@]}"; do
        out=$(probe "$host" ip -4 -o addr show dev eth0) || die "selftest: ssh $host failed"
        [[ $out == *"$(addr "$host")/24"* ]] || die "selftest: $host has no $(addr "$host"): $out"
        # Through a ControlMaster too, then it must be closed by stop.
        timeout 10 ssh -F "$dir/config" "$host" true || die "selftest: ssh $host (multiplexed) failed"
    done
    [ -n "$(masters)" ] || die "selftest: no ControlMaster runs"
}

# What the header promises about taking h1 off the network, and bringing it back.
check_link_down() {
    local out
    ip link set "$(link h1)" down
    out=$(probe h1 true 2>&1) && die "selftest: h1 answers with its link down"
    [[ $out == *"No route to host"* ]] || die "selftest: h1 with its link down: $out"
    ip link set "$(link h1)" up
    probe h1 true || die "selftest: h1 does not answer once its link is up again"
    ip -n "$(netns h1)" link set eth0 down
    probe h1 true 2>/dev/null && die "selftest: h1 answers with its own side down"
    ip -n "$(netns h1)" link set eth0 up
    probe h1 true || die "selftest: h1 does not answer once its own side is up again"
    probe h2 true || die "selftest: h2 does not answer"
}

count_sshd() { ps -eo comm= | grep -cx sshd || true; }

check_down() {
    local before=$1 host
    status_out=$(cmd_status) && die "selftest: status says up after stop: $status_out"
    for host in "${hosts[@]}"; do
        has_netns "$(netns "$host")" && die "selftest: namespace of $host left"
    done
    [ "$(count_sshd)" = "$before" ] || die "selftest: sshd processes: $(count_sshd), before start: $before"
    return 0
}

cmd_selftest() {
    local was_up=no before
    cmd_status >/dev/null 2>&1 && was_up=yes
    cmd_stop
    before=$(count_sshd)
    cmd_start
    check_up
    check_link_down
    cmd_stop
    check_down "$before"
    cmd_start
    check_up
    cmd_stop
    check_down "$before"
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
