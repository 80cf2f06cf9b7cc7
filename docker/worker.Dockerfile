# The dbuild worker image: dbuild-worker and dbuild-sandbox, and the builder
# root every build's chroot is made from, at /var/lib/dbuild/rootfs. Built by
# docker/build-images with the legacy builder (no BuildKit syntax); the build
# context holds only the binaries.
#
# BASE must be Debian-based (dpkg, apt-get) with a glibc at least as new as
# the one the binaries were built against. Packages are installed only when
# BASE lacks them, so a base that has them all builds with --network none.
ARG BASE=debian:bookworm-slim

# The builder root: BASE plus rpm, rpmbuild, cpio and a C toolchain, finished
# in place by `dbuild rootfs --in-place` (rpm macros, dbuild-base-provides).
FROM ${BASE} AS root
# Extra Debian packages for the builder root, comma separated (e.g. python3-dev).
ARG ROOT_INCLUDE=
COPY dbuild /usr/local/bin/dbuild
RUN dbuild rootfs --in-place --include "${ROOT_INCLUDE}" && rm /usr/local/bin/dbuild

FROM ${BASE} AS worker
# What the worker itself runs: tini (PID 1: forwards SIGTERM, reaps orphans),
# unshare/mount/umount (util-linux, mount), nice/cp/rm/du (coreutils).
RUN set -e; missing=; \
    for p in tini util-linux mount coreutils; do \
        dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q ' installed$' || missing="$missing $p"; \
    done; \
    if [ -n "$missing" ]; then \
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing \
        && apt-get clean && rm -rf /var/lib/apt/lists/*; \
    fi
COPY --from=root / /var/lib/dbuild/rootfs/
COPY dbuild-worker dbuild-sandbox /usr/local/bin/
# Every setting can be given as a flag or a DBUILD_* variable; these are the image's defaults.
ENV DBUILD_BASE_ROOT=/var/lib/dbuild/rootfs \
    DBUILD_WORK_DIR=/var/tmp/dbuild-worker \
    DBUILD_LISTEN=0.0.0.0:8081
# Overlay upper/work directories: the kernel refuses them on the container's
# own overlay filesystem, so they live on a volume (or mount a tmpfs here).
VOLUME ["/var/tmp/dbuild-worker"]
EXPOSE 8081
ENTRYPOINT ["/usr/bin/tini", "--", "dbuild-worker"]
