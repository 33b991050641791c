#!/usr/bin/env bash
# lab/run.sh: run the real-VM lab tests.
#
# Needs root on Linux with /dev/net/tun; otherwise it says why and skips (exit 0). It installs the Debian
# packages the lab needs when they are missing, builds the VM image or takes it from the cache
# (/var/cache/openclaw-harden-lab/<recipe hash>/), then runs
#   OPENCLAW_HARDEN_LAB=1 go test -v -count=1 -timeout 75m ./lab/...
# and prints how long each part took. Extra arguments go to `go test` (e.g. -run TestLabStep0SSH).
# Whatever happens, it removes the lab's namespaces and qemu afterwards (names start with "ochlab-").
set -euo pipefail
export LC_ALL=C
cd "$(dirname "${BASH_SOURCE[0]}")/.."

t_start=${EPOCHREALTIME/./}
secs() { local now=${EPOCHREALTIME/./}; printf '%d.%01d' $(((now - $1) / 1000000)) $((((now - $1) / 100000) % 10)); }
say() { printf '[lab-run +%ss] %s\n' "$(secs "$t_start")" "$*"; }

skip() {
	say "SKIPPED the lab tests: $*"
	exit 0
}
[ "$(uname -s)" = Linux ] || skip "not Linux"
[ "$(id -u)" = 0 ] || skip "not root (the lab creates network namespaces, a tap device and a VM)"
[ -c /dev/net/tun ] || skip "/dev/net/tun does not exist"
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
command -v go >/dev/null || skip "no Go toolchain"

# Remove what a lab run (this one, or an earlier one that crashed) left behind: only names with our prefix,
# and only while holding the lab lock (a lab test that runs holds it: its lab is not ours to remove).
lab_cleanup() {
	local pf pid ns
	mkdir -p /run/ochlab
	exec 8>>/run/ochlab/lock
	if ! flock -n 8; then
		say "another lab run holds /run/ochlab/lock: leaving its namespaces alone"
		exec 8>&-
		return 0
	fi
	for pf in /run/ochlab/*.pid; do
		[ -f "$pf" ] || continue
		pid=$(cat "$pf" 2>/dev/null || true)
		if [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q ochlab; then
			kill -9 "$pid" 2>/dev/null || true
		fi
		rm -f "$pf"
	done
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^ochlab-' || true); do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			[ "$pid" != $$ ] && kill -9 "$pid" 2>/dev/null || true
		done
		sleep 0.2
		ip netns del "$ns" 2>/dev/null || true
	done
	flock -u 8
	exec 8>&-
}
trap lab_cleanup EXIT
trap 'exit 130' INT TERM

# Debian packages the lab needs (a fresh CI machine has none of them).
pkgs="debootstrap qemu-system-x86 qemu-utils iproute2 dnsmasq-base e2fsprogs openssl gnupg dpkg-dev openssh-client nmap curl iptables util-linux"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
	say "installing:$missing"
	t=${EPOCHREALTIME/./}
	apt-get -q update >/tmp/ochlab-apt.log 2>&1 || { tail -n 20 /tmp/ochlab-apt.log; exit 1; }
	DEBIAN_FRONTEND=noninteractive apt-get -q -y --no-install-recommends install $missing >>/tmp/ochlab-apt.log 2>&1 ||
		{ tail -n 20 /tmp/ochlab-apt.log; exit 1; }
	say "packages installed in $(secs "$t")s"
fi

lab_cleanup
t=${EPOCHREALTIME/./}
say "VM image: build or cache"
bash lab/image.sh >/dev/null
t_image=$(secs "$t")
say "VM image ready in ${t_image}s"

t=${EPOCHREALTIME/./}
say "go test ./lab/... (real VM under qemu TCG)"
rc=0
log=$(mktemp /tmp/ochlab-test-XXXXXX.log)
OPENCLAW_HARDEN_LAB=1 go test -v -count=1 -timeout 75m "$@" ./lab/... 2>&1 | tee "$log" || rc=${PIPESTATUS[0]}
t_tests=$(secs "$t")
# A failed lab run's output is long (a failed test ends with the VM's console): what failed and why is
# printed again last, where a reader of a cut-short CI log sees it. Per failed leaf test: its messages
# from the test files (t.Errorf, t.Fatalf, t.Logf; not the lab's progress lines), each cut to 25 lines.
if [ "$rc" != 0 ]; then
	say "FAILURE DIGEST (whole output in $log)"
	awk '
		/^=== (RUN|NAME|CONT|PAUSE)/ { cur = $3; msg = 0; next }
		/^ *--- (FAIL|PASS|SKIP)/ { if ($2 == "FAIL:") failed[$3] = 1; msg = 0; next }
		/^    +[A-Za-z0-9_]+\.go:[0-9]+: / {
			msg = ($0 !~ /^    +(lab|image)\.go:[0-9]+: /)
			if (msg) { n[cur]++; lines[cur, n[cur]] = $0; kept = 1 }
			next
		}
		msg && /^        / { if (kept < 25) { n[cur]++; lines[cur, n[cur]] = $0 } ; kept++; next }
		# go test -timeout: no --- FAIL lines, a panic naming the tests still running
		/^panic: / { panics[++np] = $0; inpanic = 1; next }
		inpanic && /^\t/ && np < 12 { panics[++np] = $0; next }
		{ msg = 0; inpanic = 0 }
		END {
			for (i = 1; i <= np; i++) print panics[i]
			for (t in failed) {
				leaf = 1
				for (u in failed) if (u != t && index(u, t "/") == 1) leaf = 0
				if (!leaf) continue
				print "--- FAIL: " t
				for (i = 1; i <= n[t]; i++) print lines[t, i]
			}
		}' "$log"
else
	rm -f "$log"
fi
lab_cleanup
left=$(ip netns list 2>/dev/null | grep -c '^ochlab-' || true)
say "timings: image ${t_image}s, lab tests ${t_tests}s, total $(secs "$t_start")s; lab namespaces left: $left"
exit $rc
