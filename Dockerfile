# mproxy image: `docker build -t mproxy .` (or `make docker`).
# Size: node:24-slim (~230 MB unpacked) + ~10.5 MB of our layers (production node_modules 10.3 MB,
# dist 0.2 MB): about 210 MB unpacked.
# The image Kamal boots in place of basecamp/kamal-proxy: `docker build --target kamal .` (README, Kamal).

# ---- build: compile TypeScript, then drop devDependencies -------------------------------
FROM node:24-slim AS build
WORKDIR /app
# Dependencies first, so editing src/ does not re-run npm ci.
COPY package.json package-lock.json ./
# --ignore-scripts: the image has Node 24 already, so the `node` devDependency need not fetch it.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig*.json ./
COPY src ./src
COPY bin ./bin
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && chmod 0755 bin/run.js bin/kamal-proxy.js

# ---- app: the built proxy, shared by both images ------------------------------------------
FROM node:24-slim AS app
ENV NODE_ENV=production
WORKDIR /app
# oclif.manifest.jso[n]: copied when the build generates one, skipped otherwise.
COPY --from=build /app/package.json /app/oclif.manifest.jso[n] ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin

# ---- kamal: what Kamal boots as its proxy (`docker build --target kamal`) ------------------
# As basecamp/kamal-proxy: `kamal-proxy run` as user kamal-proxy, state and certificates in
# /home/kamal-proxy/.config/kamal-proxy (Kamal mounts its volume kamal-proxy-config there), the
# control socket at /tmp/kamal-proxy.sock, where `docker exec kamal-proxy kamal-proxy ...` finds it.
# uid and gid 1001 are those of kamal-proxy's image (ubuntu:noble has uid 1000 already), so the
# files it left in that volume stay readable: a first start imports its state and certificates.
# kamal-proxy stops within 10 s, and Kamal stops the container with docker's default 10 s.
FROM app AS kamal
LABEL org.opencontainers.image.title=kamal-proxy
ENV MPROXY_STATE_DIR=/home/kamal-proxy/.config/kamal-proxy \
    MPROXY_SHUTDOWN_TIMEOUT=9s
RUN groupadd --gid 1001 kamal-proxy \
 && useradd --uid 1001 --gid kamal-proxy --create-home --home-dir /home/kamal-proxy \
        --shell /usr/sbin/nologin kamal-proxy \
 && mkdir -p "$MPROXY_STATE_DIR" \
 && chown -R kamal-proxy:kamal-proxy /home/kamal-proxy \
 && chmod 0700 "$MPROXY_STATE_DIR" \
 && ln -s /app/bin/kamal-proxy.js /usr/local/bin/kamal-proxy \
 && ln -s /app/bin/run.js /usr/local/bin/mproxy
USER kamal-proxy
EXPOSE 80 443
STOPSIGNAL SIGTERM
# No entrypoint: Kamal gives the command (`kamal-proxy run`, plus --debug or --metrics-port).
CMD ["kamal-proxy", "run"]

# ---- mproxy: the default image ------------------------------------------------------------
FROM app
ENV MPROXY_STATE_DIR=/home/mproxy/.local/state/mproxy

# Ports 80/443 as a non-root user: no setcap and no root. Docker >= 20.10 starts every container
# (except with --network host) with the namespaced sysctl net.ipv4.ip_unprivileged_port_start=0,
# so any user may bind 80 and 443 inside the container's own network namespace; docker-compose.yml
# also sets it explicitly. We did not use `setcap cap_net_bind_service=+ep` on node: file
# capabilities put node in secure-execution mode (it then ignores NODE_OPTIONS and
# NODE_EXTRA_CA_CERTS) and the binary fails to start under `--cap-drop ALL`.
# On --network host, Kubernetes or an old engine: add
# `--sysctl net.ipv4.ip_unprivileged_port_start=0`, or run with MPROXY_HTTP_PORT=8080
# MPROXY_HTTPS_PORT=8443 and publish 80:8080 / 443:8443.
RUN useradd --system --user-group --create-home --home-dir /home/mproxy \
        --shell /usr/sbin/nologin mproxy \
 && mkdir -p "$MPROXY_STATE_DIR" \
 && chown -R mproxy:mproxy /home/mproxy \
 && chmod 0700 "$MPROXY_STATE_DIR" \
 && ln -s /app/bin/run.js /usr/local/bin/mproxy

USER mproxy
# Control socket, state.json and certificates: keep them across container replacements.
VOLUME ["/home/mproxy/.local/state/mproxy"]
EXPOSE 80 443

# `mproxy status` asks the running primary over its control socket: exit 0 when it answers.
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 CMD ["mproxy", "status"]

# Exec form: node (via the bin/run.js shebang) is PID 1 and gets SIGTERM itself; it stops
# accepting and drains in-flight requests for up to 30 s (the drain timeout), so stop it with
# `docker stop -t 45` (compose: stop_grace_period: 45s), not the default 10 s.
STOPSIGNAL SIGTERM
ENTRYPOINT ["mproxy", "run"]
