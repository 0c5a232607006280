#!/bin/bash
# The init of a confined agent: PID 1 of the agent's own PID namespace, in a mount namespace of its own
# (harness/confine.ts starts it as `unshare --pid --fork --kill-child --mount --propagation private
# --mount-proc`, inside the lab node's network namespace, still as root). It
#   1. makes the root filesystem read-only and gives the agent a private, empty /tmp and /dev/shm
#      (nothing it writes there reaches the host; all of it vanishes with the namespace);
#   2. shows it the folders it runs from (--reveal HIDDEN DIR) where the host hides them from it: a folder
#      closed to other users on the way (HIDDEN, e.g. /root) is covered by an empty tmpfs and DIR alone is
#      bound back at its own path, read-only; a folder in the host's /tmp is bound into the private one;
#   3. copies the files the agent is given (--file SRC DEST) into its private /tmp, owned by the agent;
#   4. says "[natmatrix-init: agent started]" (the agent's deadline and NMX_SPAWNED_AT_MS count from
#      here) and starts the agent as the unprivileged user (setpriv: uid/gid, no supplementary groups, no
#      capabilities in any set, no_new_privs) and forwards SIGTERM/SIGINT/SIGHUP to it (the kernel
#      drops signals to a namespace's PID 1 that it has no handler for);
#   5. when the agent ends, names the processes it left behind (the kernel kills them all when this
#      PID 1 exits) and how the agent ended, on stderr in lines the harness reads and strips:
#        [natmatrix-init: left behind: NAME NAME …]    [natmatrix-init: killed by SIGNAME]
# Usage: confine.sh UID GID [--reveal HIDDEN DIR]... [--file SRC DEST]... -- COMMAND [ARG]...
set -u
agent_path=${PATH:-/usr/bin:/bin}
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
setpriv=$(command -v setpriv) || { printf '[natmatrix-init: cannot confine the agent: setpriv not found]\n' >&2; exit 125; }
die() {
  printf '[natmatrix-init: cannot confine the agent: %s]\n' "$1" >&2
  exit 125
}
[ $$ -eq 1 ] || die "not PID 1 of a PID namespace of its own"
uid=$1 gid=$2
shift 2
files=()
reveals=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do
  case $1 in
    --file) files+=("$2" "$3"); shift 3 ;;
    --reveal) reveals+=("$2" "$3"); shift 3 ;;
    *) die "unknown option $1" ;;
  esac
done
shift

# open what the agent is given or shown before anything covers it (a source may be in /tmp)
rfds=()
for ((i = 0; i < ${#reveals[@]}; i += 2)); do
  exec {fd}<"${reveals[i + 1]}" || die "cannot open ${reveals[i + 1]}"
  rfds+=("$fd")
done
fds=()
for ((i = 0; i < ${#files[@]}; i += 2)); do
  exec {fd}<"${files[i]}" || die "cannot read ${files[i]}"
  fds+=("$fd")
done

# / read-only (with it /var/tmp, on most hosts); /tmp and /dev/shm, world-writable mounts of their own
# on the host, replaced by private ones
mount -o remount,bind,ro / 2>/dev/null || die "cannot make / read-only"
# both with one process (each mount process costs ~10 ms of CPU, paid per agent start)
mount -a -T "${BASH_SOURCE[0]%/*}/confine.fstab" || die "cannot mount a private /tmp and /dev/shm"
covered=" /tmp /dev/shm "
for ((i = 0; i < ${#reveals[@]}; i += 2)); do
  hidden=${reveals[i]} dir=${reveals[i + 1]} fd=${rfds[i / 2]}
  case $covered in
    *" $hidden "*) ;;
    *) mount -t tmpfs -o mode=755,nosuid,nodev,size=1m natmatrix-cover "$hidden" || die "cannot cover $hidden"
       covered+="$hidden " ;;
  esac
  # the folder, by the descriptor opened before it was covered, back at its own path and read-only
  # (--no-canonicalize: mount would otherwise resolve the descriptor's link to the covered path)
  mkdir -p "$dir" && mount --no-canonicalize --bind "/proc/$$/fd/$fd" "$dir" && mount -o remount,bind,ro "$dir" || die "cannot show the agent $dir"
  exec {fd}<&-
done
for ((i = 0; i < ${#files[@]}; i += 2)); do
  src=${files[i]} dst=${files[i + 1]} fd=${fds[i / 2]}
  case $dst in /tmp/*) ;; *) die "a given file must go to /tmp: $dst" ;; esac
  mkdir -p "${dst%/*}" && cat <&"$fd" >"$dst" && chown "$uid:$gid" "$dst" && chmod 0400 "$dst" || die "cannot give the agent $src"
  exec {fd}<&-
done

child=
forward() { [ -n "$child" ] && kill -s "$1" "$child" 2>/dev/null; }
trap 'forward TERM' TERM
trap 'forward INT' INT
trap 'forward HUP' HUP
# the agent's time starts now: its NMX_SPAWNED_AT_MS, and (by this line) the harness's deadline
if [ -n "${NMX_SPAWNED_AT_MS:-}" ]; then
  now=${EPOCHREALTIME//[.,]/}
  export NMX_SPAWNED_AT_MS=${now:0:${#now}-3}
fi
printf '[natmatrix-init: agent started]\n' >&2
# (bash gives a background job /dev/null for stdin; the agent gets ours: a serving agent reads its tries there)
PATH=$agent_path "$setpriv" --reuid="$uid" --regid="$gid" --clear-groups --no-new-privs --inh-caps=-all --bounding-set=-all -- "$@" <&0 &
child=$!
while :; do
  wait "$child"
  status=$?
  kill -0 "$child" 2>/dev/null || break # a trapped signal ended the wait, not the agent
done

# what the agent left running (not a zombie): named, then killed by the kernel as this PID 1 exits
leftovers() {
  left=()
  for d in /proc/[0-9]*; do
    [ "${d#/proc/}" = 1 ] && continue
    state=
    while read -r key value _; do
      if [ "$key" = State: ]; then state=$value; break; fi
    done <"$d/status" 2>/dev/null
    [ -z "$state" ] || [ "$state" = Z ] && continue
    read -r name <"$d/comm" 2>/dev/null && left+=("$name")
  done
}
leftovers
# a process caught between fork and exec would be named after its parent: let it settle once
[ ${#left[@]} -gt 0 ] && sleep 0.05 && leftovers
[ ${#left[@]} -gt 0 ] && printf '\n[natmatrix-init: left behind: %s]\n' "${left[*]}" >&2
[ "$status" -gt 128 ] && [ "$status" -lt 160 ] && printf '\n[natmatrix-init: killed by SIG%s]\n' "$(kill -l $((status - 128)))" >&2
exit "$status"
