#!/usr/bin/env bash
# host-image.sh build|runtime TAG: makes a Docker base image from this machine's own files and
# imports it as TAG (DOCKER_HOST says which daemon). No registry is reachable from the test machines,
# so relay/Dockerfile's BASE and RUNTIME_BASE are built this way in the tests:
#   build    Node.js, npm and its headers, python3, make and g++ (what npm ci needs to compile)
#   runtime  Node.js, ffmpeg and tini with the libraries they load, and a shell
# Both have root and a `node` user (uid 1000), as the official Node.js images do.
set -euo pipefail
kind=$1
tag=$2
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
list=$root.list
: > "$list"

# The files of installed Debian packages and of every package they depend on.
packages() {
  apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces --no-enhances "$@" 2>/dev/null \
    | grep -E '^[a-z0-9]' | sort -u \
    | while read -r p; do dpkg-query -W -f='${db:Status-Status} ${Package}\n' "$p" 2>/dev/null || true; done \
    | awk '$1 == "installed" { print $2 }' \
    | xargs -r dpkg-query -L 2>/dev/null >> "$list" || true
}

# A binary and the shared libraries it loads.
binary() {
  for b in "$@"; do
    echo "$b" >> "$list"
    ldd "$b" | awk '/=> \// { print $3 } /^\t\// { print $1 }' >> "$list"
  done
}

case "$kind" in
  build)
    packages g++ make python3 libc6-dev dash bash coreutils sed grep findutils tar gzip
    binary /usr/bin/node
    echo /usr/include/node >> "$list"
    echo /usr/lib/node_modules/npm >> "$list"
    ;;
  runtime)
    packages dash coreutils tini
    binary /usr/bin/node /usr/bin/ffmpeg /usr/bin/ffprobe
    ;;
  *) echo "usage: host-image.sh build|runtime TAG" >&2; exit 2 ;;
esac

# Debian's merged /usr: /bin, /sbin and /lib* are links into /usr, so every path is named under /usr;
# a symlink brings its target.
sed -E 's#^/(bin|sbin|lib|lib64|libx32)/#/usr/\1/#' "$list" | while read -r f; do
  echo "$f"
  # every link of a chain (a library behind /etc/alternatives is two links away)
  while [ -L "$f" ]; do
    t=$(readlink "$f")
    case "$t" in /*) f=$t ;; *) f=$(dirname "$f")/$t ;; esac
    echo "$f" | sed -E 's#^/(bin|sbin|lib|lib64|libx32)/#/usr/\1/#'
  done
done > "$list.all"
# Regular files, symlinks and whole directories named above; directories of a package's list are
# made as the files need them (a package's directory entries would pull in all of /usr).
sort -u "$list.all" | while read -r f; do
  if [ -d "$f" ] && [ ! -L "$f" ]; then
    case "$f" in /usr/include/node|/usr/lib/node_modules/npm) echo "$f" ;; esac
  elif [ -e "$f" ] || [ -L "$f" ]; then
    echo "$f"
  fi
done > "$list.files"
tar -C / --no-recursion -cf - -T <(grep -v -E '^/usr/(include/node|lib/node_modules/npm)$' "$list.files") 2>/dev/null | tar -C "$root" -xf -
{ grep -E '^/usr/(include/node|lib/node_modules/npm)$' "$list.files" || true; } | while read -r d; do
  mkdir -p "$root$(dirname "$d")" && cp -a "$d" "$root$d"
done
# Debian's merged /usr: /bin, /sbin and /lib* are links into /usr.
for l in bin sbin lib lib64; do [ -L "/$l" ] && ln -sfn "$(readlink "/$l")" "$root/$l"; done
mkdir -p "$root/usr/bin"
if [ "$kind" = build ]; then
  ln -sfn ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/bin/npm"
  ln -sfn ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/bin/npx"
  # cc and c++ are Debian alternatives, in no package's file list
  ln -sfn gcc "$root/usr/bin/cc"
  ln -sfn g++ "$root/usr/bin/c++"
fi
[ -e "$root/usr/bin/sh" ] || ln -sfn dash "$root/usr/bin/sh"
mkdir -p "$root/etc" "$root/tmp" "$root/root" "$root/home/node" "$root/dev" "$root/proc" "$root/sys"
chmod 1777 "$root/tmp"
chown 1000:1000 "$root/home/node"
cat > "$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
node:x:1000:1000::/home/node:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
cat > "$root/etc/group" <<'EOF'
root:x:0:
node:x:1000:
nogroup:x:65534:
EOF
echo 'passwd: files
group: files
hosts: files dns' > "$root/etc/nsswitch.conf"
tar -C "$root" -c . | docker import -c 'ENV PATH=/usr/local/bin:/usr/bin:/bin' - "$tag" >/dev/null
rm -f "$list" "$list.all" "$list.files"
echo "$tag"
