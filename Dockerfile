# creditledger: a static binary on a distroless base (no shell, no package manager, runs as
# nonroot). Build: docker build -t creditledger:local .   Run: see docker-compose.yml.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The version --version, $SRV.INFO and build_info report: docker build --build-arg VERSION=1.2.0 .
ARG VERSION=0.0.0-dev
# CGO off: a fully static binary that runs on distroless/static (no libc).
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath \
      -ldflags="-s -w -X github.com/creditledger/creditledger/internal/buildinfo.version=${VERSION}" \
      -o /out/creditledger ./cmd/creditledger \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/creditledger /usr/local/bin/creditledger
# A named volume mounted here starts with this directory's owner (nonroot), so the store is writable.
COPY --from=build --chown=nonroot:nonroot /out/data /data
USER nonroot:nonroot
# 4222 NATS clients, 6222 cluster routes, 8080 HTTP API, dashboard, /metrics, /healthz, /readyz.
EXPOSE 4222 6222 8080
VOLUME ["/data"]
ENTRYPOINT ["/usr/local/bin/creditledger"]
CMD ["serve", "--data-dir=/data", "--nats-listen=0.0.0.0:4222", "--http-listen=0.0.0.0:8080"]
