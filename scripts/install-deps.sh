#!/usr/bin/env bash
# Installs what codeyard's demo and tests need on a fresh Debian machine (idempotent, quiet
# when everything is there already): podman (+ the podman-docker `docker` command), buildah,
# skopeo and a static busybox for image builds inside builds, git, zip tools, a JDK for the
# sample service, the aws CLI, and Chromium with its WebDriver for the console's browser tests.
set -euo pipefail

need_apt=()
have() { command -v "$1" >/dev/null 2>&1; }
have podman   || need_apt+=(podman)
[ -x /usr/bin/docker ] || need_apt+=(podman-docker)
have buildah  || need_apt+=(buildah)
have skopeo   || need_apt+=(skopeo)
# The container executor: podman runs build containers with runc here (crun cannot set
# rlimits on this kind of machine), catatonit is each build container's init, mmdebstrap builds
# the stand-in for AWS's curated images (`codeyard images build-standard`).
[ -x /usr/sbin/runc ] || have runc || need_apt+=(runc)
[ -x /usr/bin/catatonit ] || [ -x /usr/libexec/podman/catatonit ] || need_apt+=(catatonit)
have mmdebstrap || need_apt+=(mmdebstrap)
[ -x /bin/busybox ] || have busybox || need_apt+=(busybox-static)
have git      || need_apt+=(git)
have pkill    || need_apt+=(procps)
have zip      || need_apt+=(zip)
have unzip    || need_apt+=(unzip)
have javac    || need_apt+=(default-jdk-headless)
have python3  || need_apt+=(python3 python3-pip)
# The console's browser tests drive a real headless Chromium through WebDriver.
have chromium || need_apt+=(chromium)
have chromedriver || need_apt+=(chromium-driver)

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing: ${need_apt[*]}" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! have aws; then
  echo "installing the aws CLI (pip)" >&2
  python3 -m pip install -q awscli
fi
if ! have terraform; then
  echo "warning: terraform is not installed; the Terraform tests and the acceptance run need it" >&2
fi
