#!/usr/bin/env bash
# lab/image.sh: build (or find in the cache) the lab's Debian 12 VM image and its stand-in apt mirror.
#
# Output: the cache directory, printed alone on the last line of stdout. Progress goes to stderr.
# The directory holds:
#   base.img            raw ext4 root filesystem (3 GiB, sparse), booted read-only via a qcow2 overlay
#   vmlinuz initrd.img  the image's own kernel and initramfs (for qemu -kernel/-initrd)
#   id_ed25519{,.pub}   the harness key, authorized for user admin in the image
#   ssh_host_ed25519_key.pub  the image's host key (the harness pins it)
#   ca.crt ca.key server.crt server.key   lab CA (trusted in the image) and the lab servers' certificate
#   mirror/             the stand-in Debian mirror (signed with a key trusted in the image)
#   recipe.sha256 timings.txt ok
#
# The cache key is the sha256 of this script: everything the image contains is written here.
# Needs root and Debian packages: debootstrap e2fsprogs openssh-client openssl gnupg dpkg-dev qemu-system-x86.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
self="$here/image.sh"
cache_root=${OPENCLAW_HARDEN_LAB_CACHE:-/var/cache/openclaw-harden-lab}
recipe=$(sha256sum "$self" | cut -d' ' -f1)
key=${recipe:0:16}
out="$cache_root/$key"

t_start=${EPOCHREALTIME/./}
t_phase=$t_start
elapsed() { local now=${EPOCHREALTIME/./}; printf '%d.%01d' $(((now - $1) / 1000000)) $((((now - $1) / 100000) % 10)); }
log() { printf '[lab-image +%ss] %s\n' "$(elapsed "$t_start")" "$*" >&2; }
phase() { # phase NAME: log the time the previous phase took and start a new one
	local took
	took=$(elapsed "$t_phase")
	[ -n "${cur_phase:-}" ] && { log "done: $cur_phase (${took}s)"; echo "$cur_phase ${took}s" >>"$work/timings.txt"; }
	cur_phase=$1
	t_phase=${EPOCHREALTIME/./}
	[ -n "$1" ] && log "start: $1"
	return 0
}

[ "$(id -u)" = 0 ] || { echo "lab/image.sh: must run as root (debootstrap, chroot, mkfs)" >&2; exit 2; }
for tool in debootstrap mkfs.ext4 debugfs qemu-system-x86_64 timeout ssh-keygen openssl gpg dpkg-deb dpkg-scanpackages flock; do
	command -v "$tool" >/dev/null || { echo "lab/image.sh: missing $tool (run lab/run.sh, which installs the lab's packages)" >&2; exit 2; }
done

mkdir -p "$cache_root"
exec 9>"$cache_root/.lock"
if ! flock -n 9; then
	log "another image build holds $cache_root/.lock; waiting"
	flock 9
fi

if [ -f "$out/ok" ]; then
	log "cache hit: $out (recipe $key)"
	echo "$out"
	exit 0
fi

# The Debian mirror this machine's apt already uses (never another host).
mirror=${OPENCLAW_HARDEN_LAB_MIRROR:-}
if [ -z "$mirror" ]; then
	mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
		grep -E '^[[:space:]]*(deb|URIs:)[[:space:]]' | grep -oE 'https?://[^ ]+/debian/?([[:space:]]|$)' |
		grep -v security | head -n1 | tr -d '[:space:]' || true)
	mirror=${mirror%/}
fi
[ -n "$mirror" ] || { echo "lab/image.sh: no Debian mirror found in /etc/apt/sources.list*; set OPENCLAW_HARDEN_LAB_MIRROR" >&2; exit 2; }
security=${mirror%/debian}/debian-security

