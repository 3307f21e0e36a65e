# Build the leasehold binary and run it as a non-root user.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# -tags production leaves out dev, demo and bench (the local stack, the
# embedded S3 server, the workload generators).
RUN CGO_ENABLED=0 go build -tags production -trimpath -ldflags "-s -w" -o /out/leasehold ./cmd/leasehold

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/leasehold /usr/local/bin/leasehold
USER nonroot
ENTRYPOINT ["/usr/local/bin/leasehold"]
CMD ["worker"]
