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
	phase "the real OpenClaw CLI (npm openclaw@2026.9.6 with Node 24, cached)"
	if command -v npm >/dev/null; then
		sh lab/openclaw-install.sh >/dev/null || echo "could not install OpenClaw from npm: its tests will say they skipped"
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
	bash lab/run.sh
fi

phase "all green"