work="$out.tmp.$$"
rootfs="$work/rootfs"
cleanup() {
	local rc=$?
	for m in dev/pts sys proc; do
		mountpoint -q "$rootfs/$m" 2>/dev/null && umount -l "$rootfs/$m"
	done
	command -v gpgconf >/dev/null && GNUPGHOME="$work/gnupg" gpgconf --kill gpg-agent 2>/dev/null || true
	if [ $rc -ne 0 ] && [ -d "$work" ]; then
		# never follow into a mount that is still there
		if ! findmnt -rno TARGET | grep -q "^$work"; then rm -rf --one-file-system "$work"; fi
		log "build FAILED (exit $rc)"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf --one-file-system "$work"
mkdir -p "$work"
: >"$work/timings.txt"
log "building image $key from $mirror into $work"

phase "keys, lab CA and mirror signing key"
ssh-keygen -q -t ed25519 -N '' -C openclaw-harden-lab-harness -f "$work/id_ed25519"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
	-subj "/CN=openclaw-harden lab CA" -keyout "$work/ca.key" -out "$work/ca.crt" \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=openclaw-harden lab server" \
	-keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
printf '%s\n' \
	'subjectAltName=DNS:deb.debian.org,DNS:security.debian.org,DNS:api.telegram.org,DNS:www.lab.test,IP:203.0.113.10,IP:203.0.113.20' \
	'extendedKeyUsage=serverAuth' 'basicConstraints=CA:FALSE' >"$work/server.ext"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial \
	-days 3650 -extfile "$work/server.ext" -out "$work/server.crt" 2>/dev/null
rm -f "$work/server.csr" "$work/server.ext" "$work/ca.srl"
export GNUPGHOME="$work/gnupg"
mkdir -m 0700 "$GNUPGHOME"
gpg --batch -q --passphrase '' --quick-gen-key 'openclaw-harden lab mirror <mirror@lab.test>' ed25519 sign never 2>/dev/null
gpg --batch -q --export >"$work/mirror-key.gpg"

phase "debootstrap bookworm (minbase)"
debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
	{ tail -n 30 "$work/debootstrap.log" >&2; exit 1; }

phase "packages (kernel, systemd, sshd, docker, ufw, ...)"
mount -t proc proc "$rootfs/proc"
mount -t sysfs sysfs "$rootfs/sys"
mount -t devpts -o newinstance devpts "$rootfs/dev/pts"
printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
EOF
in_root() { chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive LC_ALL=C PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
in_root apt-get -q update >"$work/apt.log" 2>&1 || { tail -n 30 "$work/apt.log" >&2; exit 1; }
in_root apt-get -q -y --no-install-recommends -o Dpkg::Options::=--force-confdef install \
	linux-image-amd64 initramfs-tools systemd-sysv udev dbus kmod procps iproute2 iputils-ping netbase \
	openssh-server ufw iptables docker.io docker-compose apparmor curl ca-certificates dnsutils sudo tmux \
	busybox-static less >>"$work/apt.log" 2>&1 || { tail -n 30 "$work/apt.log" >&2; exit 1; }
in_root apt-get -q -y --no-install-recommends full-upgrade >>"$work/apt.log" 2>&1
# Debs for the stand-in mirror: unattended-upgrades (not installed in the image) and whatever it pulls in.
in_root apt-get clean
in_root apt-get -q -y --no-install-recommends -d install unattended-upgrades >>"$work/apt.log" 2>&1
mkdir -p "$work/mirror/debian/pool/main" "$work/mirror/debian-security/pool/updates/main"
cp "$rootfs"/var/cache/apt/archives/*.deb "$work/mirror/debian/pool/main/"
in_root apt-get clean

phase "configure the image"
echo openclaw-lab >"$rootfs/etc/hostname"
cat >"$rootfs/etc/hosts" <<'EOF'
127.0.0.1	localhost
127.0.1.1	openclaw-lab
::1		localhost ip6-localhost ip6-loopback
EOF
echo '/dev/vda / ext4 rw,errors=remount-ro 0 1' >"$rootfs/etc/fstab"
echo 0c1a0c1a0c1a0c1a0c1a0c1a0c1a0c1a >"$rootfs/etc/machine-id"
# Static network, like a VPS: eth0 (net.ifnames=0) 192.168.1.10/24 via the lab router, lab DNS.
mkdir -p "$rootfs/etc/systemd/network"
cat >"$rootfs/etc/systemd/network/10-eth0.network" <<'EOF'
[Match]
Name=eth0

[Network]
Address=192.168.1.10/24
Gateway=192.168.1.1
DNS=203.0.113.53
EOF
rm -f "$rootfs/etc/resolv.conf"
echo 'nameserver 203.0.113.53' >"$rootfs/etc/resolv.conf"
in_root systemctl enable systemd-networkd.service >/dev/null 2>&1
# Nothing waits for "online": docker and sshd start as soon as eth0 is configured.
in_root systemctl mask systemd-networkd-wait-online.service >/dev/null 2>&1
in_root systemctl mask e2scrub_reap.service >/dev/null 2>&1 || true
# Users: admin (sudo without password, harness key, password labpass), root (password labroot).
in_root useradd -m -s /bin/bash -G sudo admin
echo 'admin:labpass' | in_root chpasswd
echo 'root:labroot' | in_root chpasswd
echo 'admin ALL=(ALL) NOPASSWD:ALL' >"$rootfs/etc/sudoers.d/90-lab-admin"
chmod 0440 "$rootfs/etc/sudoers.d/90-lab-admin"
install -d -m 0700 -o 1000 -g 1000 "$rootfs/home/admin/.ssh"
install -m 0600 -o 1000 -g 1000 "$work/id_ed25519.pub" "$rootfs/home/admin/.ssh/authorized_keys"
# sshd as many VPS images ship it: passwords on (cloud-init drop-in), root login on.
mkdir -p "$rootfs/etc/ssh/sshd_config.d"
echo 'PasswordAuthentication yes' >"$rootfs/etc/ssh/sshd_config.d/50-cloud-init.conf"
sed -i 's/^#\?PermitRootLogin .*/PermitRootLogin yes/' "$rootfs/etc/ssh/sshd_config"
grep -q '^PermitRootLogin yes' "$rootfs/etc/ssh/sshd_config" || echo 'PermitRootLogin yes' >>"$rootfs/etc/ssh/sshd_config"
cp "$rootfs/etc/ssh/ssh_host_ed25519_key.pub" "$work/ssh_host_ed25519_key.pub"
# Trust the lab CA and the lab mirror's signing key; apt sees only the lab mirror's names.
install -m 0644 "$work/ca.crt" "$rootfs/usr/local/share/ca-certificates/openclaw-harden-lab-ca.crt"
in_root update-ca-certificates >/dev/null 2>&1
install -m 0644 "$work/mirror-key.gpg" "$rootfs/etc/apt/trusted.gpg.d/openclaw-harden-lab-mirror.gpg"
cat >"$rootfs/etc/apt/sources.list" <<'EOF'
deb http://deb.debian.org/debian bookworm main
deb http://security.debian.org/debian-security bookworm-security main
EOF
rm -rf "$rootfs"/var/lib/apt/lists/*
# The canary: 1.0 installed here, 1.1 in the mirror's security suite, so an upgrade really upgrades.
make_canary() { # make_canary VERSION OUT.deb
	local d="$work/canary-$1"
	mkdir -p "$d/DEBIAN" "$d/usr/share/openclaw-lab-canary"
	cat >"$d/DEBIAN/control" <<EOF
Package: openclaw-lab-canary
Version: $1
Architecture: all
Maintainer: openclaw-harden lab <lab@lab.test>
Section: misc
Priority: optional
Description: openclaw-harden lab canary package
 Installed at version 1.0 in the lab image; the lab mirror serves 1.1.
EOF
	echo "$1" >"$d/usr/share/openclaw-lab-canary/VERSION"
	dpkg-deb -Zgzip --root-owner-group --build "$d" "$2" >/dev/null
	rm -rf "$d"
}
make_canary 1.0 "$work/openclaw-lab-canary_1.0_all.deb"
make_canary 1.1 "$work/mirror/debian-security/pool/updates/main/openclaw-lab-canary_1.1_all.deb"
cp "$work/openclaw-lab-canary_1.0_all.deb" "$rootfs/tmp/"
in_root dpkg -i /tmp/openclaw-lab-canary_1.0_all.deb >/dev/null
rm -f "$rootfs/tmp/openclaw-lab-canary_1.0_all.deb"
# A busybox root filesystem for `docker import` (no registry in the lab).
bb="$work/busybox-rootfs"
mkdir -p "$bb/bin" "$bb/etc" "$bb/tmp" "$bb/proc" "$bb/sys" "$bb/dev"
cp "$rootfs/bin/busybox" "$bb/bin/busybox"
for applet in $("$bb/bin/busybox" --list); do
	[ "$applet" = busybox ] || ln -s busybox "$bb/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$bb/etc/passwd"
echo 'root:x:0:' >"$bb/etc/group"
mkdir -p "$rootfs/opt/lab"
tar -C "$bb" --numeric-owner -cf "$rootfs/opt/lab/busybox-rootfs.tar" .
rm -rf "$bb"
# Warm-up: the image boots once at build time (no network), so every lab boot finds the AppArmor profile
# cache compiled, Docker's state initialized and the busybox image imported; then it powers off.
cat >"$rootfs/usr/local/sbin/lab-warmup" <<'WARMUP'
#!/bin/sh
echo "lab-warmup: waiting for docker"
i=0
while ! docker info >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -gt 600 ] && { echo "lab-warmup: docker never came up"; exit 1; }
	sleep 1
done
docker image inspect lab/busybox >/dev/null 2>&1 || docker import /opt/lab/busybox-rootfs.tar lab/busybox
docker run --rm lab/busybox true || exit 1
systemctl disable lab-warmup.service
rm -f /etc/systemd/system/lab-warmup.service /usr/local/sbin/lab-warmup
echo "$(date -u) $(cat /proc/sys/kernel/random/boot_id)" >/var/lib/lab-warmup.done
sync
echo "lab-warmup: done"
systemctl --no-block poweroff
WARMUP
chmod 0755 "$rootfs/usr/local/sbin/lab-warmup"
cat >"$rootfs/etc/systemd/system/lab-warmup.service" <<'UNIT'
[Unit]
Description=openclaw-harden lab image warm-up (runs once, at image build time)
Wants=docker.service
After=docker.service multi-user.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/lab-warmup
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
UNIT
in_root systemctl enable lab-warmup.service >/dev/null 2>&1
rm -f "$rootfs/usr/sbin/policy-rc.d"
cp "$rootfs"/boot/vmlinuz-* "$work/vmlinuz"
cp "$rootfs"/boot/initrd.img-* "$work/initrd.img"
for m in dev/pts sys proc; do umount "$rootfs/$m"; done

phase "stand-in mirror (signed)"
release() { # release DIR SUITE CODENAME LABEL
	local dir=$1
	(
		cd "$dir"
		cat <<EOF
Origin: Debian
Label: $4
Suite: $2
Codename: $3
Date: $(date -Ru)
Architectures: amd64
Components: main
Description: openclaw-harden lab stand-in for Debian 12 ($3)
SHA256:
EOF
		for f in main/binary-amd64/Packages main/binary-amd64/Packages.gz; do
			printf ' %s %16d %s\n' "$(sha256sum "$f" | cut -d' ' -f1)" "$(stat -c %s "$f")" "$f"
		done
	) >"$dir/Release"
	gpg --batch -q --yes --clearsign -o "$dir/InRelease" "$dir/Release"
	gpg --batch -q --yes -abs -o "$dir/Release.gpg" "$dir/Release"
}
for repo in "debian bookworm stable Debian" "debian-security bookworm-security stable-security Debian-Security"; do
	set -- $repo
	dists="$work/mirror/$1/dists/$2"
	mkdir -p "$dists/main/binary-amd64"
	(cd "$work/mirror/$1" && dpkg-scanpackages --multiversion pool /dev/null 2>/dev/null) >"$dists/main/binary-amd64/Packages"
	gzip -9nk "$dists/main/binary-amd64/Packages"
	release "$dists" "$3" "$2" "$4"
done

phase "mkfs.ext4 -d (3 GiB sparse)"
truncate -s 3G "$work/base.img"
mkfs.ext4 -q -F -L ochlab-root -d "$rootfs" "$work/base.img"
rm -rf --one-file-system "$rootfs"

phase "warm-up boot (qemu TCG, no network)"
timeout 900 qemu-system-x86_64 -accel tcg,thread=multi -machine pc -m 2048 -smp 2 -nodefaults -no-user-config \
	-display none -kernel "$work/vmlinuz" -initrd "$work/initrd.img" \
	-append "root=/dev/vda rw console=ttyS0 net.ifnames=0 mitigations=off" \
	-drive "file=$work/base.img,if=virtio,format=raw,cache=unsafe" -device virtio-rng-pci \
	-serial "file:$work/warmup-console.log" -monitor none -no-reboot ||
	{ tail -n 40 "$work/warmup-console.log" >&2; echo "lab/image.sh: warm-up boot failed or timed out" >&2; exit 1; }
if ! debugfs -R 'cat /var/lib/lab-warmup.done' "$work/base.img" 2>/dev/null | grep -q .; then
	tail -n 40 "$work/warmup-console.log" >&2
	echo "lab/image.sh: the warm-up boot did not finish (no /var/lib/lab-warmup.done)" >&2
	exit 1
fi
echo "$recipe" >"$work/recipe.sha256"

gpgconf --kill gpg-agent 2>/dev/null || true

phase ""
log "image ready: $(du -sh --apparent-size "$work/base.img" | cut -f1) apparent, $(du -sh "$work/base.img" | cut -f1) used; total $(elapsed "$t_start")s"
echo "total $(elapsed "$t_start")s" >>"$work/timings.txt"
touch "$work/ok"
# Older recipes are of no further use.
for old in "$cache_root"/*; do
	[ -d "$old" ] && [ "$old" != "$work" ] && [ "$old" != "$out" ] && rm -rf --one-file-system "$old"
done
rm -rf --one-file-system "$out"
mv "$work" "$out"
trap - EXIT
echo "$out"
