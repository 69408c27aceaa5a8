#!/bin/sh
# Runs a command as a 2-rank Open MPI job on two "hosts" of this machine: two
# Linux network namespaces (seghost1 at 10.77.0.1, seghost2 at 10.77.0.2)
# joined by a veth pair. Each rank sees only its own namespace's network,
# Open MPI places them on two nodes, and the ranks talk TCP over the veth link
# (`--mca btl tcp,self`: no shared-memory transport), so nothing may assume
# one machine. The file system is shared, as on a cluster with a shared
# volume. Needs root.
#
#   Scripts/two_hosts_netns.sh .build/release/segment train --data DATA --model-dir MODEL ...
#
# mpirun runs in seghost1; its rsh agent (instead of ssh) starts the daemon
# for 10.77.0.2 inside seghost2. Environment: SEGMENTATION_THREADS (default 1)
# and SEGMENTATION_CHECK_WEIGHTS (default 1) are passed to both ranks.
set -eu
[ "$(id -u)" = 0 ] || { echo "error: network namespaces need root" >&2; exit 1; }
[ $# -gt 0 ] || { echo "usage: $0 COMMAND [ARGUMENTS...]" >&2; exit 2; }
command -v mpirun >/dev/null || { echo "error: mpirun not found (apt-get install openmpi-bin)" >&2; exit 1; }

remove_namespaces() { ip netns del seghost1 2>/dev/null || true; ip netns del seghost2 2>/dev/null || true; }
scratch=$(mktemp -d)
job=
trap 'remove_namespaces; rm -rf "$scratch"' EXIT
trap '[ -n "$job" ] && kill "$job" 2>/dev/null; exit 130' INT TERM
remove_namespaces  # left over from an interrupted run

ip netns add seghost1
ip netns add seghost2
ip link add vethA netns seghost1 type veth peer name vethB netns seghost2
ip -n seghost1 addr add 10.77.0.1/24 dev vethA
ip -n seghost2 addr add 10.77.0.2/24 dev vethB
for ns in seghost1 seghost2; do ip -n $ns link set lo up; done
ip -n seghost1 link set vethA up
ip -n seghost2 link set vethB up

# Open MPI's launch agent: "AGENT HOST COMMAND..." runs COMMAND on HOST.
cat > "$scratch/agent" <<'AGENT'
#!/bin/sh
host="$1"; shift
case "$host" in
    10.77.0.1) namespace=seghost1 ;;
    10.77.0.2) namespace=seghost2 ;;
    *) echo "unknown host $host" >&2; exit 1 ;;
esac
exec ip netns exec "$namespace" /bin/sh -c "$*"
AGENT
chmod +x "$scratch/agent"

ip netns exec seghost1 mpirun --allow-run-as-root -np 2 --host 10.77.0.1:1,10.77.0.2:1 \
    --mca plm_rsh_agent "$scratch/agent" --mca btl tcp,self \
    --mca btl_tcp_if_include 10.77.0.0/24 --mca oob_tcp_if_include 10.77.0.0/24 \
    -x SEGMENTATION_THREADS="${SEGMENTATION_THREADS:-1}" -x SEGMENTATION_CHECK_WEIGHTS="${SEGMENTATION_CHECK_WEIGHTS:-1}" \
    "$@" &
job=$!
wait "$job"
