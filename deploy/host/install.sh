#!/usr/bin/env bash
# tabby on a plain Linux host: what `make install`, `make uninstall` and `make deb` do.
#   install.sh stage     build the app tree (dist/src, production node_modules, the native addon) in $STAGE
#   install.sh install   copy it to $APPDIR, write the launchers, the unit, the env file (never over an
#                        existing one), shell completion and, with CNI=1, the CNI plugin + conflist;
#                        every file and directory written is listed in the manifest $TABBY_HOME/installed-files
#   install.sh uninstall remove exactly what the manifest lists: a config file only when unchanged (or PURGE=1),
#                        directories only when install created them and they are empty; the datastore stays
#                        unless PURGE=1
# Paths are the installed ones; DESTDIR is prepended to every write (packagers stage into it), never to the
# paths written into files. Settings come from the environment (the Makefile exports them).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}
BINDIR=${BINDIR:-$PREFIX/bin}
TABBY_HOME=${TABBY_HOME:-/opt/tabby}
APPDIR=${APPDIR:-$TABBY_HOME/app}
SYSCONFDIR=${SYSCONFDIR:-/etc}
UNITDIR=${UNITDIR:-/etc/systemd/system}
STATEDIR=${STATEDIR:-/var/lib/tabby}
BASH_COMPLETIONDIR=${BASH_COMPLETIONDIR:-$PREFIX/share/bash-completion/completions}
ZSH_COMPLETIONDIR=${ZSH_COMPLETIONDIR:-$PREFIX/share/zsh/site-functions}
CNI=${CNI:-0}
CNI_BIN_DIR=${CNI_BIN_DIR:-/opt/cni/bin}
CNI_NET_DIR=${CNI_NET_DIR:-/etc/cni/net.d}
PURGE=${PURGE:-0}
STAGE=${STAGE:-$ROOT/.stage/app}
# MANIFEST=0: no manifest (a package: dpkg keeps the list).
MANIFEST=${MANIFEST:-1}
NODE=${NODE:-$(command -v node || true)}
ENVFILE=$SYSCONFDIR/tabby/tabby-node.env
MANIFEST_FILE=$TABBY_HOME/installed-files

