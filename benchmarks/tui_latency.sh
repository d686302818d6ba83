#!/bin/bash
# The app's waits as a user meets them, through tmux (a real terminal), for two trees side by side:
#   benchmarks/tui_latency.sh OLD_TREE NEW_TREE DATA_ROOT RUNS_DIR [REPEATS]
# 1. seconds from start until the launch screen draws, and until it shows the datasets' states;
# 2. the adrenalmnist3d browser (DATA_ROOT must hold adrenalmnist3d.npz): open (until its first
#    pictures' titles), `]` (next slice), `t`
#    (next split), each until its text is on screen. The browse key is `b` before issue 26, `i` after;
#    pass it as BROWSE_OLD / BROWSE_NEW (defaults b, i). Polls the pane every 0.05-0.1 s.
set -u
old=$1 new=$2 data=$3 runs=$4 n=${5:-3}
wait_text() {  # session text: seconds until text is in the pane
    local t0=$(date +%s.%N)
    for _ in $(seq 1 1200); do
        tmux capture-pane -p -t "$1" 2>/dev/null | grep -q -- "$2" && { echo "$(date +%s.%N) - $t0" | bc; return; }
        sleep 0.05
    done
    echo timeout
}
start() {  # session tree width height
    tmux kill-session -t "$1" 2>/dev/null
    tmux new-session -d -s "$1" -x "$3" -y "$4" \
        "cd $2 && PYTHONPATH=$2 damtui --runs-dir $runs --data-root $data"
}
for i in $(seq 1 "$n"); do
    for tree in "$old" "$new"; do
        start lat "$tree" 80 24
        first=$(wait_text lat "Dataset"); states=$(wait_text lat "adrenalmnist3d  present")
        tmux kill-session -t lat
        key=${BROWSE_OLD:-b}; [ "$tree" = "$new" ] && key=${BROWSE_NEW:-i}
        start lat "$tree" 120 40
        wait_text lat "adrenalmnist3d  present" >/dev/null
        tmux send-keys -t lat Down Down; sleep 1
        tmux send-keys -t lat "$key"; open=$(wait_text lat "in train")
        sleep 2; tmux send-keys -t lat ']'; slice=$(wait_text lat "middle+1")
        sleep 2; tmux send-keys -t lat t; split=$(wait_text lat "pixels (val)")
        tmux kill-session -t lat
        echo "$tree: first screen ${first}s (states ${states}s after it); browser open ${open}s, ] ${slice}s, t ${split}s"
    done
done
