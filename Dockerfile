# syntax=docker/dockerfile:1
# Multi-stage build of the loopmatch binary with libsoxr and ONNX Runtime inside.
FROM golang:1.26-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libsoxr-dev pkg-config && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -trimpath -ldflags="-s -w" -o /out/loopmatch ./cmd/loopmatch

# ONNX Runtime's shared library comes from the onnxruntime wheel (the same source
# scripts/bootstrap.sh uses), so the container and a developer machine run one build.
FROM python:3.11-slim-bookworm AS ort
RUN pip install --no-cache-dir onnxruntime==1.31.1 && \
    mkdir -p /ort && cp -a /usr/local/lib/python3.11/site-packages/onnxruntime/capi/libonnxruntime.so.* /ort/ && \
    cd /ort && ln -s libonnxruntime.so.* libonnxruntime.so

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libsoxr0 ca-certificates curl && rm -rf /var/lib/apt/lists/* && \
    useradd --system --home /var/lib/loopmatch --create-home loopmatch
COPY --from=ort /ort/ /opt/onnxruntime/lib/
COPY --from=build /out/loopmatch /usr/local/bin/loopmatch
COPY models/ /opt/loopmatch/models/
ENV ONNXRUNTIME_LIB=/opt/onnxruntime/lib/libonnxruntime.so \
    LOOPMATCH_BUNDLE=/opt/loopmatch/models/loopmatch-v2 \
    LOOPMATCH_STORE=embedded:/var/lib/loopmatch/store
USER loopmatch
WORKDIR /var/lib/loopmatch
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/loopmatch"]
CMD ["serve", "--addr", ":8080"]
