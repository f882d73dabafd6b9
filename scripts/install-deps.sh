#!/bin/sh
# Installs the Debian packages attnviz needs, only those missing. Safe to run repeatedly.
set -e
PKGS="build-essential pkg-config libopenblas-dev libjansson-dev zlib1g-dev libpng-dev
      python3-torch python3-numpy python3-sentencepiece libonig-dev libutf8proc-dev nodejs
      libfreetype-dev fonts-dejavu-core chromium
      libmicrohttpd-dev curl wrk libjpeg62-turbo-dev python3-pil clang-format clang libclang-rt-14-dev
      libopenmpi-dev openmpi-bin
      python3-pip python3-setuptools python3-pytest python3-nbclient python3-ipykernel"
# npm ships inside nodesource's nodejs; Debian packages it separately
command -v npm >/dev/null 2>&1 || PKGS="$PKGS npm"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "attnviz: installing missing Debian packages:$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
