#!/usr/bin/env bash
# Builds the Debian package and a plain tarball of tuk for x86_64, from the static binary.
#
#   packaging/build-deb.sh            → target/debian/tuk_VERSION-1_amd64.deb
#                                       target/debian/tuk-VERSION-x86_64-linux.tar.gz
#
# The package is assembled with dpkg-deb from the files in packaging/ (the same layout and
# maintainer-script snippets dh_installsystemd produces: deb-systemd-helper and
# deb-systemd-invoke, never a raw systemctl start/enable). `lintian --pedantic` on the
# result shows nothing but the documented override (packaging/debian/lintian-overrides:
# the binary is static on purpose); tests/deploy.rs checks it.
#
# Maintainer (the control file's field and the changelog's trailer), first found of:
#   DEB_MAINTAINER="Full Name <address>"
#   DEBFULLNAME and DEBEMAIL, both set (the Debian convention)
#   packaging/maintainer (its one non-comment line; the default the repository ships)
# Anything that is not "Name <address>" is refused before the package is built.
# TUK_DEB_BIN=PATH packages that binary instead of building the release one (tests).
# OUT=DIR writes the package there instead of target/debian.
# DEB_COMPRESSION=none|gzip|xz (default xz) for the package's data (tests use none).
set -euo pipefail
cd "$(dirname "$0")/.."

triple=x86_64-unknown-linux-gnu
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
out=${OUT:-target/debian}
mkdir -p "$out"

if [ -n "${DEB_MAINTAINER:-}" ]; then
    maintainer=$DEB_MAINTAINER
    from=DEB_MAINTAINER
elif [ -n "${DEBFULLNAME:-}" ] && [ -n "${DEBEMAIL:-}" ]; then
    maintainer="$DEBFULLNAME <$DEBEMAIL>"
    from="DEBFULLNAME and DEBEMAIL"
else
    maintainer=$({ grep -v '^[[:space:]]*\(#\|$\)' packaging/maintainer || true; } | head -n1)
    from=packaging/maintainer
fi
if ! printf '%s\n' "$maintainer" | grep -Eq '^[^<>@[:space:]][^<>@]*[^<>@[:space:]] <[^<>@[:space:]]+@[^<>@[:space:]]+\.[^<>@[:space:]]+>$'; then
    echo "error: the maintainer \"$maintainer\" (from $from) is not \"Full Name <address>\"." >&2
    echo "Set DEB_MAINTAINER=\"Full Name <name@example.org>\" or edit packaging/maintainer." >&2
    exit 1
fi

if [ -n "${TUK_DEB_BIN:-}" ]; then
    bin=$TUK_DEB_BIN
else
    bin=target/$triple/release/tuk
    cargo build --release --locked --target "$triple"
fi
if [ ! -x "$bin" ]; then
    echo "error: $bin is not an executable file" >&2
    exit 1
fi
if ! ldd "$bin" 2>&1 | grep -Eq 'statically linked|not a dynamic executable'; then
    echo "error: $bin is not static (is .cargo/config.toml in place?)" >&2
    exit 1
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
umask 022
install -D -m 0755 "$bin" "$stage/usr/bin/tuk"
for u in tuk.service tuk-backup.service tuk-backup.timer; do
    install -D -m 0644 "systemd/$u" "$stage/lib/systemd/system/$u"
done
install -D -m 0644 packaging/tuk.toml "$stage/etc/tuk/tuk.toml"
doc="$stage/usr/share/doc/tuk"
install -D -m 0644 README.md "$doc/README.md"
install -m 0644 packaging/debian/copyright "$doc/copyright"
sed "s/MAINTAINER/$(printf '%s' "$maintainer" | sed 's/[\/&]/\\&/g')/" packaging/debian/changelog | gzip -9n > "$doc/changelog.Debian.gz"
chmod 0644 "$doc/changelog.Debian.gz"
install -D -m 0644 packaging/debian/lintian-overrides "$stage/usr/share/lintian/overrides/tuk"
# Manual pages, generated from the binary's own command-line definitions.
man="$stage/usr/share/man/man1"
install -d "$man"
"$bin" man -o "$man" >/dev/null
for m in "$man"/*.1; do
    gzip -9n "$m"
    chmod 0644 "$m.gz"
done
install -d "$stage/DEBIAN"
for s in postinst prerm postrm; do
    install -m 0755 "packaging/debian/$s" "$stage/DEBIAN/$s"
done
echo /etc/tuk/tuk.toml > "$stage/DEBIAN/conffiles"
(cd "$stage" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) > "$stage/DEBIAN/md5sums"
size=$(du -ks --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<CONTROL
Package: tuk
Version: $version-1
Architecture: amd64
Maintainer: $maintainer
Installed-Size: $size
Depends: init-system-helpers (>= 1.54~)
Section: net
Priority: optional
Description: LAN exam server for TUK computer labs
 tuk runs the final test (tes akhir) of the teacher competency programme in a
 TUK computer lab: it imports a signed question package from the UPT, serves
 the test to the lab's browsers, keeps every answer safe on disk and seals the
 results for the UPT.
 .
 The package installs one static binary, the hardened systemd units
 (tuk.service, tuk-backup.timer), /etc/tuk/tuk.toml and the manual pages, and
 creates the state directory /var/lib/tuk.
CONTROL
deb="$out/tuk_${version}-1_amd64.deb"
dpkg-deb --root-owner-group "-Z${DEB_COMPRESSION:-xz}" --build "$stage" "$deb" >/dev/null
echo "$deb"

# The same files for a copy-install without dpkg (USB stick).
if [ -z "${TUK_DEB_BIN:-}" ]; then
    tarball="$out/tuk-$version-x86_64-linux.tar.gz"
    tmp=$(mktemp -d)
    dir="$tmp/tuk-$version"
    mkdir -p "$dir/systemd"
    cp "$bin" "$dir/tuk"
    cp systemd/tuk.service systemd/tuk-backup.service systemd/tuk-backup.timer "$dir/systemd/"
    cp packaging/tuk.toml README.md "$dir/"
    tar -C "$tmp" -czf "$tarball" "tuk-$version"
    rm -rf "$tmp"
    echo "$tarball"
fi
