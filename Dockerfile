# The domainwall image: FROM scratch with the compiled binary, libnftables and iptables-legacy (with the
# shared libraries they load) and nothing else — no shell, no package manager, no dig.
#
#   docker build --build-arg VERSION=0.1.0 -t domainwall:0.1.0 .
#   buildah bud --build-arg VERSION=0.1.0 -t domainwall:0.1.0 .
#   docker buildx build --platform linux/amd64,linux/arm64 -t ghcr.io/domainwall/domainwall:0.1.0 .
#
# The root file system is assembled by scripts/build-rootfs.sh, the same script CI runs
# (test/e2e/image.test.ts builds an image from it and runs it in a network namespace).

ARG BUN_VERSION=1.4.5

# 1. Compile. Runs on the build machine's platform and cross-compiles for the target one (Bun
#    fetches the target's runtime from the npm registry), so an arm64 image needs no emulated Bun.
FROM --platform=$BUILDPLATFORM docker.io/oven/bun:${BUN_VERSION} AS build
ARG TARGETARCH
ARG VERSION=0.1.0
WORKDIR /src
COPY package.json bun.lock tsconfig.json ./
RUN bun install --frozen-lockfile --production
COPY scripts/build.ts scripts/
COPY src/ src/
RUN case "${TARGETARCH:-}" in \
      amd64) target=bun-linux-x64 ;; \
      arm64) target=bun-linux-arm64 ;; \
      "") target= ;; \
      *) echo "unsupported TARGETARCH ${TARGETARCH}" >&2; exit 1 ;; \
    esac; \
    DOMAINWALL_VERSION="${VERSION}" bun scripts/build.ts --outfile /out/domainwall ${target:+--target "$target"}

# 2. Assemble the root file system from Debian's nftables and iptables, for the target platform.
FROM docker.io/library/debian:bookworm-slim AS rootfs
RUN apt-get update \
 && apt-get install -y --no-install-recommends nftables iptables \
 && rm -rf /var/lib/apt/lists/*
COPY scripts/build-rootfs.sh /usr/local/bin/build-rootfs.sh
COPY --from=build /out/domainwall /tmp/domainwall
ARG SOURCE_DATE_EPOCH=0
RUN SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH}" bash /usr/local/bin/build-rootfs.sh /tmp/domainwall /rootfs

# 3. The image.
FROM scratch
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="domainwall" \
      org.opencontainers.image.description="A firewall by domain name for Kubernetes pods and Linux machines: resolve names, load one atomic nftables ruleset." \
      org.opencontainers.image.source="https://github.com/domainwall/domainwall" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=rootfs /rootfs/ /
# domainwall runs iptables-legacy-* through PATH (nftables in process, through libnftables).
ENV PATH=/usr/sbin:/usr/bin
# Runs as root (uid 0), on purpose: Kubernetes' `capabilities.add: ["NET_ADMIN"]` becomes effective
# only for uid 0 (it sets no ambient capabilities, and allowPrivilegeEscalation: false blocks file
# capabilities). With `drop: ["ALL"]` that root holds CAP_NET_ADMIN and nothing else.
ENTRYPOINT ["/usr/bin/domainwall"]
CMD ["apply"]
