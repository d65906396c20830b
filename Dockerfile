# Builds the starter and the worker; `--target starter` or `--target worker`.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ ./starter ./worker

FROM gcr.io/distroless/static-debian12:nonroot AS starter
COPY --from=build /out/starter /starter
EXPOSE 8080
ENTRYPOINT ["/starter"]

FROM gcr.io/distroless/static-debian12:nonroot AS worker
COPY --from=build /out/worker /worker
ENTRYPOINT ["/worker"]