say() { printf '%s\n' "$*"; }
die() { printf 'tabby install: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- stage
stage() {
  [ -f "$ROOT/dist/src/agent/main.js" ] || die "dist/ is missing: build first (make build)"
  [ -f "$ROOT/dist/tabby-node.cjs" ] || die "dist/tabby-node.cjs is missing: make build makes it (with the dev dependencies: npm ci)"
  [ -f "$ROOT/src/native/build/Release/tabby_native.node" ] || die "the native addon is missing: run npm ci (it builds src/native)"
  local tmp="$STAGE.tmp"
  rm -rf "$tmp"
  mkdir -p "$tmp/dist" "$tmp/src/native/build/Release" "$tmp/proto/bgp" "$tmp/deploy/systemd"
  cp "$ROOT/package.json" "$ROOT/package-lock.json" "$ROOT/README.md" "$tmp/"
  cp -r "$ROOT/dist/src" "$tmp/dist/"
  cp "$ROOT/dist/tabby-node.cjs" "$ROOT/dist/tabby-node.cjs.map" "$tmp/dist/"
  cp "$ROOT/src/native/build/Release/tabby_native.node" "$tmp/src/native/build/Release/"
  # The resident CNI client (built with the addon); the CNI installer copies it as tabby/tabby-ipam.
  [ ! -f "$ROOT/src/native/build/Release/tabby-cni" ] || cp "$ROOT/src/native/build/Release/tabby-cni" "$tmp/src/native/build/Release/"
  cp "$ROOT/proto/bgp/registry.json" "$tmp/proto/bgp/"
  # The shipped settings next to the app, to compare with /etc/tabby/tabby-node.env after an upgrade.
  cp "$ROOT/deploy/systemd/tabby-node.env" "$ROOT/deploy/systemd/tabby-node.service" "$tmp/deploy/systemd/"
  # Production dependencies without fetching again: a hard-linked copy of node_modules, dev deps pruned
  # (npm removes files, it never writes into the linked ones; its own lock file is a real copy).
  if ! cp -al "$ROOT/node_modules" "$tmp/" 2>/dev/null; then rm -rf "$tmp/node_modules"; cp -a "$ROOT/node_modules" "$tmp/"; fi
  rm -f "$tmp/node_modules/.package-lock.json"
  [ -f "$ROOT/node_modules/.package-lock.json" ] && cp "$ROOT/node_modules/.package-lock.json" "$tmp/node_modules/"
  (cd "$tmp" && npm prune --omit=dev --ignore-scripts --no-audit --no-fund --offline --loglevel=error >/dev/null) \
    || die "npm prune --omit=dev failed in $tmp"
  rm -rf "$tmp/node_modules/.bin" "$STAGE"
  mv "$tmp" "$STAGE"
  say "staged the app in ${STAGE#"$ROOT"/} ($(du -sh "$STAGE" | cut -f1), $(ls "$STAGE/node_modules" | wc -l) production packages)"
}

# ---------------------------------------------------------------- install
MF=()           # manifest lines being written: "d PATH" | "f PATH" | "c SHA256 PATH"
record() { MF+=("$*"); }

# mkdir -p that records every directory it creates (outermost first).
mkd() {
  local dir=$1 missing=()
  while [ ! -d "$DESTDIR$dir" ]; do missing=("$dir" "${missing[@]}"); dir=$(dirname "$dir"); done
  for dir in "${missing[@]}"; do mkdir "$DESTDIR$dir"; record d "$dir"; done
}

# put MODE DEST < content
put() {
  local mode=$1 dst=$2
  mkd "$(dirname "$dst")"
  cat >"$DESTDIR$dst.tmp.$$"
  chmod "$mode" "$DESTDIR$dst.tmp.$$"
  mv -f "$DESTDIR$dst.tmp.$$" "$DESTDIR$dst"
  record f "$dst"
}

check_node() {
  [ -n "$NODE" ] && [ -x "$NODE" ] || die "node not found: install Node.js >= 20.19 (or pass NODE=/path/to/node)"
  "$NODE" -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' \
    || die "$NODE is Node.js $("$NODE" --version); tabby needs >= 20.19"
}

launcher() { # NAME SCRIPT WHAT
  put 755 "$BINDIR/$1" <<EOF
#!/bin/sh
# $1: $3 (installed by tabby's make install; the app is in $APPDIR).
exec '$NODE' '$APPDIR/$2' "\$@"
EOF
}

install_cni() {
  # The datastore settings of the (kept or new) env file; the plugin runs the app in place.
  local env=$DESTDIR$ENVFILE f
  [ -x "$CNI_BIN_DIR/portmap" ] || [ -x "$DESTDIR$CNI_BIN_DIR/portmap" ] || say "note: no portmap in $CNI_BIN_DIR — the conflist chains it; put the CNI reference plugins there (Debian's containernetworking-plugins installs them in /usr/lib/cni: ln -s /usr/lib/cni/portmap $CNI_BIN_DIR/, or CNI_BIN_DIR=/usr/lib/cni for a runtime that looks there)"
  mkd "$CNI_BIN_DIR"; mkd "$CNI_NET_DIR"
  ( set -a; . "$env"; set +a
    TABBY_HOST_ROOT=${DESTDIR:-/} TABBY_CNI_RUNTIME=in-place TABBY_APP_DIR=$APPDIR \
    CNI_BIN_DIR=$CNI_BIN_DIR CNI_NET_DIR=$CNI_NET_DIR TABBY_LOG_LEVEL=warn \
      exec "$NODE" "$DESTDIR$APPDIR/dist/src/cni/install.js" ) || die "the CNI plugin install failed"
  for f in "$CNI_BIN_DIR/tabby" "$CNI_BIN_DIR/tabby-ipam" "$CNI_BIN_DIR/tabby-fallback" "$CNI_NET_DIR/10-tabby.conflist"; do
    [ ! -e "$DESTDIR$f" ] || record f "$f"
  done
  if [ -d "$DESTDIR$CNI_NET_DIR/tabby-tls" ]; then
    while IFS= read -r f; do record f "${f#"$DESTDIR"}"; done < <(find "$DESTDIR$CNI_NET_DIR/tabby-tls" -type f)
  fi
}

do_install() {
  [ -n "$DESTDIR" ] || [ "$(id -u)" = 0 ] || die "run as root (prefix sudo), or stage with DESTDIR=..."
  check_node
  [ -d "$STAGE/dist/src" ] || die "nothing staged in $STAGE (make install stages it first)"
  if [ "$MANIFEST" = 1 ] && [ -f "$DESTDIR$MANIFEST_FILE" ]; then
    say "replacing the earlier install (its manifest $MANIFEST_FILE)"
    KEEP_QUIET=1 PURGE=0 UPGRADE=1 do_uninstall
  fi
  [ ! -e "$DESTDIR$APPDIR" ] || die "$DESTDIR$APPDIR exists and no make install manifest lists it (a copy made by hand?): remove it first, or choose APPDIR=..."

  # The app.
  mkd "$APPDIR"
  cp -a "$STAGE/." "$DESTDIR$APPDIR/"
  chown -R 0:0 "$DESTDIR$APPDIR" 2>/dev/null || true
  local p
  while IFS= read -r p; do record d "${p#"$DESTDIR"}"; done < <(find "$DESTDIR$APPDIR" -mindepth 1 -type d)
  while IFS= read -r p; do record f "${p#"$DESTDIR"}"; done < <(find "$DESTDIR$APPDIR" -mindepth 1 ! -type d)

  # Commands on PATH.
  launcher tabby-node dist/tabby-node.cjs 'the tabby node agent'
  launcher tabbyctl dist/src/cli/main.js "tabby's command-line tool"

  # The unit, with this install's paths.
  # (put reads from a process substitution, not a pipe: a pipe would run it in a subshell and lose its records)
  put 644 "$UNITDIR/tabby-node.service" < <(sed -e "s|^ExecStart=/usr/bin/node /opt/tabby/app/|ExecStart=$NODE $APPDIR/|" \
      -e "s|^Documentation=file:///opt/tabby/app/|Documentation=file://$APPDIR/|" \
      -e "s|^EnvironmentFile=/etc/tabby/tabby-node.env|EnvironmentFile=$ENVFILE|" \
      "$ROOT/deploy/systemd/tabby-node.service")

  # Settings: an existing file is the operator's and is never overwritten.
  if [ -e "$DESTDIR$ENVFILE" ]; then
    say "kept $ENVFILE (exists; the shipped one is $APPDIR/deploy/systemd/tabby-node.env)"
  else
    put 600 "$ENVFILE" <"$ROOT/deploy/systemd/tabby-node.env"
    unset 'MF[${#MF[@]}-1]'
    record c "$(sha256sum <"$DESTDIR$ENVFILE" | cut -d' ' -f1)" "$ENVFILE"
  fi

  # Shell completion (yargs writes the bash or the zsh script depending on SHELL).
  put 644 "$BASH_COMPLETIONDIR/tabbyctl" < <(SHELL=/bin/bash "$NODE" "$DESTDIR$APPDIR/dist/src/cli/main.js" completion)
  put 644 "$ZSH_COMPLETIONDIR/_tabbyctl" < <(SHELL=/bin/zsh "$NODE" "$DESTDIR$APPDIR/dist/src/cli/main.js" completion)

  if [ "$CNI" = 1 ]; then install_cni; fi

  if [ "$MANIFEST" = 1 ]; then
    mkd "$TABBY_HOME"
    printf '%s\n' "# written by tabby's make install; make uninstall removes what is listed (d = directory it created," \
      "# f = file, c = config file removed only when unchanged or with PURGE=1)" "${MF[@]}" >"$DESTDIR$MANIFEST_FILE"
  fi
  say "installed: $APPDIR, $BINDIR/tabby-node, $BINDIR/tabbyctl, $UNITDIR/tabby-node.service, $ENVFILE$([ "$CNI" = 1 ] && echo ", $CNI_BIN_DIR/tabby, $CNI_BIN_DIR/tabby-ipam, $CNI_NET_DIR/10-tabby.conflist")"
  if [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
    # An upgrade of a running service: the new version runs (the old files are gone).
    if systemctl is-active --quiet tabby-node; then systemctl restart tabby-node && say "restarted tabby-node (the new version)"; return; fi
  fi
  say "nothing started: edit $ENVFILE, then systemctl enable --now tabby-node; tabbyctl node status"
}

# ---------------------------------------------------------------- uninstall
# PURGE=1: settings kept by an earlier uninstall or install are the operator's too, and the datastore.
purge() {
  rm -f "$DESTDIR$ENVFILE"; rmdir "$DESTDIR$SYSCONFDIR/tabby" 2>/dev/null || true
  case "$STATEDIR" in /?*) rm -rf "$DESTDIR$STATEDIR" ;; *) die "STATEDIR=$STATEDIR: expected an absolute path" ;; esac
  say "removed $ENVFILE and the datastore $STATEDIR (PURGE=1)"
}

