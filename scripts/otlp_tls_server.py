#!/usr/bin/env python3
"""An OTLP/gRPC receiver over TLS, made of grpcio (its TLS is BoringSSL's) and
the OpenTelemetry project's own generated classes (opentelemetry-proto): a TLS
server that shares no code with this crate, for the tests in
tests/grpc_tls_grpcio.rs. It serves TraceService, MetricsService and
LogsService, answers every request OK, and counts what it received.

Run it with the test venv's interpreter (scripts/install-test-deps.sh):

    target/test-venv/bin/python scripts/otlp_tls_server.py --cert server.pem --key server-key.pem \\
        [--client-ca ca.pem]

With --client-ca it requires a client certificate issued by that CA
(`require_client_auth=True`): a client without one is refused in the TLS
handshake. It listens on --host (127.0.0.1) on a free port and, once serving,
prints one JSON line with that port:

    {"port": 40123}

then one JSON line per request it received, before it answers:

    {"signal": "metrics", "items": 1000, "client": "exporter"}

(items: metric data points, spans or log records; client: the common name of
the client certificate, "" without one). It stops when its standard
input reaches end of file, so that it never outlives the process that started
it, or on SIGTERM / SIGINT.
"""

import argparse
import json
import signal
import sys
import threading
from concurrent import futures

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

# One line at a time from several gRPC worker threads.
_print_lock = threading.Lock()


def emit(record):
    with _print_lock:
        print(json.dumps(record), flush=True)


def client_name(context):
    names = context.auth_context().get("x509_common_name") or [b""]
    return names[0].decode(errors="replace")


def received(signal_name, items, context):
    emit({"signal": signal_name, "items": items, "client": client_name(context)})


def metric_points(request):
    points = 0
    for resource in request.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                kind = metric.WhichOneof("data")
                if kind is not None:
                    points += len(getattr(metric, kind).data_points)
    return points


class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
    def Export(self, request, context):
        received("metrics", metric_points(request), context)
        return metrics_service_pb2.ExportMetricsServiceResponse()


class Traces(trace_service_pb2_grpc.TraceServiceServicer):
    def Export(self, request, context):
        spans = sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
        received("traces", spans, context)
        return trace_service_pb2.ExportTraceServiceResponse()


class Logs(logs_service_pb2_grpc.LogsServiceServicer):
    def Export(self, request, context):
        records = sum(len(s.log_records) for r in request.resource_logs for s in r.scope_logs)
        received("logs", records, context)
        return logs_service_pb2.ExportLogsServiceResponse()


def read(path):
    with open(path, "rb") as f:
        return f.read()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cert", required=True, help="the server's certificate (PEM)")
    parser.add_argument("--key", required=True, help="the server's private key (PEM)")
    parser.add_argument("--client-ca", help="require a client certificate issued by this CA (PEM)")
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    args = parser.parse_args()

    credentials = grpc.ssl_server_credentials(
        [(read(args.key), read(args.cert))],
        root_certificates=read(args.client_ca) if args.client_ca else None,
        require_client_auth=bool(args.client_ca),
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(), server)
    port = server.add_secure_port(f"{args.host}:0", credentials)
    if port == 0:
        sys.exit(f"otlp_tls_server.py: cannot listen on {args.host}")
    server.start()

    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())

    def stop_at_end_of_input():
        sys.stdin.buffer.read()
        stopped.set()

    threading.Thread(target=stop_at_end_of_input, daemon=True).start()
    emit({"port": port})
    stopped.wait()
    server.stop(grace=None).wait()


if __name__ == "__main__":
    main()
