#!/usr/bin/env bash
# Assemble the container image's root file system from this machine's Debian packages:
#
#   scripts/build-rootfs.sh BINARY OUTDIR
#
# OUTDIR gets the compiled domainwall as /usr/bin/domainwall, libnftables.so.1 (domainwall's nft
# transactions run in process through it), nft, iptables-legacy (and -save,
# -restore, the ip6tables ones: xtables-legacy-multi and its symlinks) with every xtables extension
# module, the shared libraries `ldd` names for each of them (glibc's loader, libc, libm, ...), and
# /etc/protocols (without it `nft list` prints `meta l4proto { 6, 17 }` instead of `{ tcp, udp }`).
# Nothing else: no shell, no package manager, no dig. Used by the Dockerfile (on debian:bookworm-slim
# with nftables and iptables installed) and by test/e2e/image.test.ts.
#
# All extension modules go in, not only the ones domainwall's rules use: iptables-legacy-save and the
# rollback's restore read the whole filter table, and a foreign rule whose module is missing makes
# them fail ("Can't find library for match"). They are 2 MB.
#
# Deterministic: files are copied in sorted order with fixed modes, and every mtime is set to
# SOURCE_DATE_EPOCH (default 0). Architecture-independent: paths come from ldd and the multiarch
# triplet (dpkg-architecture, else gcc -print-multiarch).
set -euo pipefail
export LC_ALL=C
umask 022

if [ $# -ne 2 ]; then
  echo "usage: $0 BINARY OUTDIR" >&2
  exit 2
fi
binary=$1
out=$2
[ -x "$binary" ] || { echo "$0: $binary is not an executable file" >&2; exit 2; }

need() { command -v "$1" >/dev/null || { echo "$0: $1 not found (install: $2)" >&2; exit 1; }; }
need ldd libc-bin
need nft nftables
need xtables-legacy-multi iptables

# The multiarch triplet (x86_64-linux-gnu, aarch64-linux-gnu): from dpkg-dev or gcc when installed,
# else from where nft's libc lives (debian:bookworm-slim has neither dpkg-dev nor gcc).
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch 2>/dev/null ||
  ldd "$(command -v nft)" | awk '$1 == "libc.so.6" { n = split($3, p, "/"); print p[n - 1] }')
[ -n "$multiarch" ] || { echo "$0: cannot tell the multiarch triplet" >&2; exit 1; }
xtables_dir=/usr/lib/$multiarch/xtables
[ -d "$xtables_dir" ] || { echo "$0: $xtables_dir missing (install: iptables)" >&2; exit 1; }

rm -rf "$out"
mkdir -p "$out"
out=$(cd "$out" && pwd)

# Every file the image holds, as "SOURCE DEST MODE", collected first, then copied in sorted order.
list=$(mktemp)
trap 'rm -f "$list"' EXIT
add() { printf '%s %s %s\n' "$1" "$2" "$3" >>"$list"; }

# The shared objects a program or module loads, by the path the loader finds them at
# ("libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and the loader's own "/lib64/ld-linux-x86-64.so.2 (0x...)").
add_libs() {
  local lib
  ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | while read -r lib; do
    add "$lib" "$lib" "$(stat -L -c %a "$lib")" # the loader must stay executable
  done
}

add "$binary" /usr/bin/domainwall 0755
add_libs "$binary"
# libnftables.so.1, which domainwall loads in process (bun:ffi dlopen, so ldd of domainwall cannot
# name it); nft is built on it, so ldd of nft finds it. The nft binary itself is left out: where the
# library cannot load the binary could not either, and without it its libedit, libtinfo, libbsd and
# libmd stay out too (the image stays under 120 MB).
nft=$(command -v nft)
libnftables=$(ldd "$nft" | awk '$1 == "libnftables.so.1" && $3 ~ /^\// { print $3 }')
[ -n "$libnftables" ] || { echo "$0: nft does not load libnftables.so.1 (install: libnftables1)" >&2; exit 1; }
add "$libnftables" "$libnftables" "$(stat -L -c %a "$libnftables")"
add_libs "$libnftables"
multi=$(command -v xtables-legacy-multi)
add "$multi" /usr/sbin/xtables-legacy-multi 0755
add_libs "$multi"
for module in "$xtables_dir"/lib{xt,ipt,ip6t}_*.so; do # not libebt_/libarpt_: those are for ebtables and arptables
  add "$module" "$module" "$(stat -L -c %a "$module")"
  add_libs "$module"
done
add /etc/protocols /etc/protocols 0644

sort -u "$list" | while read -r source dest mode; do
  install -D -m "$mode" "$source" "$out$dest" # install follows symlinks: the real file under the name the loader asks for
done

# The legacy tools are one binary that looks at the name it was run as.
for tool in iptables-legacy iptables-legacy-save iptables-legacy-restore ip6tables-legacy ip6tables-legacy-save ip6tables-legacy-restore; do
  ln -s xtables-legacy-multi "$out/usr/sbin/$tool"
done

# Mount points and writable places: /tmp, and /run/domainwall for `apply --confirm-within`
# handshakes, the ready file and watch state (mount an emptyDir there when the root is read-only).
# /etc/resolv.conf and /etc/hosts are not shipped: the container runtime mounts them.
install -d -m 1777 "$out/tmp"
install -d -m 0755 "$out/run/domainwall"

find "$out" -exec touch -h -d "@${SOURCE_DATE_EPOCH:-0}" {} +
echo "rootfs in $out: $(find "$out" -type f | wc -l) files, $(du -sk "$out" | cut -f1) KiB" >&2
