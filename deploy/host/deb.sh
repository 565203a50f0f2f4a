#!/usr/bin/env bash
# make deb: a Debian package of what make install writes, laid out as Debian expects (commands in
# /usr/bin, the unit in /lib/systemd/system, completion under /usr/share), the env file a conffile,
# maintainer scripts in deploy/host/debian/ (postinst starts nothing on a fresh install).
# Output: $DEB_DIR/tabby_<version>_<arch>.deb (DEB_DIR defaults to .stage/). Needs the staged app (make stage).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DEB_DIR=${DEB_DIR:-$ROOT/.stage}
STAGE=${STAGE:-$ROOT/.stage/app}
version=$(node -p "require('$ROOT/package.json').version")
arch=$(dpkg --print-architecture)
pkg=$DEB_DIR/tabby_${version}_$arch
rm -rf "$pkg" "$pkg.deb"
mkdir -p "$pkg"
DESTDIR=$pkg PREFIX=/usr UNITDIR=/lib/systemd/system MANIFEST=0 NODE=/usr/bin/node CNI=0 STAGE=$STAGE \
  BASH_COMPLETIONDIR=/usr/share/bash-completion/completions ZSH_COMPLETIONDIR=/usr/share/zsh/vendor-completions \
  "$ROOT/deploy/host/install.sh" install >/dev/null
install -D -m 644 /dev/null "$pkg/usr/share/doc/tabby/copyright"
printf 'tabby %s\nLicense: Apache-2.0 (see /usr/share/common-licenses/Apache-2.0)\n' "$version" >"$pkg/usr/share/doc/tabby/copyright"
mkdir -p "$pkg/DEBIAN"
cp "$ROOT/deploy/host/debian/postinst" "$ROOT/deploy/host/debian/prerm" "$ROOT/deploy/host/debian/postrm" "$pkg/DEBIAN/"
chmod 755 "$pkg/DEBIAN/postinst" "$pkg/DEBIAN/prerm" "$pkg/DEBIAN/postrm"
echo /etc/tabby/tabby-node.env >"$pkg/DEBIAN/conffiles"
cat >"$pkg/DEBIAN/control" <<CONTROL
Package: tabby
Version: $version
Architecture: $arch
Maintainer: tabby developers <tabby@localhost>
Installed-Size: $(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
Depends: nodejs (>= 20.19)
Recommends: nftables, iptables
Suggests: containernetworking-plugins, etcd-client
Section: net
Priority: optional
Description: pod networking in the style of Project Calico (node agent, CLI, CNI plugin)
 tabby-node is a node agent with its own BGP speaker, IPAM over a datastore (embedded file store or
 etcd v3) and routes programmed over netlink; tabbyctl is its command-line tool. The package installs
 the app in /opt/tabby/app, the commands in /usr/bin and the systemd unit tabby-node.service; nothing
 is started until /etc/tabby/tabby-node.env is configured and the unit enabled.
CONTROL
dpkg-deb --root-owner-group -Zgzip --build "$pkg" "$pkg.deb" >/dev/null
rm -rf "$pkg"
echo "built ${pkg#"$ROOT"/}.deb ($(du -h "$pkg.deb" | cut -f1))"
