#!/usr/bin/env bash
# The torch-free integration checks on QGIS 3.40 LTR (Debian 13 "trixie"), from a Debian 12 machine:
#   sudo scripts/qgis340.sh            # build the root once (cached), then run scripts/qgis340/checks.sh in it
#   sudo scripts/qgis340.sh --build    # only build (or reuse) the root
#   sudo scripts/qgis340.sh --shell    # a shell in the root with the checkout at /hsigan
# The root is made with debootstrap from the Debian mirror this machine's apt uses and kept in
# HSIGAN_TRIXIE_ROOT (default /var/cache/hsigan/trixie; delete it to rebuild). The checkout is bind-mounted
# read-only at /hsigan inside a private mount namespace (unshare -m), so nothing stays mounted afterwards.
# torch is not installed there: Python 3.13's torch from PyPI is the multi-GB CUDA build; the torch runs
# are tested on QGIS 3.22 (scripts/test.sh).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
root="${HSIGAN_TRIXIE_ROOT:-/var/cache/hsigan/trixie}"
packages="qgis python3-qgis qgis-providers python3-rasterio python3-scipy python3-pip xvfb"  # xvfb: desktop QGIS for the install-from-ZIP check
[ "$(id -u)" -eq 0 ] || { echo "qgis340: run as root (debootstrap and chroot need it): sudo $0 $*" >&2; exit 2; }
command -v debootstrap >/dev/null || { echo "qgis340: debootstrap missing: apt-get install debootstrap" >&2; exit 2; }

mirror_of_this_machine() {
  # The first Debian archive URI in apt's sources (deb822 "URIs:" or one-line "deb URI suite"), not security.
  local uri
  uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
        grep -oE '(https?://[^ ]+/debian)/?( |$)' | grep -v security | head -n 1 | tr -d ' ' || true)
  echo "${HSIGAN_DEBIAN_MIRROR:-${uri:-http://deb.debian.org/debian}}"
}

in_root() {  # in_root DIR CMD...: CMD in the chroot with /proc, /dev, /sys and the checkout mounted privately
  local dir=$1; shift
  unshare -m -- bash -c '
    set -e; dir=$1; here=$2; shift 2
    mount --make-rprivate /
    mount -t proc proc "$dir/proc"; mount --rbind /dev "$dir/dev"; mount --rbind /sys "$dir/sys"
    mkdir -p "$dir/hsigan"; mount --bind "$here" "$dir/hsigan"; mount -o remount,bind,ro "$dir/hsigan"
    cp /etc/resolv.conf "$dir/etc/resolv.conf"
    cert=()  # the host'"'"'s CA bundle (it may trust a proxy of this network) for pip inside the root
    if [ -r /etc/ssl/certs/ca-certificates.crt ] && [ -d "$dir/etc/ssl" ]; then
      cp /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/host-ca-certificates.crt"; cert=(PIP_CERT=/etc/ssl/host-ca-certificates.crt)
    fi
    exec chroot "$dir" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "${cert[@]}" "$@"
  ' in_root "$dir" "$here" "$@"
}

build_root() {
  if [ -e "$root/.hsigan-ready" ]; then
    echo "qgis340: reusing $root (QGIS $(head -n 1 "$root/.hsigan-ready"))"
    if [ "$(sed -n 2p "$root/.hsigan-ready")" != "$packages" ]; then  # the package list changed: top it up
      in_root "$root" apt-get update -q
      in_root "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $packages
      in_root "$root" apt-get clean
      { in_root "$root" dpkg-query -W -f='${Version}\n' qgis; echo "$packages"; } > "$root/.hsigan-ready"
    fi
    return
  fi
  local partial="$root.partial" mirror started=$SECONDS
  mirror=$(mirror_of_this_machine)
  echo "qgis340: building a Debian 13 root in $root from $mirror (once; several minutes)"
  rm -rf "$partial"; mkdir -p "$(dirname "$root")"
  debootstrap --variant=minbase trixie "$partial" "$mirror"
  in_root "$partial" apt-get update -q
  in_root "$partial" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $packages
  in_root "$partial" apt-get clean
  { in_root "$partial" dpkg-query -W -f='${Version}\n' qgis; echo "$packages"; } > "$partial/.hsigan-ready"
  rm -rf "$root"; mv "$partial" "$root"      # a failed build never leaves a root that looks ready
  echo "qgis340: root ready in $((SECONDS - started)) s (QGIS $(head -n 1 "$root/.hsigan-ready"), $(du -sh "$root" | cut -f1))"
}

build_root
case "${1:-}" in
  --build) exit 0 ;;
  --shell) in_root "$root" bash ;;
  *) # the forge's "Download ZIP" of HEAD, for the install-from-ZIP check (no git in the root)
     python3 "$here/tests/desktop_install.py" --forge-archive "$root/tmp/hsigan-qgis-main.zip" >/dev/null
     in_root "$root" bash /hsigan/scripts/qgis340/checks.sh ;;
esac
