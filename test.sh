#!/usr/bin/env bash
# The one test command: installs what the tests need, then vet, staticcheck, unit tests (-race), the
# namespace tests, brief fuzzing, the tmux TUI test and the lab end-to-end tests. Prints each phase's time.
# Environment: FUZZTIME (default 10s per fuzz target), SKIP_LAB=1 to leave the lab out.
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
T0=$(date +%s)
phase() { printf '\n=== %s (t+%ss)\n' "$1" "$(( $(date +%s) - T0 ))"; }

phase "packages"
need=()
for pair in iptables:iptables ufw:ufw sshd:openssh-server ssh:openssh-client nmap:nmap tmux:tmux dnsmasq:dnsmasq-base \
	debootstrap:debootstrap qemu-system-x86_64:qemu-system-x86 qemu-img:qemu-utils mkfs.ext4:e2fsprogs ip:iproute2 \
	curl:curl gpg:gpg openssl:openssl dpkg-scanpackages:dpkg-dev; do
	command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
if [ "${#need[@]}" -gt 0 ]; then
	if [ "$(id -u)" = 0 ]; then
		echo "installing: ${need[*]}"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	else
		echo "not root: cannot install ${need[*]}; tests that need them will skip"
	fi
fi

# What takes minutes without keeping both cores busy (downloads, debootstrap, npm) starts now and runs while
# vet, staticcheck and the unit tests do; each later phase waits for what it needs. Each job runs in its own
# process group (setsid), so an early exit stops it whole.
bg=$(mktemp -d /tmp/och-test.XXXXXX)
declare -A bg_pid=()
background() { # background NAME CMD...: run CMD in the background, its output in $bg/NAME.log
	local name=$1
	shift
	setsid -w bash -c '"$@" >"$0.log" 2>&1; echo $? >"$0.rc"' "$bg/$name" "$@" &
	bg_pid[$name]=$!
	echo "started in the background: $name"
}
await() { # await NAME: wait for a background job; prints its time; returns its exit status
	local name=$1 t=$(date +%s) rc
	wait "${bg_pid[$name]}" 2>/dev/null || true
	rc=$(cat "$bg/$name.rc" 2>/dev/null || echo "killed")
	echo "$name: exit $rc (waited $(( $(date +%s) - t ))s for it here)"
	[ "$rc" = 0 ] || tail -n 20 "$bg/$name.log"
	[ "$rc" = 0 ]
}
cleanup_bg() {
	local p
	for p in "${bg_pid[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$bg"
}
trap cleanup_bg EXIT
lab_wanted=0
if [ "${SKIP_LAB:-0}" != 1 ] && [ "$(id -u)" = 0 ] && [ -e /dev/net/tun ]; then lab_wanted=1; fi
openclaw_wanted=0
if [ "$(id -u)" = 0 ] && command -v ip >/dev/null && command -v npm >/dev/null; then
	openclaw_wanted=1
	background openclaw sh lab/openclaw-install.sh
fi
if [ "$lab_wanted" = 1 ]; then
	# lab/run.sh asks for it again: a cache hit then, or a build of its own if this one failed (image.sh
	# holds a lock, so two builds never run at once).
	background lab-image bash lab/image.sh
fi

phase "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "not gofmt'ed:"; echo "$unformatted"; exit 1; fi

phase "go vet"
go vet ./...

phase "staticcheck"
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

phase "unit tests (-race, -short)"
go test -race -short -count=1 ./...

if [ "$(id -u)" = 0 ] && command -v ip >/dev/null; then
	phase "the real OpenClaw CLI (npm openclaw@2026.9.6 with Node 24, cached; started in the background)"
	if [ "$openclaw_wanted" = 1 ]; then
		if ! await openclaw; then
			echo "could not install OpenClaw from npm: its tests will say they skipped"
		elif [ "$lab_wanted" = 1 ]; then
			background openclaw-rootfs sh lab/openclaw-image.sh # the lab's gateway image, built from that install
		fi
	else
		echo "npm not found: the OpenClaw CLI tests will say they skipped"
	fi

	phase "namespace and terminal tests (real kernel, in network namespaces this run creates)"
	go test -race -count=1 -run 'Netns|Namespace|Tmux' ./...
else
	echo "skipped namespace tests: they need root and iproute2"
fi

phase "fuzzing (${FUZZTIME:-10s} per target)"
for pkg in $(go list ./...); do
	for f in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
		echo "fuzz $pkg $f"
		go test -run '^$' -fuzz "^${f}\$" -fuzztime "${FUZZTIME:-10s}" "$pkg" >/tmp/ochfuzz.$$ 2>&1 || { cat /tmp/ochfuzz.$$; exit 1; }
	done
done
rm -f /tmp/ochfuzz.$$

phase "lab end-to-end tests (real Debian 12 VM under QEMU)"
if [ "${SKIP_LAB:-0}" = 1 ]; then
	echo "skipped the lab: SKIP_LAB=1"
elif [ "$(id -u)" != 0 ]; then
	echo "skipped the lab: it needs root (network namespaces, tap devices, debootstrap)"
elif [ ! -e /dev/net/tun ]; then
	echo "skipped the lab: /dev/net/tun does not exist on this machine"
else
	await lab-image || echo "the background image build failed: lab/run.sh builds it again"
	if [ -n "${bg_pid[openclaw-rootfs]:-}" ]; then
		await openclaw-rootfs || echo "the OpenClaw rootfs was not built: TestLabFullRun tries again"
	fi
	bash lab/run.sh
fi

phase "all green"
