# Shell helpers shared by tests/cluster's scripts (sourced, never run): messages, and background processes
# each with a pid file and a log file. The sourcing script sets, before calling them:
#   NAME  the prefix of its messages          PIDS  the folder of its pid files     LOGS  the folder of its logs
# shellcheck shell=bash disable=SC2153  # NAME, PIDS, LOGS: set by the sourcing script

log() { printf '[%s %s] %s\n' "$NAME" "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "$NAME" "$*" >&2; exit 1; }
tail_log() { [[ -f $1 ]] && { log "last lines of $1:"; tail -n 30 "$1" >&2; }; return 0; }
elapsed() { echo $(($(date +%s) - $1)); }

pid_of() { [[ -s $PIDS/$1 ]] && cat "$PIDS/$1"; }
alive() { local pid; pid=$(pid_of "$1") && kill -0 "$pid" 2>/dev/null; }

start() {  # start NAME BINARY ARGS...: a background process with its log and pid file (once)
  local name=$1
  shift
  alive "$name" && return
  mkdir -p "$PIDS" "$LOGS"
  # setsid: its own session, so that a Ctrl-C of the caller or the end of a test run does not stop it;
  # 9>&-: never inherit tests/run.sh's setup lock.
  setsid "$@" </dev/null >>"$LOGS/$name.log" 2>&1 9>&- &
  echo $! >"$PIDS/$name"
}

wait_until() {  # wait_until SECONDS WHAT COMPONENT COMMAND...: poll COMMAND; fail early if COMPONENT exits
  local timeout=$1 what=$2 component=$3 deadline
  shift 3
  deadline=$(($(date +%s) + timeout))
  until "$@" >/dev/null 2>&1; do
    if [[ -n $component ]] && ! alive "$component"; then
      tail_log "$LOGS/$component.log"; die "$component exited while waiting for $what"
    fi
    (($(date +%s) < deadline)) || { [[ -n $component ]] && tail_log "$LOGS/$component.log"; die "$what: not within ${timeout}s"; }
    sleep 0.5
  done
}
