#!/bin/bash
# Regenerates lab/testdata/cisbench-sample*.{json,txt} (the inputs of TestCIS*) by running the vendored
# docker-bench-security, unmodified, against stand-ins: docker (answers as Debian's docker.io 20.10 would on the
# hardened lab VM, see the scenarios in ./docker), pgrep and a fake dockerd whose command line points at
# ./daemon.json (the file Step 5 writes for Docker 20.10). Runs in a temporary directory; changes nothing else.
#   bad       the gateway as Step 6 runs it plus two stray containers that break the controlled checks
#   hardened  the gateway alone
#   none      no container running (docker-bench skips the container checks of section 5)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=$(cd "$here/.." && pwd)
work=$(mktemp -d)
trap 'kill -- -"$(cat "$work/dockerd.pid")" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/bin"
cp "$here/docker" "$here/pgrep" "$work/bin/"
cp -r "$out/docker-bench-security" "$work/dbs"
setsid "$here/dockerd" --config-file="$here/daemon.json" >/dev/null 2>&1 &
echo $! >"$work/dockerd.pid"
export CIS_GEN_DIR=$work
cd "$work/dbs"
for s in bad hardened none; do
	rm -rf log
	PATH="$work/bin:$PATH" CIS_SCENARIO=$s bash ./docker-bench-security.sh -b -l log/referee.log \
		-c docker_daemon_configuration,container_runtime >"$work/$s.txt"
	case $s in
	bad) cp "$work/$s.txt" "$out/cisbench-sample.txt"; cp log/referee.log.json "$out/cisbench-sample.json" ;;
	hardened) cp log/referee.log.json "$out/cisbench-sample-hardened.json" ;;
	none) cp log/referee.log.json "$out/cisbench-sample-nocontainers.json" ;;
	esac
done
