# syntax=docker/dockerfile:1
# The image: build the single-file binary with the repo's own `npm run compile`, ship it alone on distroless.

# The build runs on the builder's own platform: `npm run compile` cross-compiles linux-x64 and linux-arm64,
# so a multi-platform build needs no emulation.
FROM --platform=$BUILDPLATFORM node:22-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run compile
ARG TARGETARCH
# Docker says amd64 where Bun says x64; without BuildKit's TARGETARCH, take the builder's own binary.
RUN case "${TARGETARCH:-}" in \
      amd64) f=dist/emohaa-free-api-linux-x64 ;; \
      arm64) f=dist/emohaa-free-api-linux-arm64 ;; \
      "") f=dist/emohaa-free-api ;; \
      *) echo "No binary for $TARGETARCH" >&2; exit 1 ;; \
    esac && cp "$f" /emohaa-free-api

# glibc, CA certificates, tzdata (so TZ works) and a non-root user; no shell, no package manager.
FROM gcr.io/distroless/base-debian12:nonroot
COPY --from=build /emohaa-free-api /app/emohaa-free-api
USER nonroot
# Bun's fetch opens at most 256 upstream connections at once by default; a stream holds one for its whole reply.
ENV HOST=0.0.0.0 PORT=8000 BUN_CONFIG_MAX_HTTP_REQUESTS=4096
EXPOSE 8000
# The binary checks itself (GET /ping): the image has no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["/app/emohaa-free-api", "--healthcheck"]
ENTRYPOINT ["/app/emohaa-free-api"]
