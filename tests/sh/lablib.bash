# lablib.bash - shared by the lab_*.sh tests (sourced, so not a test itself).
#
# Every lab a test makes is named after the test's pid, listed in LABS and
# taken down on exit whatever happens; tests never use 'lab down --all',
# which would remove other people's labs too.

SD_BIN=${SD_BIN:?SD_BIN must point at the slowdown binary}
LABS=()

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

# Skips (exit 77) unless we are root and the kernel has what the lab needs.
need_lab() {
    [ "$(id -u)" = 0 ] || skip "the lab needs root"
    for t in ip tc iptables-legacy ip6tables-legacy; do
        command -v "$t" >/dev/null || skip "needs $t"
    done
    local probe="sd-probe$$-x"
    ip netns add "$probe" 2>/dev/null || skip "cannot create network namespaces"
    ip netns exec "$probe" iptables-legacy -w -t mangle -A PREROUTING -p tcp -m connbytes --connbytes 0:1 \
        --connbytes-dir both --connbytes-mode packets -j NFQUEUE --queue-num 0 --queue-bypass 2>/dev/null
    local ok=$?
    ip netns del "$probe"
    [ $ok = 0 ] || skip "the kernel lacks NFQUEUE or connbytes for iptables-legacy"
}

cleanup() {
    for id in "${LABS[@]}"; do
        "$SD_BIN" lab down "$id" >/dev/null 2>&1
    done
}
trap cleanup EXIT

lab_up() {
    local id=$1
    shift
    LABS+=("$id")
    "$SD_BIN" lab up --name "$id" --quiet "$@" >/dev/null || fail "lab up --name $id $*"
}

# fetch ID [lab fetch options] ADDR: one measurement from the client namespace (a JSON line).
fetch() {
    local id=$1
    shift
    "$SD_BIN" lab exec "$id" client -- "$SD_BIN" lab fetch "$@"
}

# json_num KEY < line, json_str KEY < line
json_num() { sed -n "s/.*\"$1\":\([-0-9.]*\).*/\1/p"; }
json_str() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }

# lt A B: true when A < B (decimals).
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }

censor_pid() { sed -n 's/^censor_pid //p' "/run/slowdown/labs/$1/state"; }

# queue_seq ID Q: the kernel's count of packets queued to queue Q of lab ID's censor so far (id_sequence).
queue_seq() {
    "$SD_BIN" lab exec "$1" censor -- cat /proc/net/netfilter/nfnetlink_queue | awk -v q="$2" '$1 == q { print $8 }'
}

# expect_workers_counted ID PID: the two workers' own packet count (SIGUSR1 prints the stats, published
# every 0.5 s) matches what the kernel queued to queues 0 and 1.
expect_workers_counted() {
    local id=$1 pid=$2 log=/run/slowdown/labs/$1/censor.log n q0 q1
    [ -e "$log" ] || fail "no censor log at $log"
    for _ in $(seq 1 20); do
        sleep 0.6
        q0=$(queue_seq "$id" 0) q1=$(queue_seq "$id" 1)
        kill -USR1 "$pid"
        sleep 0.2
        n=$(sed -n 's/.*packets \([0-9]*\) (receives.*/\1/p' "$log" | tail -1)
        [ "${n:-0}" = $((q0 + q1)) ] && return 0
    done
    fail "the workers counted ${n:-none} packets, the kernel queued $q0 + $q1"
}

# Waits up to $3 seconds for file $1 to contain $2.
wait_for() {
    for _ in $(seq 1 $(($3 * 10))); do
        grep -q -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# Waits up to $2 seconds for file $1 to exist.
wait_file() {
    for _ in $(seq 1 $(($2 * 10))); do
        [ -e "$1" ] && return 0
        sleep 0.1
    done
    return 1
}

# The lab left nothing: no namespace, no mark.
assert_gone() {
    ip netns list | grep -q "^sd-$1-" && fail "namespaces of lab $1 are left"
    [ -e "/run/slowdown/labs/$1" ] && fail "the mark of lab $1 is left"
    return 0
}

# expect_throttled LABEL LINE / expect_fast LABEL LINE
expect_throttled() {
    local k
    k=$(echo "$2" | json_num kbps)
    lt "$k" 250 || fail "$1: $k kbit/s, expected throttled (~130): $2"
    lt 40 "$k" || fail "$1: $k kbit/s, expected ~130 (too slow: broken?): $2"
    echo "ok: $1 throttled, $k kbit/s"
}
expect_fast() {
    local k
    k=$(echo "$2" | json_num kbps)
    lt 5000 "$k" || fail "$1: $k kbit/s, expected Mbit/s: $2"
    echo "ok: $1 not throttled, $k kbit/s"
}
