# syntax=docker/dockerfile:1
# The image is the Debian package on a Debian base: the same .deb that test/distro.test.ts
# installs into clean Debian roots, installed with apt, so one artefact is tested everywhere and
# the image build needs no npm registry and no build stage.
#   npm run package            # dist/fcrdns-policyd_VERSION_all.deb
#   podman build --format docker -t fcrdns-policyd .     (or docker build)
#   podman run -d --name fcrdns-policyd -p 127.0.0.1:10040:10040 --read-only \
#     -v /etc/fcrdns-policyd/fcrdns-policyd.conf:/etc/fcrdns-policyd/fcrdns-policyd.conf:ro fcrdns-policyd
# BASE: a site with its own mirror or registry names its own Debian image (bookworm-slim works
# too: its nodejs 18.20 is above the floor). APT_UPDATE=no: the base already holds the package
# lists (an offline build from a prepared base, as test/container.test.ts does).
ARG BASE=debian:trixie-slim
FROM ${BASE}
ARG APT_UPDATE=yes
COPY dist/fcrdns-policyd_*_all.deb /tmp/debs/
RUN set -eu; \
    export DEBIAN_FRONTEND=noninteractive; \
    if [ "$APT_UPDATE" = yes ]; then apt-get update; fi; \
    deb=$(ls /tmp/debs/fcrdns-policyd_*_all.deb | sort -V | tail -n 1); \
    apt-get install -y --no-install-recommends "$deb"; \
    fcrdns-policyd --version; \
    rm -rf /tmp/debs /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
COPY deploy/docker/fcrdns-policyd.conf /etc/fcrdns-policyd/fcrdns-policyd.conf
# Never root: nobody (65534) exists in every Debian base; the daemon writes nothing but stdout,
# so the image also runs with a read-only root filesystem.
USER nobody
EXPOSE 10040
# One real policy request to the listener the config names (client 127.0.0.1 is in the default
# skip_networks: no DNS query, one "skipped" decision line per check).
HEALTHCHECK --interval=30s --timeout=10s --start-period=5s --retries=3 \
  CMD ["/usr/sbin/fcrdns-policyd", "query", "client_address=127.0.0.1", "recipient=healthcheck@localhost"]
STOPSIGNAL SIGTERM
# The package's launcher: node with the systemd unit's heap flags (raise them with cache_size;
# the daemon says by how much).
ENTRYPOINT ["/usr/sbin/fcrdns-policyd"]
CMD ["--config", "/etc/fcrdns-policyd/fcrdns-policyd.conf"]
