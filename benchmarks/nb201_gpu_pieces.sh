#!/usr/bin/env bash
# The NAS-Bench-201 experiment at the paper's budget (`examples/nasbench201_science.py --scale gpu`) in
# pieces of at most 10 minutes, for a GPU machine lent by the piece. Each piece runs one stage until the
# stage ends or the piece's time is up (then the process is killed, -9), and the next piece resumes it: the
# teacher from its last finished epoch, the pool after its last finished cell, the searches from their
# last finished trial. Everything a piece needs and leaves lives in $STATE (default gpu-state/, ignored by
# git): the CIFAR-10 archive (copy ../shared/data/cifar10-jpeg.tar.gz there), the cache and the pools; a
# lent machine must carry it in and bring it back.
#
#   bash benchmarks/nb201_gpu_pieces.sh teacher     # again until it exits 0 ("stage teacher: done")
#   bash benchmarks/nb201_gpu_pieces.sh pool
#   bash benchmarks/nb201_gpu_pieces.sh search --search-seeds 1 2 3
#
# Environment: STATE, PIECE_S (seconds a piece, default 570), SCALE (default gpu; smoke to try it on a
# CPU), PYTHON (default python). Exit status: 0 when the stage is done, 75 when the piece's time ran out
# (run it again), anything else a failure.
set -uo pipefail
stage=${1:?"usage: nb201_gpu_pieces.sh teacher|pool|report|search [arguments for the example]"}
shift
state=${STATE:-gpu-state}
piece_s=${PIECE_S:-570}
if ! [[ $piece_s =~ ^[0-9]+$ ]]; then
    echo "PIECE_S must be a whole number of seconds; got $piece_s" >&2
    exit 2
fi
mkdir -p "$state/cache" "$state/pools"
timeout --signal=KILL "$piece_s" "${PYTHON:-python}" "$(dirname "$0")/../examples/nasbench201_science.py" \
    --scale "${SCALE:-gpu}" --stage "$stage" --data "$state/cifar10-jpeg.tar.gz" --cache "$state/cache" \
    --pools "$state/pools" "$@"
status=$?
# 137 is also an out-of-memory kill: only a piece that ran its whole time is one whose time ran out.
if [ "$status" -eq 137 ] && [ "$SECONDS" -ge "$piece_s" ]; then
    echo "stage $stage: the piece's ${piece_s} s are over; run it again to resume"
    exit 75
fi
if [ "$status" -eq 0 ]; then
    echo "stage $stage: done"
fi
exit "$status"
