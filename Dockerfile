# syntax=docker/dockerfile:1
# Build: npm ci + esbuild bundle. Run: a slim Node runtime holding only the bundle.
#   docker build -t fcrdns-policyd .
#   docker run -d -p 127.0.0.1:10040:10040 \
#     -v /etc/fcrdns-policyd/fcrdns-policyd.conf:/etc/fcrdns-policyd/fcrdns-policyd.conf:ro fcrdns-policyd

FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build

FROM node:20-bookworm-slim
# Only the bundle: it needs no dependencies installed at run time.
COPY --from=build /src/dist/fcrdns-policyd.js /usr/local/lib/fcrdns-policyd/fcrdns-policyd.js
COPY deploy/docker/healthcheck.mjs /usr/local/lib/fcrdns-policyd/healthcheck.mjs
COPY deploy/docker/fcrdns-policyd.conf /etc/fcrdns-policyd/fcrdns-policyd.conf
# The image's "node" user (uid 1000): never root.
USER node
EXPOSE 10040
HEALTHCHECK --interval=30s --timeout=10s --start-period=5s --retries=3 \
  CMD ["node", "/usr/local/lib/fcrdns-policyd/healthcheck.mjs"]
STOPSIGNAL SIGTERM
# Heap cap as in the systemd unit (raise it with cache_size; the daemon says by how much).
ENTRYPOINT ["node", "--max-old-space-size=96", "--max-semi-space-size=4", "--no-allocation-site-pretenuring", "/usr/local/lib/fcrdns-policyd/fcrdns-policyd.js"]
CMD ["--config", "/etc/fcrdns-policyd/fcrdns-policyd.conf"]
