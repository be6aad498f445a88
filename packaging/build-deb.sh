#!/usr/bin/env bash
# Builds the Debian package and a plain tarball of tuk for x86_64, from the static binary.
#
#   packaging/build-deb.sh            → target/debian/tuk_VERSION-1_amd64.deb
#                                       target/debian/tuk-VERSION-x86_64-linux.tar.gz
#
# Uses `cargo deb` (metadata in Cargo.toml, [package.metadata.deb]) when it is installed,
# otherwise assembles the same package with dpkg-deb. Either way the binary is the static
# one from `cargo build --release --target x86_64-unknown-linux-gnu`.
# USE_DPKG_DEB=1 skips cargo-deb even when it is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

triple=x86_64-unknown-linux-gnu
bin=target/$triple/release/tuk
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
out=target/debian
mkdir -p "$out"

cargo build --release --locked --target "$triple"
if ! ldd "$bin" 2>&1 | grep -Eq 'statically linked|not a dynamic executable'; then
    echo "error: $bin is not static (is .cargo/config.toml in place?)" >&2
    exit 1
fi

if [ -z "${USE_DPKG_DEB:-}" ] && command -v cargo-deb >/dev/null 2>&1; then
    cargo deb --no-build --target "$triple" --output "$out/"
else
    echo "building the package with dpkg-deb (cargo-deb not installed, or USE_DPKG_DEB set)"
    stage=$(mktemp -d)
    trap 'rm -rf "$stage"' EXIT
    install -D -m 0755 "$bin" "$stage/usr/bin/tuk"
    for u in tuk.service tuk-backup.service tuk-backup.timer; do
        install -D -m 0644 "systemd/$u" "$stage/lib/systemd/system/$u"
    done
    install -D -m 0644 packaging/tuk.toml "$stage/etc/tuk/tuk.toml"
    install -D -m 0644 README.md "$stage/usr/share/doc/tuk/README.md"
    install -d "$stage/DEBIAN"
    for s in postinst prerm postrm; do
        install -m 0755 "packaging/debian/$s" "$stage/DEBIAN/$s"
    done
    echo /etc/tuk/tuk.toml > "$stage/DEBIAN/conffiles"
    size=$(du -ks "$stage" | cut -f1)
    cat > "$stage/DEBIAN/control" <<CONTROL
Package: tuk
Version: $version-1
Architecture: amd64
Maintainer: tuk maintainers <tuk@localhost>
Installed-Size: $size
Section: net
Priority: optional
Description: LAN exam server for TUK computer labs
 tuk runs the final test (tes akhir) of the teacher competency programme in a TUK
 computer lab: signed question packages, durable answers, sealed results. Static
 binary, hardened systemd units, /etc/tuk/tuk.toml; creates /var/lib/tuk.
CONTROL
    dpkg-deb --root-owner-group --build "$stage" "$out/tuk_${version}-1_amd64.deb"
fi

# The same files for a copy-install without dpkg (USB stick).
tarball="$out/tuk-$version-x86_64-linux.tar.gz"
tmp=$(mktemp -d)
dir="$tmp/tuk-$version"
mkdir -p "$dir/systemd"
cp "$bin" "$dir/tuk"
cp systemd/tuk.service systemd/tuk-backup.service systemd/tuk-backup.timer "$dir/systemd/"
cp packaging/tuk.toml README.md "$dir/"
tar -C "$tmp" -czf "$tarball" "tuk-$version"
rm -rf "$tmp"
ls -l "$out"/*.deb "$tarball"
