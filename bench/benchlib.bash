# benchlib.bash - what run.sh, lab_bench.sh and drain_bench.sh share. Sourced.

# bench_gen MIXGEN FILE SEED ARGS...: writes FILE with bench_mixgen unless it
# is there already and was made by the same generator binary with the same
# flags (FILE.stamp holds both).
bench_gen() {
    local mixgen=$1 f=$2 seed=$3 stamp
    shift 3
    stamp="$(md5sum <"$mixgen" | cut -d' ' -f1) -s $seed $*"
    if [ ! -s "$f" ] || [ "$(cat "$f.stamp" 2>/dev/null)" != "$stamp" ]; then
        echo "bench: writing $f" >&2
        "$mixgen" -o "$f.tmp" -s "$seed" "$@" >&2 && mv "$f.tmp" "$f" || return 1
        echo "$stamp" >"$f.stamp"
    fi
}

# bench_lab_up SD ID: a lab named ID (preset tw21-initial) whose own censor is
# stopped, for the bench to run its own in the censor namespace.
bench_lab_up() {
    local sd=$1 id=$2
    "$sd" lab up --name "$id" --quiet --preset tw21-initial >/dev/null || return 1
    kill -TERM "$(sed -n 's/^censor_pid //p' "/run/slowdown/labs/$id/state")"
    sleep 0.5
}

# bench_start SD ID LOG READY-FILE-or-"" ARGS...: starts ARGS in the lab's
# censor namespace in the background (its pid in BENCH_PID), output to LOG;
# waits up to 10 s for READY-FILE, or 1 s when there is none. Exits the
# script when the file does not appear.
bench_start() {
    local sd=$1 id=$2 log=$3 ready=$4
    shift 4
    [ -n "$ready" ] && rm -f "$ready"
    "$sd" lab exec "$id" censor -- "$@" >"$log" 2>&1 &
    # shellcheck disable=SC2034 # read by the callers
    BENCH_PID=$!
    if [ -n "$ready" ]; then
        for _ in $(seq 100); do [ -e "$ready" ] && return 0; sleep 0.1; done
        echo "bench: the censor did not start: $(cat "$log")" >&2
        exit 1
    fi
    sleep 1
}
