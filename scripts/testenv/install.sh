#!/usr/bin/env bash
# Installs what the test environment for remote workers needs and is missing, quietly, with
# apt-get, when run as root:
#
#   scripts/testenv/install.sh [ssh] [slurm]     (no argument: both)
#
#   ssh    sshd, ssh and ssh-keygen (openssh-server, openssh-client) and ip (iproute2)
#   slurm  slurmctld, slurmd, srun, sinfo, scontrol (slurm-wlm), munged and mungekey (munge)
#
# Exits 0 when everything asked for is there afterwards; otherwise exits 1 and names what is
# missing (as another user, or without apt-get, it installs nothing).
set -euo pipefail

want=("$@")
[ ${#want[@]} -gt 0 ] || want=(ssh slurm)
for part in "${want[@]}"; do
    case $part in
        ssh|slurm) ;;
        *) echo "install.sh: unknown part '$part' (ssh, slurm)" >&2; exit 2 ;;
    esac
done

# "program package" pairs for each part.
parts_ssh=("/usr/sbin/sshd openssh-server" "ssh openssh-client" "ssh-keygen openssh-client"
    "ip iproute2")
parts_slurm=("slurmctld slurmctld" "slurmd slurmd" "srun slurm-client" "sinfo slurm-client"
    "scontrol slurm-client" "/usr/sbin/munged munge" "/usr/sbin/mungekey munge"
    "runuser util-linux" "timeout coreutils")

missing() {
    local part pair program package
    for part in "${want[@]}"; do
        case $part in
            ssh) set -- "${parts_ssh[@]}" ;;
            slurm) set -- "${parts_slurm[@]}" ;;
        esac
        for pair in "$@"; do
            program=${pair% *}
            package=${pair#* }
            command -v "$program" >/dev/null 2>&1 || echo "$package"
        done
    done | sort -u
}

mapfile -t need < <(missing)
[ ${#need[@]} -eq 0 ] && exit 0
# slurm-wlm brings slurmctld, slurmd and slurm-client together.
for i in "${!need[@]}"; do
    case ${need[$i]} in slurmctld|slurmd|slurm-client) need[i]=slurm-wlm ;; esac
done
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "install.sh: missing ${need[*]} (install them as root with apt-get)" >&2
    exit 1
fi
echo "install.sh: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Package lists fetched within the last hour (say, by scripts/test.sh) are used as they are.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -60 2>/dev/null)" ] ||
    ! apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
mapfile -t still < <(missing)
if [ ${#still[@]} -gt 0 ]; then
    echo "install.sh: still missing after apt-get: ${still[*]}" >&2
    exit 1
fi
