#!/usr/bin/env bash
# The README's Quick start, exactly as written there, in a clean Debian 12 root: nothing in it but what
# `mmdebstrap --variant=apt` gives plus python3, python3-venv (what the README asks for), ca-certificates
# and curl (its second command). Not part of CI: it takes minutes (the root about 1 min, pip 2-4 min).
#
#   bash tests/quickstart_debian12.sh             as root, on Debian with mmdebstrap (tests/run.sh installs it)
#   KEEP=1 bash tests/quickstart_debian12.sh      keep the root (its path is printed) to look inside
#   README=/tmp/old-README.md bash tests/quickstart_debian12.sh    try another README's commands
#
# What it does: builds the root, copies the checkout in (tracked and untracked files, not ignored ones:
# what a clone would hold once committed), runs the first Quick start command in the background from the
# checkout, waits for the server to answer on 127.0.0.1:8080, runs the second command (curl of the sample)
# and checks the answer, then stops the server with Ctrl-C (SIGINT) as a person would.
#
# The one change to the commands' environment: this machine reaches PyPI through a re-signing proxy, so pip
# inside the root trusts the host's CA bundle (PIP_CERT and REQUESTS_CA_BUNDLE point at a copy of
# /etc/ssl/certs/ca-certificates.crt). On a machine without such a proxy the copy is just Debian's bundle.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
README="${README:-$REPO/README.md}"
SUITE=bookworm
PACKAGES=${PACKAGES:-python3,python3-venv,ca-certificates,curl}
PORT=8080                     # the README's
READY_TIMEOUT=900             # pip install of the CLI and the runtime, then the model load
CHECKOUT=/root/mlgit          # inside the root

log() { printf '[quickstart %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[quickstart] FAILED: %s\n' "$*" >&2; exit 1; }

# readme_command N: the Nth ```bash block of README's "## Quick start" section, as one line of shell.
readme_command() {
  awk -v want="$1" '
    /^## / { in_section = ($0 == "## Quick start") }
    in_section && /^```bash$/ { n++; inside = (n == want); next }
    inside && /^```$/ { exit }
    inside { print }
  ' "$README"
}

((EUID == 0)) || die "needs root (mmdebstrap, chroot, mount)"
command -v mmdebstrap >/dev/null || die "mmdebstrap not found: apt-get install mmdebstrap"
port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }
for _ in $(seq 60); do port_taken || break; log "127.0.0.1:$PORT is taken (the root shares this machine's network): waiting"; sleep 5; done
port_taken && die "127.0.0.1:$PORT is still taken after 5 min: stop what listens there"
FIRST=$(readme_command 1)
SECOND=$(readme_command 2)
[[ -n $FIRST && -n $SECOND ]] || die "no Quick start commands found in $README"
[[ $FIRST != *$'\n'* ]] || die "the first Quick start command is more than one line:"$'\n'"$FIRST"
log "first command:  $FIRST"
log "second command: $SECOND"

TARGET=$(mktemp -d /tmp/mlgit-debian12.XXXXXX)
SERVER_PID=""
cleanup() {
  local rc=$?
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM -- "-$SERVER_PID" 2>/dev/null || true
    sleep 1
    kill -KILL -- "-$SERVER_PID" 2>/dev/null || true
  fi
  umount "$TARGET/proc" 2>/dev/null || true
  umount -R "$TARGET/dev" 2>/dev/null || true
  if [[ -n ${KEEP:-} ]]; then
    log "root kept in $TARGET"
  else
    rm -rf --one-file-system "$TARGET" || log "WARNING: could not remove $TARGET"
  fi
  exit "$rc"
}
trap cleanup EXIT

started=$(date +%s)
log "mmdebstrap --variant=apt --include=$PACKAGES $SUITE $TARGET"
mmdebstrap --variant=apt --include="$PACKAGES" "$SUITE" "$TARGET" </dev/null >"$TARGET.mmdebstrap.log" 2>&1 \
  || { tail -n 20 "$TARGET.mmdebstrap.log" >&2; die "mmdebstrap failed"; }
rm -f "$TARGET.mmdebstrap.log"
log "root ready after $(($(date +%s) - started)) s: $(chroot "$TARGET" python3 --version)," \
  "pip: $(chroot "$TARGET" sh -c 'command -v pip3 || echo none'), kubectl: none"
chroot "$TARGET" sh -c '! command -v kubectl' >/dev/null || die "the root is not clean: it has kubectl"

mkdir -p "$TARGET$CHECKOUT"
# shellcheck disable=SC2016  # the inner sh expands "$f", not this shell
git -C "$REPO" ls-files -z --cached --others --exclude-standard \
  | (cd "$REPO" && xargs -0 sh -c 'for f; do [ -e "$f" ] || [ -L "$f" ] && printf "%s\0" "$f"; done' sh) \
  | tar -C "$REPO" --null -T - -cf - | tar -C "$TARGET$CHECKOUT" -xf -
cp /etc/ssl/certs/ca-certificates.crt "$TARGET/root/host-ca-certificates.crt"
mount -t proc proc "$TARGET/proc"
mount --rbind /dev "$TARGET/dev"

in_root() {  # in_root COMMAND: a login-like environment in the checkout, nothing inherited from here
  chroot "$TARGET" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PIP_CERT=/root/host-ca-certificates.crt REQUESTS_CA_BUNDLE=/root/host-ca-certificates.crt \
    /bin/bash -c "cd $CHECKOUT && $1"
}

log "running the first command in the background (log: $TARGET/root/first.log)"
started=$(date +%s)
# Its own process group, for the Ctrl-C below; SIGINT back to its default (a background job ignores it).
setsid env --default-signal=INT bash -c "$(declare -f in_root); TARGET=$TARGET CHECKOUT=$CHECKOUT in_root \"\$1\"" \
  _ "$FIRST" >"$TARGET/root/first.log" 2>&1 </dev/null &
SERVER_PID=$!
deadline=$((started + READY_TIMEOUT))
until curl -fsS --noproxy '*' --max-time 2 "http://127.0.0.1:$PORT/v2/health/ready" >/dev/null 2>&1; do
  kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 30 "$TARGET/root/first.log" >&2; die "the first command exited"; }
  (($(date +%s) < deadline)) || { tail -n 30 "$TARGET/root/first.log" >&2; die "not serving within ${READY_TIMEOUT}s"; }
  sleep 2
done
log "serving on 127.0.0.1:$PORT after $(($(date +%s) - started)) s"

answer=$(in_root "$SECOND") || die "the second command failed: $answer"
log "answer: $answer"
python3 - "$answer" <<'EOF' || die "the answer is not the sample's expected label"
import json, sys
answer = json.loads(sys.argv[1])
outputs = {o["name"]: o for o in answer["outputs"]}
assert answer["model_name"] == "iris-classifier", answer
assert outputs["label"]["data"] == [0], outputs  # the sample is an Iris setosa
EOF

log "Ctrl-C (SIGINT) to the server"
kill -INT -- "-$SERVER_PID"
for _ in $(seq 60); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.5; done
kill -0 "$SERVER_PID" 2>/dev/null && die "the server did not stop within 30 s of Ctrl-C"
wait "$SERVER_PID" && rc=0 || rc=$?
SERVER_PID=""
tail -n 3 "$TARGET/root/first.log" >&2
((rc == 0 || rc == 130)) || die "the first command exited $rc after Ctrl-C"
log "PASSED: the README's Quick start works as written on a clean Debian 12 ($(chroot "$TARGET" python3 --version))"