do_uninstall() {
  local mf=$DESTDIR$MANIFEST_FILE kind a b
  if [ ! -f "$mf" ]; then
    # Already uninstalled: PURGE=1 still removes what uninstall kept (settings, datastore).
    [ "$PURGE" = 1 ] && { [ -e "$DESTDIR$ENVFILE" ] || [ -e "$DESTDIR$STATEDIR" ]; } && { purge; return; }
    die "no manifest at $mf: nothing installed by make install here (same PREFIX/TABBY_HOME/DESTDIR as the install?)"
  fi
  # (an upgrade leaves the service as it is: do_install restarts it if it runs)
  if [ -z "$DESTDIR" ] && [ -d /run/systemd/system ] && [ "${UPGRADE:-0}" != 1 ] && grep -qx "f $UNITDIR/tabby-node.service" "$mf"; then
    systemctl disable --now tabby-node >/dev/null 2>&1 || true
  fi
  # Files (xargs: an app has thousands), then config files, then directories deepest first.
  grep '^f ' "$mf" | cut -c3- | sed "s|^|$DESTDIR|" | xargs -r -d '\n' rm -f --
  while read -r kind a b; do
    [ "$kind" = c ] || continue
    [ -e "$DESTDIR$b" ] || continue
    if [ "$PURGE" = 1 ] || [ "$(sha256sum <"$DESTDIR$b" | cut -d' ' -f1)" = "$a" ]; then rm -f "$DESTDIR$b"; fi
  done <"$mf"
  local made=()
  mapfile -t made < <(grep '^d ' "$mf" | cut -c3- | tac)
  rm -f "$mf"
  for a in "${made[@]}"; do rmdir "$DESTDIR$a" 2>/dev/null || true; done
  if [ "$PURGE" = 1 ]; then
    purge
  elif [ -e "$DESTDIR$STATEDIR" ] && [ "${KEEP_QUIET:-0}" != 1 ]; then
    say "kept the datastore $STATEDIR (make uninstall PURGE=1 removes it)"
  fi
  if [ -e "$DESTDIR$ENVFILE" ] && [ "${KEEP_QUIET:-0}" != 1 ]; then say "kept $ENVFILE (changed since install, or there before it; PURGE=1 removes it)"; fi
  if [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
}

case "${1:-}" in
  stage) stage ;;
  install) do_install ;;
  uninstall) do_uninstall ;;
  *) die "usage: $0 stage|install|uninstall" ;;
esac
