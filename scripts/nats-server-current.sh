#!/usr/bin/env bash
# A current nats-server for the partition test (test/soak/cluster-partition.test.ts), beside the
# machine's own: Debian bookworm's nats-server is 2.9.10, whose JetStream diverged after a partition
# in 3 of 17 runs here (docs/cluster.md); Debian trixie packages 2.10. This fetches trixie's package
# from Debian's mirror, checks it, and unpacks only the server binary (a static Go program that needs
# nothing but libc) into .cache/nats-server/ of the repository. Nothing is installed system-wide.
# Prints the binary's path. Usage: scripts/nats-server-current.sh [mirror]
set -euo pipefail
cd "$(dirname "$0")/.."

mirror="${1:-http://deb.debian.org/debian}"
# The package this was verified with; when trixie has moved on, the signed index names the current one.
pinned_file="pool/main/n/nats-server/nats-server_2.10.27-1+b2_amd64.deb"
pinned_sha="6d913ac987b78734c08537c2adeb1526cf735f216173a9170d94b185fcfe6f8a"

out=.cache/nats-server
bin="$out/nats-server"
if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then echo "$bin"; exit 0; fi
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

file="$pinned_file" sha="$pinned_sha"
if ! curl -fsS -m 120 -o "$work/pkg.deb" "$mirror/$file"; then
  echo "nats-server-current: $mirror/$file is gone; looking up trixie's current package" >&2
  # As apt does: the release file signed by Debian's archive key names the index's SHA-256.
  curl -fsS -m 120 -o "$work/InRelease" "$mirror/dists/trixie/InRelease"
  gpgv --keyring /usr/share/keyrings/debian-archive-keyring.gpg --output "$work/Release" "$work/InRelease" 2>/dev/null \
    || { echo "nats-server-current: trixie's InRelease is not signed by a key of debian-archive-keyring" >&2; exit 1; }
  curl -fsS -m 120 -o "$work/Packages.xz" "$mirror/dists/trixie/main/binary-amd64/Packages.xz"
  index_sha="$(awk '/^SHA256:/{p=1; next} /^[^ ]/{p=0} p && $3 == "main/binary-amd64/Packages.xz" {print $1}' "$work/Release")"
  echo "$index_sha  $work/Packages.xz" | sha256sum -c --quiet - \
    || { echo "nats-server-current: trixie's Packages.xz does not match its signed SHA-256" >&2; exit 1; }
  entry="$(xz -dc "$work/Packages.xz" | awk '/^Package: nats-server$/{p=1} p&&/^(Filename|SHA256):/{print $2} p&&/^$/{p=0}')"
  file="$(sed -n 1p <<<"$entry")" sha="$(sed -n 2p <<<"$entry")"
  [ -n "$file" ] && [ -n "$sha" ] || { echo "nats-server-current: trixie's index has no nats-server" >&2; exit 1; }
  curl -fsS -m 120 -o "$work/pkg.deb" "$mirror/$file"
fi
echo "$sha  $work/pkg.deb" | sha256sum -c --quiet - || { echo "nats-server-current: $file does not match its SHA-256" >&2; exit 1; }
dpkg-deb -x "$work/pkg.deb" "$work/root"
install -m 755 "$work/root/usr/sbin/nats-server" "$bin.part"
mv "$bin.part" "$bin"
"$bin" --version >&2
echo "$bin"
