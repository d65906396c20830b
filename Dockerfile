# Builds the starter, the worker and the codec server; `--target starter`,
# `--target worker` or `--target codec-server`.
FROM golang:1.26.8 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ ./starter ./worker ./cmd/codec-server

FROM gcr.io/distroless/static-debian12:nonroot AS starter
COPY --from=build /out/starter /starter
# HTTP_ADDR's default port (internal/config); the deploy tests keep them equal.
EXPOSE 8080
# Exec form: distroless has no shell. -healthcheck reads HTTP_ADDR as the
# server does, so it follows any HTTP_ADDR given to the container.
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=5 CMD ["/starter", "-healthcheck"]
ENTRYPOINT ["/starter"]

FROM gcr.io/distroless/static-debian12:nonroot AS worker
COPY --from=build /out/worker /worker
ENTRYPOINT ["/worker"]

FROM gcr.io/distroless/static-debian12:nonroot AS codec-server
COPY --from=build /out/codec-server /codec-server
EXPOSE 8081
ENTRYPOINT ["/codec-server"]
