# syntax=docker/dockerfile:1
# browserd on Debian 12 (docs/install.md). Every step is a command of the project's own scripts,
# which tests/packaging runs (Docker itself cannot run on the project's machines):
#   docker build -t browserd .
#   docker run -d --name browserd -p 127.0.0.1:8080:8080 -p 127.0.0.1:9222:9222 -p 127.0.0.1:9515:9515 \
#     -v browserd-state:/var/lib/browserd --shm-size=1g --security-opt seccomp=unconfined browserd
#   docker logs browserd      # the first start prints the API key and the zone password, once
# (--security-opt: Docker's default seccomp profile refuses the user namespaces that Chromium's
# sandbox needs; browserd runs Chromium as the non-root user browserd, sandbox on.)

FROM debian:bookworm-slim AS build
WORKDIR /src
COPY meson.build meson_options.txt ./
COPY scripts/ scripts/
COPY src/ src/
COPY docs/browserd.1 docs/
COPY packaging/ packaging/
COPY tests/ tests/
COPY bench/ bench/
# the build packages, a release build, `meson install` into /staging (the binary, the man page,
# the systemd unit and the example environment file, which the image keeps for reference)
RUN scripts/build.sh --prefix /usr --destdir /staging

FROM debian:bookworm-slim
COPY scripts/install-deps.sh /usr/local/lib/browserd/install-deps.sh
# the binary's libraries, Chromium, certificates, fonts and curl for the health check
RUN /usr/local/lib/browserd/install-deps.sh runtime && rm -rf /var/lib/apt/lists/*
COPY --from=build /staging/ /
# the user of packaging/browserd.sysusers, and its state directory
RUN useradd --system --user-group --home-dir /var/lib/browserd --shell /usr/sbin/nologin browserd \
 && install -d -o browserd -g browserd -m 0750 /var/lib/browserd
USER browserd
WORKDIR /var/lib/browserd
ENV BROWSERD_DB=/var/lib/browserd/browserd.db \
    BROWSERD_API_LISTEN=0.0.0.0:8080 \
    BROWSERD_CDP_LISTEN=0.0.0.0:9222 \
    HOME=/var/lib/browserd
EXPOSE 8080 9222 9515
VOLUME /var/lib/browserd
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/browserd"]
CMD ["serve"]
