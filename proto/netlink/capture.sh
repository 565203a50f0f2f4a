#!/usr/bin/env bash
# Re-captures the golden RTM_NEWLINK request vectors in this directory: runs `ip -d link add …` under
# strace (-e write=<fd> dumps every byte sendmsg hands the kernel), keeps the first RTM_NEWLINK
# request (nlmsg_type 0x0010) and writes it as hex with the command and tool versions on top.
# Needs root, strace and iproute2. The request bytes do not depend on whether the kernel accepts
# them (this kernel has no ipip: that request is still captured, then rejected).
# Usage: sudo proto/netlink/capture.sh
set -euo pipefail
cd "$(dirname "$0")"
NS=tbcapture$$
ip netns add "$NS"
cleanup() { ip link del tbcapv0 2>/dev/null || true; ip link del tbcapv2 2>/dev/null || true;
  ip link del tbcapvx 2>/dev/null || true; ip netns del "$NS" 2>/dev/null || true; }
trap cleanup EXIT

capture() { # name, ip args…
  local name=$1; shift
  local out
  out=$(strace -e trace=sendmsg -e write=3 ip -d "$@" 2>&1 >/dev/null || true)
  # hex dump lines look like " | 00000  78 00 00 00 10 00 05 06  …  ascii |"; take the first buffer whose type is 0x0010
  local hex
  hex=$(printf '%s\n' "$out" | awk '
    /^ \* [0-9]+ bytes in buffer/ { if (buf != "" && !done && substr(buf, 9, 4) == "1000") { print buf; done = 1 } buf = ""; next }
    /^ \| [0-9a-f]+  / { line = substr($0, 11, 48); gsub(/ /, "", line); buf = buf line; next }
    END { if (buf != "" && !done && substr(buf, 9, 4) == "1000") print buf }')
  [ -n "$hex" ] || { echo "no RTM_NEWLINK captured for: ip $*" >&2; exit 1; }
  {
    echo "# ip -d $*" | sed "s/$NS/NS/g"
    echo "# captured $(date -u +%Y-%m-%d) with $(ip -V) on Linux $(uname -r) by proto/netlink/capture.sh"
    echo "# bytes 8..15 (nlmsg_seq, nlmsg_pid) vary per run; tests compare with them zeroed"
    echo "$hex"
  } > "$name.hex"
  echo "$name.hex: ${#hex} hex chars"
}

capture veth link add tbcapv0 type veth peer name tbcapv1
capture veth-mtu-mac link add tbcapv0 mtu 1450 address ee:ee:ee:ee:ee:ee type veth peer name tbcapv1 mtu 1450
ip link del tbcapv0 2>/dev/null || true
capture veth-peer-netns link add tbcapv2 mtu 1440 address ee:ee:ee:ee:ee:ee type veth peer mtu 1440 netns "$NS" name eth0
capture ipip link add tunl0 type ipip
capture ipip-mtu link add tunl0 mtu 1480 type ipip
capture ipip-local link add tunl0 mtu 1480 type ipip local 10.0.0.1 ttl 64
capture vxlan link add tbcapvx mtu 1450 address 66:12:34:56:78:9a type vxlan id 4096 local 10.0.0.1 dstport 4789 nolearning
