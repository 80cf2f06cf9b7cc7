# The dbuild scheduler image: dbuild-scheduler on BASE. Built by
# docker/build-images with the legacy builder; the build context holds only
# the binaries. Its state lives in the build directory on the share
# (<build-dir>/state/dbuild.sqlite): mount the share and pass --build-dir.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
# tini as PID 1: forwards SIGTERM and reaps orphans. Installed only when BASE lacks it.
RUN set -e; \
    if ! dpkg-query -W -f '${Status}' tini 2>/dev/null | grep -q ' installed$'; then \
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends tini \
        && apt-get clean && rm -rf /var/lib/apt/lists/*; \
    fi
COPY dbuild-scheduler /usr/local/bin/
ENV DBUILD_LISTEN=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/usr/bin/tini", "--", "dbuild-scheduler"]
